"""Face tracking on real faces: several faces with stable ids, faces entering and leaving,
the detector fallback for a face the mesh misses."""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from core import align
from models.data.readers.facesynthetics import load_landmarks
from stream.capture import VideoFileSource, read_image
from models.perception.tracker import FaceTracker
from core.types import Face
from tests.faces import real_faces, small_group


def _two_faces(shift: int, with_right: bool = True) -> np.ndarray:
    faces = real_faces()
    left = cv2.resize(faces["astronaut"][30:330, 100:350], (250, 300))
    right = cv2.resize(faces["portrait_A000371"][:360, :300], (250, 300))
    canvas = np.full((360, 640, 3), 200, np.uint8)
    canvas[30:330, 20 + shift:270 + shift] = left
    if with_right:
        canvas[30:330, 360 - shift:610 - shift] = right
    return canvas


def test_two_faces_keep_their_ids_while_moving_entering_and_leaving():
    tracker = FaceTracker(max_faces=4)
    ids_by_side = {}
    for t in range(6):
        faces = tracker.process(_two_faces(shift=3 * t))
        assert len(faces) == 2 and all(f.source == "mesh" for f in faces)
        for f in faces:
            side = "left" if f.five[:, 0].mean() < 320 else "right"
            assert ids_by_side.setdefault(side, f.id) == f.id
    assert ids_by_side["left"] != ids_by_side["right"]
    # the right face leaves: the left one keeps its id
    faces = tracker.process(_two_faces(shift=18, with_right=False))
    assert [f.id for f in faces] == [ids_by_side["left"]]
    for _ in range(12):  # gone long enough to be forgotten
        tracker.process(_two_faces(shift=18, with_right=False))
    # it comes back: a new face, a new id
    faces = tracker.process(_two_faces(shift=18))
    new = [f.id for f in faces if f.five[:, 0].mean() > 320]
    assert len(new) == 1 and new[0] not in ids_by_side.values()
    tracker.close()


def test_one_id_through_the_demo_clip():
    tracker = FaceTracker(max_faces=2)
    ids = set()
    with VideoFileSource("assets/demo.mp4") as src:
        for i, frame in enumerate(src):
            ids.update(f.id for f in tracker.process(frame.image))
            if i == 40:
                break
    assert ids == {0}
    tracker.close()


def test_detector_fallback_aligns_a_face_the_mesh_misses(shared_dir):
    # FaceSynthetics 000071: the mesh finds no face, the short-range detector does
    image = read_image(shared_dir / "data" / "facesynthetics" / "000071.png")
    tracker = FaceTracker(max_faces=1, static_images=True)
    faces = tracker.process(image)
    tracker.close()
    assert len(faces) == 1 and faces[0].source == "detector" and faces[0].mesh is None
    pupils = load_landmarks(shared_dir / "data" / "facesynthetics" / "000071_ldmks.txt")[68:70]
    in_crop = align.transform_points(pupils, faces[0].matrix)
    # a profile: the eyes nearly overlap, but the face sits where the template puts it
    assert np.linalg.norm(in_crop.mean(0) - align.template_points()[:2].mean(0)) < 20


def test_ids_carry_across_mesh_and_detector_frames():
    tracker = FaceTracker(max_faces=1)
    image = real_faces()["astronaut"]
    first = tracker.process(image)[0]
    # the next frame only the detector sees the face, a few pixels further
    five = first.five + 4
    fallback = Face(-1, five, align.alignment_matrix(five), None, 0.8, "detector")
    tracker._assign_ids([fallback])
    assert fallback.id == first.id
    again = tracker.process(image)[0]
    assert again.id == first.id and again.source == "mesh"
    tracker.close()


def test_a_false_face_the_mesh_keeps_tracking_is_not_shown():
    """In mirrored frames of the demo clip the mesh fits a face to the space-suit collar and
    tracks it for several frames; the detector's check on new faces keeps it out."""
    tracker = FaceTracker(max_faces=4)
    counts = []
    with VideoFileSource("assets/demo.mp4") as src:
        for i, frame in enumerate(src):
            counts.append(len(tracker.process(np.ascontiguousarray(frame.image[:, ::-1]))))
            if i == 41:
                break
    tracker.close()
    assert counts == [1] * 42


def _inside(face, box) -> bool:
    (x, y), (x0, y0, x1, y1) = face.five.mean(0), box
    return x0 < x < x1 and y0 < y < y1


def test_small_faces_in_a_photo_are_found_and_meshed():
    # four portraits 100-170 pixels wide in a 1280x720 photo (faces 45-85 pixels): the mesh and
    # the short-range detector find none; the full-range detector (on tiles) and the mesh on an
    # enlarged crop find them all, with their 478 points
    image, boxes = small_group()
    tracker = FaceTracker(max_faces=4, static_images=True)
    faces = tracker.process(image)
    tracker.close()
    assert len(faces) == 4 and all(f.source == "mesh" and f.mesh.shape == (478, 2) for f in faces)
    assert all(sum(_inside(f, box) for f in faces) == 1 for box in boxes)
    for f in faces:   # the eyes of the mesh lie level, at a plausible distance for these faces
        eyes = f.five[1] - f.five[0]
        assert 15 < np.linalg.norm(eyes) < 40 and abs(eyes[1]) < 0.2 * abs(eyes[0])


def test_small_faces_in_video_are_found_and_followed_in_their_crops():
    tracker = FaceTracker(max_faces=4)
    seen = []
    for t in range(92):   # 1280x720: the whole frame and 8 tiles in turn, one every 10 frames
        image, boxes = small_group(shift=t % 20)
        faces = tracker.process(image)
        seen.append({next(i for i, b in enumerate(boxes) if _inside(f, b)): f.id for f in faces})
    tracker.close()
    # the whole frame shows the two larger faces on the first frame, the tiles the other two
    # by the end of their round; each keeps its id from then on while it moves
    assert set(seen[0]) == {0, 2} and set(seen[-1]) == {0, 1, 2, 3}
    for k in range(4):
        ids = [s[k] for s in seen if k in s]
        first = next(i for i, s in enumerate(seen) if k in s)
        assert all(k in s for s in seen[first:]) and len(set(ids)) == 1


def test_mediapipe_loads_without_matplotlib_and_leaves_it_importable():
    """mediapipe's package init imports matplotlib.pyplot for its drawing helpers; the project
    loads mediapipe without it (start-up time), and matplotlib still imports for real later."""
    code = ("import sys; from models.perception.tracker import FaceTracker; "
            "print('matplotlib' in sys.modules); import matplotlib.pyplot as plt; print(callable(plt.plot))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3]).stdout.split()
    assert out == ["False", "True"]
