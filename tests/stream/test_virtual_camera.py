"""--virtual-camera through pyvirtualcam itself: a fake device registered with
pyvirtualcam.register_backend receives what a video call would (frames in order, at the source's
size, rate and colours), and with no device the run stops with a one-line error and writes nothing."""
import glob
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import pyvirtualcam
from pyvirtualcam.camera import BACKENDS

import run_live
from effects import parse_effects
from stream.capture import VideoFileSource
from stream import assemble
from tests.conftest import write_test_video


class FakeDevice:
    """A pyvirtualcam backend that keeps what it is sent (frames arrive as flat RGB buffers)."""
    opened = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        if fourcc != pyvirtualcam.util.encode_fourcc(pyvirtualcam.PixelFormat.RGB.value):
            raise ValueError("the fake device takes RGB only")
        self.width, self.height, self.fps, self.name = width, height, fps, device or "/dev/video-fake"
        self.frames, self.times, self.closed = [], [], False
        FakeDevice.opened.append(self)

    def send(self, frame):
        self.frames.append(frame.reshape(self.height, self.width, 3).copy())
        self.times.append(time.perf_counter())

    def close(self):
        self.closed = True

    def device(self):
        return self.name

    def native_fourcc(self):
        return None


@pytest.fixture
def fake_device():
    FakeDevice.opened.clear()
    pyvirtualcam.register_backend("fake", FakeDevice)
    yield FakeDevice
    BACKENDS.pop("fake", None)


def colour_clip(path, n=12, size=(96, 64), fps=20):
    """A clip without faces (frames pass through unchanged): red, with a white bar that moves one
    step a frame, so every frame is told apart and a swap of red and blue shows."""
    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            rgb = np.zeros((h, w, 3), np.uint8)
            rgb[..., 0] = 200
            rgb[:, 4 + 6 * i: 8 + 6 * i] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_clip_to_virtual_camera_in_order_at_its_size_rate_and_colours(tmp_path, capsys, fake_device):
    decoded = colour_clip(tmp_path / "red.mp4", n=12, fps=20)
    code = run_live.main(["--input", str(tmp_path / "red.mp4"), "--virtual-camera", "--model", "landmarks"])
    out = capsys.readouterr()
    assert code == 0, out.err
    [device] = fake_device.opened
    assert (device.width, device.height, device.fps) == (96, 64, 20) and device.closed
    assert len(device.frames) == 12
    for sent, source in zip(device.frames, decoded):   # no face: each frame as decoded, in order
        assert np.array_equal(sent, source)
    assert device.frames[0][..., 0].mean() > 150 and device.frames[0][..., 2].mean() < 60   # red stays red
    span = device.times[-1] - device.times[0]
    assert 11 / 20 - 0.02 <= span < 11 / 20 + 0.5           # paced at the clip's 20 fps, not as fast as it decodes
    assert "/dev/video-fake" in out.out
    assert not (Path("out") / "red_parsed.mp4").exists()     # no --output: the call gets it, no file


def test_effects_reach_the_virtual_camera_and_the_file_alike(tmp_path, capsys, fake_device, astronaut):
    clip = write_test_video(tmp_path / "face.mp4", astronaut, n_frames=8, size=(256, 256))
    code = run_live.main(["--input", str(clip), "--virtual-camera", "/dev/video7", "--output", str(tmp_path / "o.mp4"),
                          "--model", "landmarks", "--effects", "lipstick=#1e3cdc:0.9:matte"])
    assert code == 0, capsys.readouterr().err
    [device] = fake_device.opened
    assert device.name == "/dev/video7" and len(device.frames) == 8
    with av.open(str(tmp_path / "o.mp4")) as c:
        written = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(clip)) as c:
        original = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    for sent, file_frame, source in zip(device.frames, written, original):
        assert np.abs(sent.astype(int) - file_frame).mean() < 3           # the same frames (the file is lossy)
        assert np.abs(sent.astype(int) - source).max(axis=2).max() > 40    # with the blue lipstick on


def test_camera_loop_feeds_the_virtual_camera_without_a_window(tmp_path, fake_device):
    # run_camera's loop on a source that gives every frame (a camera drops what the loop has no
    # time for), so that the frames can be checked one by one
    decoded = colour_clip(tmp_path / "red.mp4", n=10, fps=30)
    source = VideoFileSource(tmp_path / "red.mp4")
    camera = run_live.open_virtual_camera(source, None)
    pipeline = assemble.build_pipeline(model="landmarks", effects=parse_effects("lipstick=#1e3cdc:0.9"), max_faces=1)
    try:
        assert run_live.run_camera(source, pipeline, None, virtual_camera=camera, window=False) == 0
    finally:
        camera.close()
    [device] = fake_device.opened
    assert (device.width, device.height, device.fps) == (96, 64, 30) and device.closed
    assert len(device.frames) == 10
    assert all(np.array_equal(sent, source) for sent, source in zip(device.frames, decoded))


@pytest.mark.skipif(bool(glob.glob("/dev/video*")), reason="a video device exists on this machine")
@pytest.mark.parametrize("device", [None, "/dev/video42"])
def test_no_virtual_camera_device_is_a_one_line_error_and_nothing_written(tmp_path, capsys, device):
    clip = write_test_video(tmp_path / "in.mp4", np.full((64, 96, 3), 128, np.uint8), n_frames=3)
    args = ["--input", str(clip), "--virtual-camera"] + ([device] if device else [])
    code = run_live.main(args + ["--output", str(tmp_path / "new" / "out.mp4"), "--model", "landmarks"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err
    assert "sudo modprobe v4l2loopback devices=1" in lines[0]
    assert (device or "no virtual camera device") in lines[0]
    assert not (tmp_path / "new").exists()                     # nothing half-written


def test_virtual_camera_needs_a_moving_source(tmp_path, capsys, fake_device, astronaut):
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    for args, words in ((["--input", str(photo), "--virtual-camera"], "not images"),
                        (["--input", str(photo), "--no-window"], "--no-window")):
        assert run_live.main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0]
    assert fake_device.opened == []


def test_camera_given_as_a_path_to_the_virtual_camera(tmp_path, capsys, fake_device):
    """--camera takes a device path or a stream URL as well as a number: here a file path, which
    OpenCV opens like a network stream; headless (--no-window), quiet (-q)."""
    decoded = colour_clip(tmp_path / "stream.mp4", n=8, fps=25)
    code = run_live.main(["-q", "--camera", str(tmp_path / "stream.mp4"), "--virtual-camera", "--no-window",
                          "--model", "landmarks"])
    out = capsys.readouterr()
    # the stream ends after its 8 frames: for a live source that is a camera gone away (exit 3, a warning)
    assert code == 3 and "stopped delivering frames" in out.err and "the file ended" in out.err, out.err
    [device] = fake_device.opened
    assert (device.width, device.height) == (96, 64) and 1 <= len(device.frames) <= 8   # newest frame wins
    assert all(any(np.abs(f.astype(int) - d).max() <= 2 for d in decoded) for f in device.frames)
