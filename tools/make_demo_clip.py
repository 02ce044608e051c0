"""Make assets/demo.mp4: a short clip the project may ship, from the public-domain astronaut photo.

A virtual hand-held camera looks at skimage.data.astronaut() (NASA, public domain): a slow pan,
a zoom in and out, a slight roll and a brief shake, at 25 fps, with a quiet generated AAC chord
so that audio passthrough can be shown. Deterministic: the same bytes on every run with the same
PyAV/FFmpeg build (x264 runs single-threaded and without B-frames for that: with B-frames, two
encodes in one process were seen to differ on a single core).

    python tools/make_demo_clip.py [--out assets/demo.mp4] [--seconds 5] [--size 448]
"""
import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

FPS = 25
SAMPLE_RATE = 44100


def camera_at(t: float, seconds: float) -> tuple:
    """(centre x, centre y, view width in source pixels, roll in degrees) at time t."""
    phase = 2 * np.pi * t / seconds
    view = 335 - 35 * np.sin(phase - 0.6)                    # zoom in, then back out
    top = 7 + 5 * np.sin(1.5 * phase + 1.0)                  # keep the top of the hair in view
    cx = 228 + 20 * np.sin(phase) + 8 * np.sin(2.3 * phase + 0.5)
    cy = top + view / 2
    roll = 2.0 * np.sin(1.2 * phase)
    # a short shake around 60% of the clip, as when the camera is bumped
    shake = np.exp(-((t - 0.6 * seconds) / 0.15) ** 2)
    cx += 5 * shake * np.sin(2 * np.pi * 11 * t)
    cy += 4 * shake * np.sin(2 * np.pi * 13 * t + 1.0)
    roll += 1.2 * shake * np.sin(2 * np.pi * 7 * t)
    return cx, cy, view, roll


def render_frame(image: np.ndarray, t: float, seconds: float, size: int) -> np.ndarray:
    cx, cy, view, roll = camera_at(t, seconds)
    # rotate and scale about the view's centre, then move that centre to the output's centre
    matrix = cv2.getRotationMatrix2D((cx, cy), roll, size / view)
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT101)


def chord(seconds: float) -> np.ndarray:
    """A soft A-minor chord with a slow swell and fades: float32 mono in [-1, 1]."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = sum(np.sin(2 * np.pi * f * t) / (k + 1) for k, f in enumerate([220.0, 261.63, 329.63]))
    swell = 0.75 + 0.25 * np.sin(2 * np.pi * t / seconds - np.pi / 2)
    fade = np.clip(np.minimum(t, seconds - t) / 0.3, 0, 1)
    return (0.12 * wave * swell * fade).astype(np.float32)


def make_clip(out: Path, seconds: float = 5.0, size: int = 448, crf: int = 23) -> Path:
    image = data.astronaut()
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": "slow", "threads": "1", "bf": "0"}
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.bit_rate = 64000
        for index in range(int(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(render_frame(image, index / FPS, seconds, size), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = chord(seconds)
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "demo.mp4")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=448)
    args = parser.parse_args()
    path = make_clip(args.out, args.seconds, args.size)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
