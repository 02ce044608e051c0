"""Face tracking: mediapipe face mesh (478 points with iris) for every face it finds, the
face detector as a fallback for faces the mesh misses (profiles, masks), faces too small for
the mesh's own detector meshed in an enlarged crop around them, and stable ids.

Returns raw (unsmoothed) points in frame pixels; stream.smoothing steadies them.
"""
import cv2
from models.perception.mediapipe_solutions import mp
import numpy as np

from core import align
from core.types import Face


SMALL_CROP = 256   # a small face is meshed in a crop of this side around it
SMALL_FACE = 0.12  # "small": a detector box under this share of the frame's long side (the mesh
                   # found a 167-pixel face in a 1280x960 frame, not an 84-pixel one)


class FaceTracker:
    def __init__(self, max_faces: int = 4, static_images: bool = False, min_confidence: float = 0.5,
                 detector_confidence: float = 0.3, detector_every: int = 5, max_missed: int = 10,
                 far_every: int = 30):
        self.max_faces = max_faces
        self.static_images = static_images
        self.min_confidence = min_confidence
        # In video the mesh graph runs its own face detector on every frame while it tracks fewer
        # faces than its max_num_faces (talking_d10: 2.9 against 1.8 ms of CPU a frame at 4 than
        # at 1). So it starts sized for one face and grows when the detector below, which looks
        # every `detector_every` frames, finds a face the mesh does not track. Photos: all at once.
        self.mesh = None
        self._mesh_size(max_faces if static_images else 1)
        # short-range model: NOTES.md found it recovers the faces the mesh misses
        self.detector = mp.solutions.face_detection.FaceDetection(
            model_selection=0, min_detection_confidence=detector_confidence)
        self.detector_every = 1 if static_images else detector_every
        # Faces under ~7% of the frame's width escape the mesh's and the short-range detector
        # (a 1280-wide frame: a face 84 pixels wide); the full-range one finds them (_far_views),
        # and the mesh, shown an enlarged crop around each, fits them; in video they are then
        # meshed in their crop on every frame.
        self.far_detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=detector_confidence)
        self.far_every = far_every
        self._crop_mesh = None      # made when the first small face is found
        self._small: list[np.ndarray] = []   # five points of the small faces in the last frame
        self.max_missed = max_missed
        self._tracks: dict[int, dict] = {}   # id -> {"centre", "scale", "missed"}
        self._next_id = 0
        self._frame_no = 0

    def process(self, image: np.ndarray) -> list[Face]:
        """All faces in an RGB frame, each with a stable id while it stays in view."""
        image = np.ascontiguousarray(image)
        faces = self._mesh_faces(image)
        if len(faces) < self.max_faces:
            faces += self._small_faces(image, faces)[: self.max_faces - len(faces)]
        # the detector only looks when the mesh may have missed someone
        if len(faces) < self.max_faces and (not faces or self._frame_no % self.detector_every == 0):
            found = self._detector_faces(image, faces)
            if found and self.mesh_faces < min(len(faces) + len(found), self.max_faces):
                self._mesh_size(len(faces) + len(found))   # a graph for them all, on this frame too
                grown = self._mesh_faces(image)
                faces = grown + [f for f in faces if not any(_same_face(f.five, g.five) for g in grown)]
                found = [d for d in found if not any(_same_face(d.five, f.five) for f in faces)]
            faces += found[: self.max_faces - len(faces)]
        self._frame_no += 1
        self._assign_ids(faces)
        for f in faces:  # a face new to the tracker must convince the detector too
            track = self._tracks[f.id]
            if "real" not in track:
                track["real"] = f.source == "detector" or self._detector_confirms(image, f)
        return [f for f in faces if self._tracks[f.id]["real"]]

    def _mesh_faces(self, image) -> list[Face]:
        h, w = image.shape[:2]
        faces = []
        for lm in self.mesh.process(image).multi_face_landmarks or []:
            mesh = np.array([(p.x * w, p.y * h) for p in lm.landmark], np.float32)
            five = align.five_from_mesh(mesh)
            faces.append(Face(-1, five, align.alignment_matrix(five), mesh, 1.0, "mesh"))
        return faces

    def _small_faces(self, image, known: list[Face]) -> list[Face]:
        """The small faces of the last frame, meshed again where they were; and the full-range
        detector's small faces that nobody knows, meshed in a crop (on the frames and views
        _far_views gives)."""
        h, w = image.shape[:2]
        faces = []
        for five in ([] if self.static_images else self._small):
            eyes = float(np.linalg.norm(five[1] - five[0]))
            faces += self._mesh_around(image, five.mean(0), 6 * eyes, known + faces)
        for view in self._far_views(h, w):
            for five, centre, side, _ in _detections(self.far_detector, image, view):
                # larger faces are the mesh's (the short-range detector below grows its graph)
                if side < SMALL_FACE * max(h, w) and not any(_same_face(five, f.five) for f in known + faces):
                    faces += self._mesh_around(image, centre, 3 * side, known + faces)
        self._small = [f.five for f in faces]
        return faces

    def _far_views(self, h: int, w: int) -> list[tuple[int, int, int, int]]:
        """Where the full-range detector looks on this frame: (x, y, width, height) boxes. It
        sees its input at 192 pixels, so a frame with a short side of 640 or more is also cut
        into overlapping square tiles of 0.6 of it (a tile shows faces twice as large: in a
        1280x720 group photo faces 45 pixels wide are found, 58 on the whole frame). Photos: the
        frame and every tile. Video: the whole frame every `far_every` frames; with tiles, one
        view (the frame or a tile, in turn) every third of that. 5 ms a view."""
        side = int(0.6 * min(h, w))
        tiled = side >= 384   # smaller frames: a face missed whole is too small to parse
        step = max(1, self.far_every // 3) if tiled else self.far_every
        if not self.static_images and self._frame_no % step:
            return []
        views = [(0, 0, w, h)]
        if tiled:
            views += [(x, y, side, side) for y in _tile_starts(h, side) for x in _tile_starts(w, side)]
        return views if self.static_images else [views[(self._frame_no // step) % len(views)]]

    def _mesh_around(self, image, centre, side: float, known: list[Face]) -> list[Face]:
        """The mesh of the face in the square of `side` pixels around `centre`, enlarged to
        SMALL_CROP (outside the frame is black); [] when it finds none or one already known."""
        scale = SMALL_CROP / max(side, 1.0)
        to_crop = np.array([[scale, 0, SMALL_CROP / 2 - scale * centre[0]],
                            [0, scale, SMALL_CROP / 2 - scale * centre[1]]])
        crop = cv2.warpAffine(image, to_crop, (SMALL_CROP, SMALL_CROP), flags=cv2.INTER_LINEAR)
        if self._crop_mesh is None:
            self._crop_mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=self.min_confidence)
        found = self._crop_mesh.process(crop).multi_face_landmarks
        if not found:
            return []
        in_crop = np.array([(p.x, p.y) for p in found[0].landmark], np.float32) * SMALL_CROP
        mesh = ((in_crop - to_crop[:, 2]) / scale).astype(np.float32)
        five = align.five_from_mesh(mesh)
        if any(_same_face(five, f.five) for f in known):
            return []
        return [Face(-1, five, align.alignment_matrix(five), mesh, 1.0, "mesh")]

    def _mesh_size(self, faces: int):
        """A new mesh graph for up to `faces` faces (5-10 ms; it finds the tracked ones again on
        its first frame)."""
        if self.mesh is not None:
            self.mesh.close()
        self.mesh_faces = min(faces, self.max_faces)
        self.mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=self.static_images, max_num_faces=self.mesh_faces, refine_landmarks=True,
            min_detection_confidence=self.min_confidence, min_tracking_confidence=0.5)

    def _detector_confirms(self, image, face: Face) -> bool:
        """The mesh now and then fits a face to a pattern (seen on a space-suit collar) and then
        keeps tracking it; the detector, shown the face's aligned crop, tells real from false."""
        crop = np.ascontiguousarray(align.warp_crop(image, face.matrix))
        for det in self.detector.process(crop).detections or []:
            if det.score[0] < 0.7:  # real faces score 0.8-0.95 here; the collar scored 0.58
                continue
            box = det.location_data.relative_bounding_box
            cx, cy = box.xmin + box.width / 2, box.ymin + box.height / 2
            if abs(cx - 0.5) < 0.2 and abs(cy - 0.55) < 0.25:
                return True
        return False

    def _detector_faces(self, image, known: list[Face]) -> list[Face]:
        h, w = image.shape[:2]
        found = []
        for five, _, _, score in _detections(self.detector, image, (0, 0, w, h)):
            if any(_same_face(five, f.five) for f in known + found):
                continue
            found.append(Face(-1, five, align.alignment_matrix(five), None, score, "detector"))
        return found[: self.max_faces - len(known)]

    def _assign_ids(self, faces: list[Face]):
        """Greedy nearest-centre matching to the faces of the previous frames."""
        unmatched = set(self._tracks)
        pairs = []
        for i, f in enumerate(faces):
            centre, scale = _centre_scale(f.five)
            for tid in self._tracks:
                t = self._tracks[tid]
                d = np.linalg.norm(centre - t["centre"]) / max(scale, t["scale"])
                if d < 1.5:
                    pairs.append((d, i, tid))
        taken = set()
        for d, i, tid in sorted(pairs):
            if i in taken or tid not in unmatched:
                continue
            faces[i].id = tid
            taken.add(i)
            unmatched.discard(tid)
        for f in faces:
            if f.id < 0:
                f.id = self._next_id
                self._next_id += 1
            centre, scale = _centre_scale(f.five)
            self._tracks.setdefault(f.id, {}).update(centre=centre, scale=scale, missed=0)
        for tid in unmatched:
            self._tracks[tid]["missed"] += 1
            if self.static_images or self._tracks[tid]["missed"] > self.max_missed:
                del self._tracks[tid]

    def active_ids(self) -> set:
        return set(self._tracks)

    def close(self):
        self.mesh.close()
        self.detector.close()
        self.far_detector.close()
        if self._crop_mesh is not None:
            self._crop_mesh.close()


def _detections(detector, image, view):
    """(five points, box centre, box side, score) of a mediapipe face detector's faces in `view`
    ((x, y, width, height) of `image`), in frame pixels."""
    x0, y0, vw, vh = view
    if (vw, vh) != image.shape[1::-1]:
        image = np.ascontiguousarray(image[y0:y0 + vh, x0:x0 + vw])
    for det in detector.process(image).detections or []:
        kp = np.array([(x0 + k.x * vw, y0 + k.y * vh) for k in det.location_data.relative_keypoints], np.float32)
        box = det.location_data.relative_bounding_box
        centre = np.array([x0 + (box.xmin + box.width / 2) * vw, y0 + (box.ymin + box.height / 2) * vh])
        yield align.five_from_detector(kp), centre, max(box.width * vw, box.height * vh), float(det.score[0])


def _tile_starts(length: int, side: int) -> list[int]:
    """Starts of tiles of `side` covering `length`, overlapping by at least a third."""
    count = 1 + int(np.ceil(max(length - side, 0) / (side * 2 / 3)))
    return sorted(set(np.linspace(0, max(length - side, 0), count).astype(int).tolist()))


def _centre_scale(five):
    return five.mean(0), float(np.linalg.norm(five[1] - five[0])) + 1e-3


def _same_face(a, b) -> bool:
    ca, sa = _centre_scale(a)
    cb, sb = _centre_scale(b)
    return np.linalg.norm(ca - cb) < 0.8 * max(sa, sb)
