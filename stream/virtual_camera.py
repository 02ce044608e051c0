"""Frames to a virtual webcam, so that a video call (Zoom, Meet, Teams, OBS) can pick the processed
stream as its camera: pyvirtualcam, which drives v4l2loopback on Linux and OBS Studio's Virtual
Camera on Windows and macOS. The device must exist already; this module only says how to get one.
"""
import platform
import time

import cv2
import numpy as np

from core.errors import InputError

HOW_TO_GET_ONE = {
    "Linux": "load v4l2loopback (package v4l2loopback-dkms): sudo modprobe v4l2loopback devices=1 exclusive_caps=1",
    "Windows": "install OBS Studio 28 or later and start its Virtual Camera once",
    "Darwin": "install OBS Studio 28 or later and start its Virtual Camera once",
}
DEFAULT_FPS = 30.0   # for a camera that does not say its rate


class VirtualCamera:
    """A virtual webcam of a fixed size and rate that takes RGB frames.

    device: None for the first one found (e.g. /dev/video2, "OBS Virtual Camera"); backend: a
    pyvirtualcam backend name, None to try every registered one. InputError (one line, with how
    to get a device) when none can be opened."""

    def __init__(self, width: int, height: int, fps: float | None = None, device: str | None = None,
                 backend: str | None = None):
        try:
            import pyvirtualcam
        except ImportError:
            raise InputError("--virtual-camera needs pyvirtualcam: pip install pyvirtualcam==0.15.0") from None
        self.size = (int(width), int(height))
        self.fps = float(fps or DEFAULT_FPS)
        try:
            self._camera = pyvirtualcam.Camera(self.size[0], self.size[1], self.fps, device=device, backend=backend,
                                               fmt=pyvirtualcam.PixelFormat.RGB)
        except Exception as exc:   # pyvirtualcam raises RuntimeError listing each backend's reason
            reason = " ".join(str(exc).split())
            what = f"cannot open virtual camera {device}" if device else "no virtual camera device found"
            how = HOW_TO_GET_ONE.get(platform.system(), "see pyvirtualcam's documentation")
            raise InputError(f"{what} ({reason}); to get one, {how}") from None
        self.device = self._camera.device
        self.frames_sent = 0
        self._clock = None   # perf_counter() at time 0 of the paced frames

    def send(self, rgb: np.ndarray, at: float | None = None) -> None:
        """Send one RGB uint8 frame (resized if it is not the camera's size). With `at` (seconds
        since the first frame, as Frame.time), wait until then first: a file plays at its own rate."""
        if at is not None:
            now = time.perf_counter()
            if self._clock is None:
                self._clock = now - at
            if self._clock + at > now:
                time.sleep(self._clock + at - now)
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        self._camera.send(np.ascontiguousarray(rgb))
        self.frames_sent += 1

    def close(self) -> None:
        self._camera.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
