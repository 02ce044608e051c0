"""Real face images for tests: the public-domain astronaut and three US Congress portraits
(public domain, copied from ../shared/data/portraits into tests/fixtures)."""
from functools import lru_cache
from pathlib import Path

import cv2
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
