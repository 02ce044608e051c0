"""The landmark tier: fits each part from the 478 face-mesh points, in the spirit of the LaPa
annotation module (Liu et al., "A New Dataset and Boundary-Attention Semantic Segmentation for
Face Parsing", AAAI 2020, section 3.2): parabolas for the eyes and the inner mouth,
polygons for brows, outer lips, nose and jaw line; fusion order skin -> parts -> hair ->
background. The paper takes skin and hair from trained networks; here skin comes from the face
contour plus a skin-colour model, and hair from mediapipe's selfie segmentation plus head
geometry and a hair-colour model seeded above the forehead. No weights of its own.
"""
import cv2
import numpy as np

from core.classes import (BACKGROUND, HAIR, INNER_MOUTH, LEFT_BROW, LEFT_EYE, LOWER_LIP, NOSE,
                            NUM_CLASSES, RIGHT_BROW, RIGHT_EYE, SKIN, UPPER_LIP)
from core.mesh import (FACE_OVAL, LEFT_BROW_PTS, RIGHT_BROW_PTS, LEFT_EYE_UPPER, LEFT_EYE_LOWER, RIGHT_EYE_UPPER,
                       RIGHT_EYE_LOWER, LIPS_OUTER_UPPER, LIPS_OUTER_LOWER, LIPS_INNER_UPPER, LIPS_INNER_LOWER,
                       NOSE_PTS, LEFT_CHEEK_PTS, RIGHT_CHEEK_PTS, FOREHEAD_PTS)
from models.parsers.parser import Parser
from models.perception.person_mask import PersonSegmenter

ALL_CLASSES = frozenset(range(NUM_CLASSES))
EYE_FACTOR = 0.6   # the prior correction of its eyes (class attribute `prior` below)
SKIN_HAIR = frozenset((BACKGROUND, SKIN, HAIR))   # what the colour models and the person mask decide


def _parabola(points: np.ndarray, n: int = 24) -> np.ndarray:
    """Fit y = a x^2 + b x + c to a lid/lip boundary in its own frame (corner to corner
    along x) and sample n points: LaPa's smooth fit instead of a jagged polyline."""
    a, b = points[0], points[-1]
    axis = (b - a) / (np.linalg.norm(b - a) + 1e-6)
    normal = np.array([-axis[1], axis[0]])
    local = np.stack([(points - a) @ axis, (points - a) @ normal], 1)
    # least squares by its 3x3 normal equations (np.polyfit's lstsq cost 4x more, six fits a face)
    powers = local[:, 0:1] ** (2, 1, 0)
    coef = np.linalg.solve(powers.T @ powers, powers.T @ local[:, 1])
    xs = np.linspace(local[0, 0], local[-1, 0], n)
    ys = (coef[0] * xs + coef[1]) * xs + coef[2]
    return a + xs[:, None] * axis + ys[:, None] * normal


def _fill(mask, pts, value):
    cv2.fillPoly(mask, [np.round(pts * 4).astype(np.int32)], value, lineType=cv2.LINE_8, shift=2)


# the order parts are drawn in, each over the ones before (an eye over a brow, the mouth over the lips)
PART_ORDER = (NOSE, LEFT_BROW, RIGHT_BROW, LEFT_EYE, RIGHT_EYE, UPPER_LIP, LOWER_LIP, INNER_MOUTH)
BROWS = {LEFT_BROW: LEFT_BROW_PTS, RIGHT_BROW: RIGHT_BROW_PTS}
LIDS = {LEFT_EYE: (LEFT_EYE_UPPER, LEFT_EYE_LOWER), RIGHT_EYE: (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER)}
LIPS = {UPPER_LIP: (LIPS_OUTER_UPPER, LIPS_INNER_UPPER), LOWER_LIP: (LIPS_OUTER_LOWER, LIPS_INNER_LOWER)}


def _outline(m: np.ndarray, cls: int) -> np.ndarray:
    """The polygon of part `cls` from the mesh m (478, 2)."""
    if cls == NOSE:
        nose = m[list(NOSE_PTS)]
        return nose[cv2.convexHull(nose.astype(np.float32), returnPoints=False).ravel()]
    if cls in BROWS:
        return m[list(BROWS[cls])]
    if cls in LIDS:
        upper, lower = LIDS[cls]
        return np.vstack([_parabola(m[list(upper)]), _parabola(m[list(lower)])[::-1]])
    if cls in LIPS:
        outer, inner = LIPS[cls]
        return np.vstack([m[list(outer)], m[list(inner)][::-1]])
    return np.vstack([_parabola(m[list(LIPS_INNER_UPPER)]), _parabola(m[list(LIPS_INNER_LOWER)])])  # inner mouth


def _along(size: int, origin: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """(size, size): each pixel's offset from `origin` projected on `direction` (x, y)."""
    xs = np.arange(size, dtype=np.float64)[None, :] - origin[0]
    ys = np.arange(size, dtype=np.float64)[:, None] - origin[1]
    return xs * direction[0] + ys * direction[1]


def _colour_distance(lab: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Mahalanobis distance of every pixel to the Gaussian colour model of `samples`."""
    mean = samples.mean(0)
    cov = np.cov(samples.T) + np.eye(3) * 4.0
    whiten = np.linalg.cholesky(np.linalg.inv(cov))
    # z = (lab - mean) @ whiten as one per-pixel 3x4 affine map in OpenCV: numpy's matmul
    # here woke OpenBLAS's threads, whose spin-waiting cost more system time than the work
    affine = np.hstack([whiten.T, -(whiten.T @ mean)[:, None]]).astype(np.float32)
    z = cv2.transform(lab, affine)
    return cv2.magnitude(cv2.magnitude(z[..., 0], z[..., 1]), z[..., 2])


class LandmarkParser(Parser):
    name = "landmarks"
    needs_mesh = True
    mirror_helps = False   # the mirrored mesh draws the same polygons
    # its eye polygons run along the lash line, outside the eyeball: the eyes' odds times 0.6,
    # fitted on FaceSynthetics' 64 training faces (tools/fit_class_prior.py; README, Accuracy)
    prior = np.where(np.isin(np.arange(NUM_CLASSES), (LEFT_EYE, RIGHT_EYE)), EYE_FACTOR, 1.0).astype(np.float32)

    def __init__(self, blur_sigma: float = 1.0, person_segmenter: PersonSegmenter | None = None):
        self.blur_sigma = blur_sigma
        self._segmenter = person_segmenter or PersonSegmenter(model_selection=0)  # mediapipe's, built at first use

    def _person_mask(self, crop: np.ndarray) -> np.ndarray:
        return self._segmenter(crop) > 0.5

    def parse(self, crops, five, mesh=None):
        return self.parse_classes(crops, five, mesh, ALL_CLASSES)

    def parse_classes(self, crops, five, mesh, classes):
        """Probabilities of `classes` (the others 0): skin, hair and background, whose colour
        models and person mask cost most of the parse, only when one of them is asked for."""
        n, size = crops.shape[0], crops.shape[1]
        out = np.zeros((n, NUM_CLASSES, size, size), np.float32)
        for i in range(n):
            if mesh is None or np.isnan(mesh[i]).any():
                out[i, BACKGROUND] = 1.0  # the landmark tier cannot parse a face without a mesh
                continue
            label = self.label_map(crops[i], mesh[i], not classes.isdisjoint(SKIN_HAIR), classes)
            self._soften(label, classes, out[i])
        return out

    def _soften(self, label: np.ndarray, classes=ALL_CLASSES, out: np.ndarray | None = None) -> np.ndarray:
        """One-hot labels blurred into probabilities (into `out`, zeros). Only the classes present
        (and asked for) are blurred, the others stay 0; the blurred planes of a partition still sum
        to 1 (a normalised kernel, reflected border), so no division is needed. Each class is
        blurred only over its bounding box grown by the kernel's radius + 1 (beyond it the blur is
        0, and the window's reflected border reads only zeros): an eye is a few hundred pixels of
        the 65,536, and these blurs were most of the parts' cost."""
        out = np.zeros((NUM_CLASSES,) + label.shape, np.float32) if out is None else out
        r = int(self.blur_sigma * 3)
        present = np.flatnonzero(np.bincount(label.ravel(), minlength=NUM_CLASSES))
        for c in (c for c in present if c in classes):
            plane = (label == c).view(np.uint8)
            x, y, w, h = cv2.boundingRect(plane)
            y0, y1 = max(y - r - 1, 0), min(y + h + r + 1, label.shape[0])
            x0, x1 = max(x - r - 1, 0), min(x + w + r + 1, label.shape[1])
            window = plane[y0:y1, x0:x1].astype(np.float32)
            out[c, y0:y1, x0:x1] = cv2.GaussianBlur(window, (2 * r + 1, 2 * r + 1), self.blur_sigma) if r else window
        return out

    def label_map(self, crop: np.ndarray, mesh: np.ndarray, with_skin_hair: bool = True,
                  classes=ALL_CLASSES) -> np.ndarray:
        """(S, S) class ids for one aligned crop and its mesh in crop pixels; without skin and
        hair, the parts on background (the parts come out the same: fusion puts them on top),
        and of those only `classes` are sure to be drawn."""
        size = crop.shape[0]
        m = mesh.astype(np.float64)
        # parts are drawn in PART_ORDER, each over the ones before: without skin and hair only the
        # parts asked for and those drawn over them are needed (lipstick: the lips and the mouth)
        first = 0 if with_skin_hair else min((PART_ORDER.index(c) for c in classes if c in PART_ORDER),
                                             default=len(PART_ORDER))
        parts = np.zeros((size, size), np.uint8)
        for cls in PART_ORDER[first:]:
            _fill(parts, _outline(m, cls), cls)
        if not with_skin_hair:
            return parts   # on background, which is 0
        # skin/hair/background need no fine detail: decide them at half size (4x less work)
        half = cv2.resize(crop, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
        label = cv2.resize(self._skin_hair(half, m / 2), (size, size), interpolation=cv2.INTER_NEAREST)
        keep = parts > 0
        label[keep] = parts[keep]  # fusion: parts over skin and hair
        return label

    def _skin_hair(self, crop: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Skin, hair and background for a crop and its mesh (the fusion's first layers)."""
        size = crop.shape[0]
        lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
        person = self._person_mask(crop)

        # skin: the jaw-line contour, its top raised from the mesh's upper forehead towards the hairline
        oval = m[list(FACE_OVAL)]
        eye_mid = (m[33] + m[263]) / 2
        up = eye_mid - m[152]
        up /= np.linalg.norm(up)
        raised = oval + np.clip((oval - eye_mid) @ up, 0, None)[:, None] * 0.45 * up
        face = np.zeros((size, size), np.uint8)
        _fill(face, raised, 1)
        face = face.astype(bool)
        inner = np.zeros((size, size), np.uint8)
        _fill(inner, oval, 1)
        inner = inner.astype(bool)

        # colour model of the skin from the cheeks and forehead
        skin_pts = np.clip(np.round(m[list(LEFT_CHEEK_PTS + RIGHT_CHEEK_PTS + FOREHEAD_PTS)]).astype(int), 0, size - 1)
        skin_like = _colour_distance(lab, lab[skin_pts[:, 1], skin_pts[:, 0]]) < 3.0

        above_brows = _along(size, m[9], up) > 0
        label = np.zeros((size, size), np.uint8)
        label[inner] = SKIN
        # forehead band: skin where it looks like skin, hair (bangs) where it does not
        band = face & (above_brows | ~inner)
        label[band & skin_like] = SKIN
        label[band & ~skin_like] = np.where(person[band & ~skin_like], HAIR, BACKGROUND)

        # hair outside the face: every person pixel above the brows; between brows and mouth
        # those that are not skin-coloured (ears are background for us); below the mouth only
        # hair-coloured ones beside the face and connected to the hair above (not clothes)
        outside = ~face
        above_mouth = _along(size, m[13], up) > 0
        hair = person & outside & (above_brows | (above_mouth & ~skin_like))
        seed = person & outside & (_along(size, m[10], up) > 0.05 * size)
        if seed.sum() > 30:
            side = np.array([up[1], -up[0]])
            half_width = np.linalg.norm(m[454] - m[234]) / 2
            lateral = np.abs(_along(size, m[152], side))
            beside = (lateral > 0.6 * half_width) & (lateral < 1.3 * half_width)
            beside &= _along(size, m[152], up) > -0.2 * size
            long_hair = person & outside & ~above_mouth & beside & ~skin_like
            long_hair &= _colour_distance(lab, lab[seed]) < 3.0
            _, comp = cv2.connectedComponents((hair | long_hair).astype(np.uint8), connectivity=8)
            linked = np.unique(comp[hair])
            hair |= long_hair & np.isin(comp, linked[linked > 0])
        label[hair] = HAIR
        return label
