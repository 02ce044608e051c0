"""Shared test fixtures: the ../shared data folder, the astronaut image, real short video files."""
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _own_picks_file(tmp_path_factory, monkeypatch):
    """Each test remembers --model auto's live picks in a folder of its own (not ~/.cache), so one
    test's pick is never another's (the subprocesses a test starts inherit it)."""
    monkeypatch.setenv("FACEPARSE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """/work/shared (../shared beside the repository); skips the test when it is absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"shared data folder not found at {SHARED} (only on the project's machines)")
    return SHARED


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's public-domain astronaut photo: (512, 512, 3) uint8 RGB, one frontal face."""
    return data.astronaut()


def write_test_video(path, image, n_frames=12, size=(96, 64), fps=25, audio=False, pts=None,
                     time_base=None, audio_seconds=None, codec="libx264", pix_fmt="yuv420p", rotation=0,
                     options=None) -> Path:
    """A real h264 clip (libx264 defaults, so with B-frames) of a crop sliding over `image`.

    pts: explicit timestamps (variable frame rate) in `time_base` (default 1/1000 s);
    audio: add an AAC stream (44.1 kHz mono 440 Hz tone) lasting the video's length, or with
    another encoder's name (e.g. "flac", "libopus": the container must hold it), that codec's;
    codec, pix_fmt, options: the encoder's (e.g. "libx265", "yuv420p10le", {"g": "25"});
    rotation: a display matrix turning the picture this many degrees counter-clockwise to show
    it (a phone's portrait clip); the frames are stored turned the other way, so shown upright
    they are the sliding crop."""
    width, height = size
    rate = Fraction(fps).limit_denominator(1001)
    if pts is not None:
        n_frames = len(pts)
        time_base = time_base or Fraction(1, 1000)
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate, options=options or {})
        if rotation % 180:
            width, height = height, width   # stored sideways
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if rotation:
            video.set_display_rotation(rotation)
        if time_base is not None:
            video.codec_context.time_base = time_base
            video.time_base = time_base
        audio_codec = "aac" if audio is True else audio
        sound = container.add_stream(audio_codec, rate=48000 if audio_codec == "libopus" else 44100) if audio else None
        full_h, full_w = image.shape[:2]
        for i in range(n_frames):
            x = int((full_w // 3) * i / max(1, n_frames - 1))      # slide right over a third of the image
            crop = image[: full_h * 2 // 3, x: x + full_w * 2 // 3]
            upright = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
            stored = np.ascontiguousarray(np.rot90(upright, -rotation // 90))   # shown turned back upright
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            if audio_seconds is None:
                audio_seconds = float((pts[-1] * time_base) + 1 / rate) if pts is not None else n_frames / float(rate)
            samples = int(audio_seconds * 44100)
            wave = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
            resample = None if audio_codec == "aac" else av.AudioResampler(
                format=sound.codec_context.format.name, layout="mono", rate=sound.rate)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(wave[None, start:start + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = 44100, start
                for c in [chunk] if resample is None else resample.resample(chunk):
                    container.mux(sound.encode(c))
            container.mux(sound.encode(None))
    return Path(path)


def damage_file(path, out, where: str = "middle", n_bytes: int = 20_000, seed: int = 0) -> Path:
    """A copy of `path` with `n_bytes` of random garbage written over it: in the middle, or at
    the end of the media data (for an mp4 whose index is at the end: just before it, i.e. the
    last frames), as a broken download or a bad sector leaves it."""
    import random
    data_ = bytearray(Path(path).read_bytes())
    index = data_.rfind(b"moov") - 4
    end = index if index > len(data_) // 2 else len(data_)
    at = len(data_) // 2 - n_bytes // 2 if where == "middle" else end - n_bytes
    data_[at:at + n_bytes] = random.Random(seed).randbytes(n_bytes)
    Path(out).write_bytes(bytes(data_))
    return Path(out)


class RunsCode:
    """Unpickling this calls os.system to create `marker`: what a malicious 'checkpoint' holds."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def tmp_video(tmp_path, astronaut):
    """Factory: tmp_video(name="clip.mp4", **kwargs of write_test_video) -> Path of a real clip."""
    def make(name="clip.mp4", **kwargs):
        return write_test_video(tmp_path / name, astronaut, **kwargs)
    return make


@pytest.fixture(scope="session")
def facesynthetics_dataset(shared_dir, tmp_path_factory) -> Path:
    """The 80 FaceSynthetics faces of ../shared in the compact dataset format (built once per
    test session: aligned with the pipeline's own face mesh, 64 train / 16 val)."""
    from models.data.build import build
    out = tmp_path_factory.mktemp("facesynthetics")
    build("facesynthetics", str(shared_dir / "data" / "facesynthetics"), str(out), quiet=True)
    return out
