"""The --camera window as a user sees it: a real window on a virtual X screen (Xvfb), fed by a
camera-paced capture of the demo clip; the loop shows frames with effects and ends cleanly."""
import os
import shutil
import subprocess
import time

import av
import cv2
import numpy as np
import pytest

import effects
import run_live
from stream import session
from stream.capture import CameraSource


class CameraPacedFile(cv2.VideoCapture):
    """A video file delivered at a camera's pace (25 fps), as cv2 delivers a webcam."""

    def read(self, *args):
        time.sleep(0.04)
        return super().read(*args)


@pytest.fixture
def virtual_screen():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb; .ci/run does)")
    display = ":77"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "800x600x24"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    yield display
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    server.terminate()
    server.wait(timeout=10)


def test_camera_window_shows_frames_with_effects(virtual_screen):
    source = CameraSource(CameraPacedFile("assets/demo.mp4"))
    settings = effects.parse_effects("lipstick=#1e3cdc:0.9:matte")
    pipeline = session.build_pipeline(model="landmarks", effects=settings, max_faces=1)
    shots = []

    def grab_later():
        time.sleep(2.5)
        with av.open(virtual_screen, format="x11grab") as screen:
            shots.append(next(screen.decode(video=0)).to_ndarray(format="rgb24"))

    import threading
    grabber = threading.Thread(target=grab_later)
    grabber.start()
    assert run_live.run_camera(source, pipeline, settings) == 0
    grabber.join()
    assert source.frames_read == 125
    assert source.dropped < 125 // 2  # the window keeps up with a 25 fps camera
    screen = shots[0]
    lit = (screen.sum(-1) > 0).mean()
    assert lit > 0.2  # the window with the video is on the screen
    blue = (screen[..., 2].astype(int) - screen[..., 0] > 60) & (screen[..., 2] > 120)
    assert blue.sum() > 150  # blue lipstick on the lips (the clip itself has at most 48 such pixels)
