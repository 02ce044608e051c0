"""Real face images for tests: the public-domain astronaut and three US Congress portraits
(public domain, copied from ../shared/data/portraits into tests/fixtures)."""
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from skimage.data import astronaut

FIXTURES = Path(__file__).parent / "fixtures"


def real_faces() -> dict:
    images = {"astronaut": astronaut()}
    for path in sorted(FIXTURES.glob("portrait_*.jpg")):
        images[path.stem] = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return images


@lru_cache(maxsize=None)
def tracked(name: str):
    """(image, first face) for a fixture, tracked once per test session."""
    from models.perception.tracker import FaceTracker
    image = real_faces()[name]
    tracker = FaceTracker(static_images=True, max_faces=1)
    faces = tracker.process(image)
    tracker.close()
    return image, faces[0]


# where small_group puts each portrait: (name, scale, x, y); faces 45-85 pixels wide
SMALL_GROUP = [("portrait_A000371", 0.45, 80, 200), ("portrait_B001298", 0.35, 380, 350),
               ("portrait_C001135", 0.5, 680, 200), ("portrait_D000197", 0.3, 980, 350)]


def small_group(shift: int = 0):
    """A 1280x720 photo of the four fixture portraits, small (each 100-170 pixels wide), on grey;
    returns it and each portrait's box (x0, y0, x1, y1). `shift` moves them all right."""
    faces = real_faces()
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    boxes = []
    for name, scale, x, y in SMALL_GROUP:
        small = cv2.resize(faces[name], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = small.shape[:2]
        canvas[y:y + h, x + shift:x + shift + w] = small
        boxes.append((x + shift, y, x + shift + w, y + h))
    return canvas, boxes
