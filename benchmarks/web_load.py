"""Load test of the Gradio page on 127.0.0.1 (not a CI test): success rate, latency, sessions freed.

    python -m benchmarks.web_load [--clients 8] [--per-client 2] [--frames 40] [--port 7871]

Serves demo.py's page in this process, with demo.serve's limits (queue size, upload size), and
drives it with gradio_client, as remote users would:
1. burst: --clients clients at once, --per-client image requests each (the bundled astronaut);
2. mixed: two webcam sessions (two tabs of headless Chromium whose fake webcam plays the demo
   clip: gradio_client cannot drive a streaming event) stream for --stream-s seconds while the
   video tab processes the bundled clip and images keep arriving;
3. leave: the browser goes away: the page's unload hook must free each tab's LiveSession
   (tracker and smoothing);
4. refused: more requests than the queue holds at once, and an upload over the size limit:
   each refusal must reach the client as a readable message.
Prints, per kind, requests answered / sent and latency percentiles, the server's RSS, and the
webcam sessions still held after they left.
"""
import argparse
import concurrent.futures as futures
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Stats:
    def __init__(self):
        self.rows = {}   # kind -> list of (ok, seconds, message)
        self.lock = threading.Lock()

    def timed(self, kind, call):
        t0 = time.perf_counter()
        try:
            result = call()
            ok, message = True, ""
        except Exception as exc:   # what the client was told
            result, ok, message = None, False, f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.rows.setdefault(kind, []).append((ok, time.perf_counter() - t0, message))
        return result

    def report(self):
        for kind, rows in self.rows.items():
            times = sorted(1e3 * t for ok, t, _ in rows if ok)
            n_ok = len(times)
            line = f"{kind:>16}: {n_ok}/{len(rows)} answered"
            if times:
                q = statistics.quantiles(times, n=20) if len(times) > 1 else times * 19
                line += (f", latency median {statistics.median(times):.0f} ms, p95 {q[18]:.0f} ms, "
                         f"max {times[-1]:.0f} ms")
            print(line)
            for message in sorted({m for ok, _, m in rows if not ok}):
                print(f"{'':>18}refused/failed: {message[:200]}")


def webcam_browser(folder: Path):
    """Headless Chromium whose fake webcam plays the demo clip (gradio_client cannot drive a
    streaming event: the page's own JavaScript does)."""
    sys.path.insert(0, str(ROOT))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from tests.app.test_demo_browser import CHROMEDRIVER, CHROMIUM, fake_camera_clip
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1400,1000",
                 "--disable-dev-shm-usage", f"--user-data-dir={folder / 'profile'}",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={fake_camera_clip(folder / 'camera.y4m', frames=125)}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def start_webcam(browser, url):
    from tests.app.test_demo_browser import start_webcam as start
    start(browser, url)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--per-client", type=int, default=2)
    p.add_argument("--stream-s", type=float, default=30.0, help="seconds the two webcam sessions stream")
    p.add_argument("--port", type=int, default=7871)
    args = p.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from models.perception.quiet import hide_native_stderr
    hide_native_stderr()
    import numpy as np
    from PIL import Image
    from gradio_client import Client, handle_file
    import demo as page

    site = page.Page(page.PageConfig())
    blocks = page.build_demo(site)
    page.serve(blocks, "127.0.0.1", args.port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{args.port}/"
    image_api, video_api = "/apply", "/video"   # the page's named API (the webcam stream is the page's own)
    folder = Path(tempfile.mkdtemp(prefix="web_load_"))
    photos = []   # distinct photos (the astronaut shifted): identical uploads would share gradio's cached files
    astronaut = np.asarray(Image.open(page.EXAMPLE_IMAGE).convert("RGB"))
    for i in range(8):
        Image.fromarray(np.roll(astronaut, 4 * i, axis=1)).save(folder / f"photo_{i}.png")
        photos.append(handle_file(str(folder / f"photo_{i}.png")))
    image_args = [photos[0]]
    shuffled = itertools.cycle([[photo] for photo in photos])
    print(f"serving {url} (queue max {page.QUEUE_MAX_SIZE}, uploads up to {page.MAX_UPLOAD}); "
          f"endpoints {image_api}, {video_api}; RSS {rss_mb():.0f} MB")
    stats = Stats()
    Client(url, verbose=False).predict(*image_args, api_name=image_api)   # the parser loads once, untimed
    print(f"warm: RSS {rss_mb():.0f} MB")

    # 1. burst of image requests
    clients = [Client(url, verbose=False) for _ in range(args.clients)]
    with futures.ThreadPoolExecutor(len(clients)) as pool:
        jobs = [pool.submit(stats.timed, "image (burst)", lambda c=c: c.predict(*next(shuffled), api_name=image_api))
                for c in clients for _ in range(args.per_client)]
        futures.wait(jobs)
    print(f"after the burst: RSS {rss_mb():.0f} MB")

    # 2. two webcam sessions, a video and images at once
    webcam_calls = []   # (seconds, answered) per frame the page's webcam handler got
    on_webcam = site.on_webcam

    def timed_webcam(*a, **k):
        t0 = time.perf_counter()
        reply, live = on_webcam(*a, **k)
        webcam_calls.append((time.perf_counter() - t0, reply is not None))
        return reply, live

    site.on_webcam = timed_webcam   # the page's webcam handler calls the Page's method
    browser = webcam_browser(folder)
    video_args = [handle_file(str(page.EXAMPLE_VIDEO))]
    with futures.ThreadPoolExecutor(5) as pool:
        for tab in range(2):   # two browser tabs: two sessions, each with its own LiveSession
            if tab:
                browser.switch_to.new_window("tab")
            start_webcam(browser, url)
        t0 = time.perf_counter()
        jobs = [pool.submit(stats.timed, "video (5 s clip)", lambda: Client(url, verbose=False).predict(
            *video_args, api_name=video_api))]
        jobs += [pool.submit(stats.timed, "image (mixed)", lambda c=c: c.predict(*next(shuffled), api_name=image_api))
                 for c in clients[:4]]
        futures.wait(jobs)
        time.sleep(max(0.0, args.stream_s - (time.perf_counter() - t0)))
    held = {id(s): s.frames for s in site.live.values()}
    answered = [t for t, ok in webcam_calls if ok]
    if answered:
        q = statistics.quantiles([1e3 * t for t in answered], n=20)
        print(f"webcam: {len(held)} sessions held, frames per session {sorted(held.values())}; "
              f"{len(answered)} of {len(webcam_calls)} frames answered (the rest dropped while busy: newest "
              f"frame wins), handler median {1e3 * statistics.median(answered):.0f} ms, p95 {q[18]:.0f} ms; "
              f"RSS {rss_mb():.0f} MB")

    # 3. the webcam tabs close (the browser goes away)
    browser.quit()
    deadline = time.monotonic() + 60   # gradio's heartbeat notices within its rate
    while site.live and time.monotonic() < deadline:
        time.sleep(0.5)
    print(f"after the tabs closed: {len(site.live)} webcam session(s) still held "
          f"(freed {len(held) - len(site.live)} of {len(held)}), RSS {rss_mb():.0f} MB")

    # 4. refusals: more than the queue holds, and an upload over the limit
    burst = page.QUEUE_MAX_SIZE + 16
    with futures.ThreadPoolExecutor(burst) as pool:
        jobs = [pool.submit(stats.timed, "image (overload)", lambda c=c: c.predict(*next(shuffled), api_name=image_api))
                for c in [Client(url, verbose=False) for _ in range(burst)]]
        futures.wait(jobs)
    big = folder / "huge.png"
    noise = np.random.default_rng(0).integers(0, 255, (6000, 6000, 3), np.uint8)
    Image.fromarray(noise).save(big, compress_level=0)
    print(f"upload of {big.stat().st_size / 2**20:.0f} MB (limit {page.MAX_UPLOAD}):")
    stats.timed("upload over limit (gradio_client)", lambda: Client(url, verbose=False).predict(
        handle_file(str(big)), api_name=image_api))
    import httpx   # the server's own check, for clients that do not look at the limit first
    with open(big, "rb") as f:
        response = httpx.post(f"{url}gradio_api/upload", files={"files": ("huge.png", f)}, timeout=120)
    print(f"upload over limit (plain HTTP POST): status {response.status_code}: {response.text[:200]}")
    stats.report()
    blocks.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
