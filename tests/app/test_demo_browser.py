"""End to end in headless Chromium: `python demo.py` serves the page; a browser picks a lipstick
colour, uploads a broken file and then the astronaut, reads the result image back, and streams a
fake webcam (a clip of the demo video) through the live tab.

Needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver) and the
selenium package; skips with the reason when one is missing. Saves /tmp/demo_page.png."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOT = Path("/tmp/demo_page.png")
BLUE = (30, 60, 220)   # the lipstick colour the test picks: far from any natural lip colour

if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
    pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER} not found)",
                allow_module_level=True)
pytestmark = pytest.mark.ui  # the page in a real browser: `pytest -m ui` selects it

selenium = pytest.importorskip("selenium", reason="needs the selenium package (pip install selenium)")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python demo.py --port N` in a subprocess; its URL once it answers."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "demo.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "demo.py", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"demo.py exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"demo.py did not answer within 60 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def fake_camera_clip(path: Path, frames: int = 40) -> Path:
    """The demo clip's first frames as a .y4m file: Chromium plays it as its fake webcam."""
    with av.open(str(ROOT / "assets" / "demo.mp4")) as inp, av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 448, 448, "yuv420p"
        for i, frame in enumerate(inp.decode(video=0)):
            if i == frames:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={folder / 'profile'}",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={fake_camera_clip(folder / 'camera.y4m')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def astronaut_regions():
    """Where the astronaut's lips are, and what lies well outside her face, from the pipeline itself."""
    from core.classes import CLASS_NAMES
    from stream import assemble as session
    from core.types import Frame
    image = data.astronaut()
    pipeline = session.build_pipeline(model="landmarks", static_images=True, log=lambda *a: None)
    result = pipeline.process(Frame(image=image, index=0, time=0.0))
    pipeline.close()
    lips = np.isin(session.label_map(result), [CLASS_NAMES.index("upper_lip"), CLASS_NAMES.index("lower_lip")])
    x0, y0, x1, y1 = result.faces[0].box
    outside = np.ones(image.shape[:2], bool)
    outside[max(y0 - 16, 0):y1 + 16, max(x0 - 16, 0):x1 + 16] = False
    return image, lips, outside


def status(driver, elem_id: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea").get_attribute("value") or ""


def wait_status(driver, elem_id: str, text: str, timeout: float = 30) -> str:
    WebDriverWait(driver, timeout).until(lambda d: text in status(d, elem_id),
                                         message=f"#{elem_id} never said {text!r} (last: {status(driver, elem_id)!r})")
    return status(driver, elem_id)


def pick_colour(driver, elem_id: str, hex_colour: str):
    driver.find_element(By.CSS_SELECTOR, f"#{elem_id} button.dialog-button").click()
    field = WebDriverWait(driver, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=text]"))
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(hex_colour, Keys.ENTER)
    driver.find_element(By.TAG_NAME, "h2").click()   # close the picker


def upload(driver, path: Path):
    clear = driver.find_elements(By.CSS_SELECTOR, "#input-image button[aria-label='Remove Image']")
    if clear:
        clear[0].click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#input-image input[type=file]"))
    driver.find_element(By.CSS_SELECTOR, "#input-image input[type=file]").send_keys(str(path))


def fetch_image(url: str) -> np.ndarray:
    data_ = urllib.request.urlopen(url, timeout=10).read()
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data_, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_image_tab_end_to_end(server, browser, astronaut_regions, tmp_path):
    image, lips, outside = astronaut_regions
    browser.get(server)
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#input-image input[type=file]"))
    assert "upper_lip" in browser.find_element(By.ID, "legend").text   # the class legend is on the page

    pick_colour(browser, "lipstick-colour", "#%02x%02x%02x" % BLUE)
    swatch = browser.find_element(By.CSS_SELECTOR, "#lipstick-colour button.dialog-button").get_attribute("style")
    assert "rgb(%d, %d, %d)" % BLUE in swatch

    broken = tmp_path / "holiday.png"
    broken.write_bytes(b"not an image" * 100)
    upload(browser, broken)
    wait_status(browser, "image-status", "holiday.png is not a readable image")

    upload(browser, ROOT / "assets" / "astronaut.png")   # the server is still serving
    message = wait_status(browser, "image-status", "face found", timeout=40)
    assert message.startswith("1 face found")
    src = WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#output-image img").get_attribute("src"))
    time.sleep(0.5)
    browser.save_screenshot(str(SCREENSHOT))

    # everything the page loaded came from the demo server itself: nothing from the internet
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(server) or u.startswith(("data:", "blob:")) for u in loaded), loaded

    out = fetch_image(src)
    assert out.shape == image.shape
    target = np.array(BLUE, float)
    before = np.linalg.norm(image[lips] - target, axis=1).mean()
    after = np.linalg.norm(out[lips] - target, axis=1).mean()
    assert after < 0.8 * before, (before, after)
    np.testing.assert_array_equal(out[outside], image[outside])   # a PNG: lossless


def start_webcam(browser, url: str):
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "button[role=tab]"))
    next(b for b in browser.find_elements(By.CSS_SELECTOR, "button[role=tab]") if "Webcam" in b.text).click()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#webcam div[title='grant webcam access'] button")).click()
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#webcam button.capture-button")).click()   # Record
    wait_status(browser, "webcam-status", "ms per frame", timeout=30)


def test_webcam_tab_streams_live(server, browser):
    start_webcam(browser, server)
    first = browser.find_element(By.CSS_SELECTOR, "#webcam-output img").get_attribute("src")
    # frames keep coming: the result image is replaced while the camera runs
    WebDriverWait(browser, 15).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#webcam-output img").get_attribute("src") != first)
    frame = fetch_image(browser.find_element(By.CSS_SELECTOR, "#webcam-output img").get_attribute("src"))
    assert frame.ndim == 3 and min(frame.shape[:2]) >= 200
    assert "face" in status(browser, "webcam-status")


def test_video_tab_example_keeps_frames_and_audio(server, browser, tmp_path):
    browser.get(server)
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "button[role=tab]"))
    next(b for b in browser.find_elements(By.CSS_SELECTOR, "button[role=tab]") if "Video" in b.text).click()
    example = WebDriverWait(browser, 10).until(
        lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, "button.gallery-item") if e.is_displayed()])
    example[0].click()   # the bundled demo clip
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#input-video video"))
    browser.find_element(By.ID, "apply-video").click()
    message = wait_status(browser, "video-status", "audio kept", timeout=60)
    assert message.startswith("125 frames") and "faces in 125 of them" in message
    link = WebDriverWait(browser, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, "#video-download a"))
    result = tmp_path / "result.mp4"
    result.write_bytes(urllib.request.urlopen(link.get_attribute("href"), timeout=10).read())
    with av.open(str(result)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 125
        assert len(container.streams.audio) == 1


def test_two_tabs_have_their_own_live_sessions(browser):
    """The page served in-process, so the test can look at each tab's LiveSession."""
    import demo
    app = demo.build_demo()
    app.queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True)
    first = browser.current_window_handle
    try:
        start_webcam(browser, url)
        browser.switch_to.new_window("tab")
        start_webcam(browser, url)
        WebDriverWait(browser, 20).until(lambda d: len(demo.LIVE) == 2 and all(s.frames >= 3 for s in demo.LIVE.values()),
                                         message=f"two tabs, two streaming sessions expected: {demo.LIVE}")
        one, two = demo.LIVE.values()
        assert one.pipeline is not two.pipeline and one.pipeline.tracker is not two.pipeline.tracker
        assert one.pipeline.prob_smoother is not two.pipeline.prob_smoother
        assert one.pipeline.parser is two.pipeline.parser   # the model is loaded once for everyone
        browser.close()                                     # closing a tab ends its session...
        browser.switch_to.window(first)
        WebDriverWait(browser, 20).until(lambda d: len(demo.LIVE) == 1, message="closing a tab left its session")
        closed, = [s for s in (one, two) if s not in demo.LIVE.values()]
        assert closed.closed and closed.pipeline is None    # ...and frees its tracker
        alive, = demo.LIVE.values()
        frames = alive.frames
        WebDriverWait(browser, 10).until(lambda d: alive.frames > frames,   # the other tab goes on
                                         message="the remaining tab stopped streaming")
    finally:
        browser.switch_to.window(first)
        browser.get("about:blank")
        app.close()
