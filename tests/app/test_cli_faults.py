"""run_live.py against the faults real users meet: a damaged video, Ctrl-C, a full disk, an animated
GIF, a camera that goes away. Each: nothing good lost, one clear line, no crash."""
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import run_live
from stream.video_io import read_label_video
from tests.conftest import damage_file, write_test_video

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, *args):
    code = run_live.main(["--verbose", "--model", "landmarks", "--effects", "none", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def times(path):
    with av.open(str(path)) as container:
        return [float(f.pts * f.time_base) for f in container.decode(video=0)], len(container.streams.audio)


@pytest.fixture(scope="module")
def clean_clip(tmp_path_factory):
    from skimage import data
    return write_test_video(tmp_path_factory.mktemp("clip") / "clip.mp4", data.astronaut(), n_frames=200,
                            size=(320, 240), audio=True)


@pytest.mark.parametrize("where, n_bytes, code_expected", [("middle", 8_000, 0), ("end", 30_000, 3)])
def test_damaged_video_finishes_with_the_source_timing(clean_clip, tmp_path, capsys, where, n_bytes,
                                                       code_expected):
    broken = damage_file(clean_clip, tmp_path / "broken.mp4", where, n_bytes)
    code, out, err = run(capsys, "--input", broken, "--output", tmp_path / "out.mp4",
                         "--save-labels", tmp_path / "labels.mkv")
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "could not be decoded" in warning[0], err
    lost = int(warning[0].split()[1])
    assert code == code_expected == (3 if lost > 20 else 0)      # over 10% of 200 frames: exit 3
    assert "Traceback" not in err
    source_times, source_audio = times(clean_clip)
    out_times, out_audio = times(tmp_path / "out.mp4")
    assert out_times == pytest.approx(source_times, abs=1e-3)     # every frame, the source's timestamps
    assert out_audio == source_audio == 1
    assert read_label_video(tmp_path / "labels.mkv").shape[0] == 200


def test_ctrl_c_by_a_real_signal_leaves_a_playable_partial_file(tmp_path):
    from skimage import data
    clip = write_test_video(tmp_path / "long.mp4", data.astronaut(), n_frames=1200, size=(320, 240), audio=True)
    out = tmp_path / "out.mp4"
    child = subprocess.Popen([sys.executable, "run_live.py", "--input", str(clip), "--output", str(out),
                              "--model", "landmarks"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    temp = tmp_path / ".out.partial.mp4"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:   # frames are being written
        if temp.exists() and temp.stat().st_size > 20_000:
            break
        time.sleep(0.1)
    assert child.poll() is None, child.communicate()
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 130, [line for line in stderr.splitlines() if "frame/s]" not in line][-30:]
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("interrupted: the ") and "out.partial.mp4 (partial" in message, stderr[-2000:]
    frames = int(message.split()[2])
    assert not out.exists() and not temp.exists()                  # the final name never holds a truncated file
    partial_times, audio = times(tmp_path / "out.partial.mp4")
    assert 0 < frames < 600 and len(partial_times) == frames and audio == 1
    assert partial_times == pytest.approx(times(clip)[0][:frames], abs=1e-3)


def _file_size_limit(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("kind", ["video", "image"])
def test_disk_full_gives_one_line_and_no_truncated_file(tmp_path, kind):
    from skimage import data
    if kind == "video":
        source = write_test_video(tmp_path / "in.mp4", data.astronaut(), n_frames=100, size=(320, 240))
        out = tmp_path / "out" / "out.mp4"
    else:
        source = tmp_path / "in.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (512, 512, 3), np.uint8)).save(source)
        out = tmp_path / "out" / "out.png"
    out.parent.mkdir()
    child = subprocess.run([sys.executable, "run_live.py", "--input", str(source), "--output", str(out),
                            "--model", "landmarks"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           preexec_fn=_file_size_limit(40_000))
    lines = child.stderr.strip().splitlines()
    assert child.returncode == 2, child.stderr[-2000:]
    assert re.fullmatch(f"error: cannot (write|finish) {out}: File too large .the file-size limit was reached.(; "
                        "nothing was kept)?", lines[-1]), child.stderr[-2000:]
    assert "Traceback" not in child.stderr
    assert list(out.parent.iterdir()) == []                       # nothing posing as finished, no temp file


def _gif(path, frames=5):
    from skimage import data
    pictures = [Image.fromarray(np.roll(data.astronaut(), 60 * i, axis=1)).resize((160, 160)) for i in range(frames)]
    pictures[0].save(path, save_all=frames > 1, append_images=pictures[1:], loop=0,
                     duration=[100, 100, 200, 100, 300][:frames] if frames > 1 else 100)
    return path


def test_animated_gif_becomes_a_video(tmp_path, capsys):
    gif = _gif(tmp_path / "dance.gif")
    code, out, err = run(capsys, "--input", gif, "--output", tmp_path / "dance.mp4")
    assert code == 0, err
    assert times(tmp_path / "dance.mp4")[0] == pytest.approx([0, 0.1, 0.2, 0.4, 0.5], abs=1e-3)
    for name in ("dance.png", "out.gif"):
        code, out, err = run(capsys, "--input", gif, "--output", tmp_path / name)
        assert code == 2 and err.strip().splitlines() == [
            "error: dance.gif (an animated GIF) makes a video, not an image: use --output NAME.mp4 (or .mkv, .mov, .webm)"]
        assert not (tmp_path / name).exists()
    still = _gif(tmp_path / "still.gif", frames=1)
    code, out, err = run(capsys, "--input", still, "--output", tmp_path / "still.png")
    assert code == 0 and np.asarray(Image.open(tmp_path / "still.png")).shape == (160, 160, 3)


def test_camera_that_goes_away_keeps_the_recording(tmp_path, capsys, monkeypatch, tmp_video):
    from stream import assemble
    from stream.capture import CameraSource
    from tests.stream.test_capture import Unplugged
    monkeypatch.delenv("DISPLAY", raising=False)       # headless: records without a window
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    camera = CameraSource(Unplugged(tmp_video(n_frames=40, size=(128, 96)), 15), max_failed_reads=5)
    pipeline = assemble.build_pipeline(model="landmarks", max_faces=1)
    code = run_live.run_camera(camera, pipeline, None, output=tmp_path / "rec.mp4")
    out, err = capsys.readouterr()
    assert code == 3
    assert err.strip().splitlines()[-1].startswith("warning: camera capture stopped delivering frames after ")
    assert f"the recording so far is in {tmp_path / 'rec.mp4'}" in err
    frames = int(out.split("(")[-1].split()[0])
    assert 0 < frames <= 15 and len(times(tmp_path / "rec.mp4")[0]) == frames


def test_camera_without_display_or_output_is_one_line(tmp_path, capsys, monkeypatch, tmp_video):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    from stream import assemble
    from stream.capture import CameraSource
    import cv2
    camera = CameraSource(cv2.VideoCapture(str(tmp_video(n_frames=5))))
    from core.errors import InputError
    with pytest.raises(InputError, match="no display"):
        run_live.run_camera(camera, assemble.build_pipeline(model="landmarks", max_faces=1), None)


def test_device_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    photo = ROOT / "tests" / "fixtures" / "portrait_B001298.jpg"
    code = run_live.main(["--input", str(photo), "--output", str(tmp_path / "o.png"), "--model", "rnng", "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --device cuda asked for, but no CUDA GPU") and err.strip().count("\n") == 0
    assert not (tmp_path / "o.png").exists()


def test_a_stream_url_that_ends_says_so_and_keeps_the_recording(tmp_path, capsys, monkeypatch, tmp_video):
    """--camera http://.../clip.mp4 (a file served over HTTP, a local server here): read as a live
    stream, it ends; the warning says the stream ended (not 'unplugged') and keeps the recording."""
    import functools
    import http.server
    import threading
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    clip = tmp_video(n_frames=30, size=(128, 96))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(Path(clip).parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{Path(clip).name}"
        code, out, err = run(capsys, "--camera", url, "--output", tmp_path / "rec.mp4")
    finally:
        server.shutdown()
    assert code == 3 and (tmp_path / "rec.mp4").is_file()
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"warning: camera {url} stopped delivering frames") and "the stream ended" in last
    assert "unplugged" not in last


def test_video_output_without_extension_is_refused_before_any_model_loads(tmp_video, tmp_path, capsys, monkeypatch):
    from stream import assemble

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the output name was checked")
    monkeypatch.setattr(assemble, "build_pipeline", no_model)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = run(capsys, "--input", tmp_video(n_frames=3), "--output", out_dir / "clip")
    assert code == 2 and err.strip().splitlines() == [
        f"error: cannot write {out_dir / 'clip'}: a file name with an extension is needed (e.g. .mp4, .mkv, .webm, .mov)"]
    assert list(out_dir.iterdir()) == []
    code, out, err = run(capsys, "--input", tmp_video(n_frames=3), "--output", out_dir / "clip.mp4",
                         "--save-labels", out_dir / "labels")
    assert code == 2 and err.strip().splitlines() == [
        f"error: cannot write {out_dir / 'labels'}: a file name with an extension is needed "
        "(a video's label maps go to a lossless .mkv, e.g. labels.mkv)"]
    assert list(out_dir.iterdir()) == []
