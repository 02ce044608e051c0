"""Five-point alignment to the canonical 256x256 crop, and warps between frame and crop.

Pure numpy/OpenCV (no mediapipe): the training path uses it too.

Five points, always in this order and in the *image's* left/right sense:
    0 left eye centre, 1 right eye centre, 2 nose, 3 left mouth corner, 4 right mouth corner.
The similarity transform maps the two eye centres and the mouth centre (mean of the corners)
onto the template; the nose is left out of the fit because it moves with pose.
"""
import cv2
import numpy as np

CROP_SIZE = 256
# Template in units of the crop side: eye centres and mouth centre. Chosen so that the whole
# head with curly hair stays inside the crop (checked by eye on the portraits).
TEMPLATE = np.array([(0.40, 0.48), (0.60, 0.48), (0.50, 0.70)], dtype=np.float64)

# mediapipe face mesh (478 points with iris): indices in the image's left/right sense,
# for an unmirrored frame (the subject's right eye appears on the image's left).
MESH_LEFT_IRIS, MESH_RIGHT_IRIS = 468, 473
MESH_LEFT_EYE_RING = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
MESH_RIGHT_EYE_RING = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
MESH_NOSE_BASE = (98, 97, 2, 326, 327)  # alae and subnasale: Wei et al.'s "nose base" points
MESH_MOUTH_LEFT, MESH_MOUTH_RIGHT = 61, 291


def template_points(size: int = CROP_SIZE) -> np.ndarray:
    return TEMPLATE * size


def five_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """(468 or 478, 2) face-mesh points -> (5, 2) five points."""
    if len(mesh) >= 478:
        eyes = mesh[[MESH_LEFT_IRIS, MESH_RIGHT_IRIS]]
    else:
        eyes = np.stack([mesh[list(MESH_LEFT_EYE_RING)].mean(0), mesh[list(MESH_RIGHT_EYE_RING)].mean(0)])
    nose = mesh[list(MESH_NOSE_BASE)].mean(0)
    return np.vstack([eyes, nose, mesh[MESH_MOUTH_LEFT], mesh[MESH_MOUTH_RIGHT]]).astype(np.float32)


def five_from_ibug68(points: np.ndarray) -> np.ndarray:
    """68-point iBUG layout (70 with two pupils, as FaceSynthetics) -> five points.

    iBUG indices follow the subject: 36-41 is the subject's right eye, on the image's left.
    """
    if len(points) >= 70:
        eyes = points[[68, 69]]
    else:
        eyes = np.stack([points[36:42].mean(0), points[42:48].mean(0)])
    nose = points[31:36].mean(0)
    return np.vstack([eyes, nose, points[48], points[54]]).astype(np.float32)


def five_from_detector(keypoints: np.ndarray) -> np.ndarray:
    """mediapipe face-detection keypoints (6, 2): subject's right eye, left eye, nose tip,
    mouth centre, right ear, left ear -> five points. The detector gives no mouth corners,
    so they are placed on the mouth centre, spread along the eye line by 0.4 of the eye
    distance (the mean corner spread relative to eye distance on frontal faces)."""
    left_eye, right_eye, nose, mouth = keypoints[0], keypoints[1], keypoints[2], keypoints[3]
    half = 0.4 * (right_eye - left_eye)
    return np.vstack([left_eye, right_eye, nose, mouth - half, mouth + half]).astype(np.float32)


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection)
    mapping src (K, 2) onto dst (K, 2), as a 2x3 matrix (Umeyama 1991)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def alignment_matrix(five: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """2x3 matrix mapping frame coordinates to the aligned crop of side `size`."""
    five = np.asarray(five, np.float64)
    src = np.stack([five[0], five[1], (five[3] + five[4]) / 2])
    return similarity_matrix(src, template_points(size))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def crop_per_frame(matrix: np.ndarray) -> float:
    """Crop pixels per frame pixel of a (2, 3) frame -> crop matrix (a similarity: its scale),
    at least 1e-6 (safe to divide by)."""
    return max(float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2])))), 1e-6)


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def scaled(matrix: np.ndarray, factor: float) -> np.ndarray:
    """The same alignment for a crop `factor` times the size (e.g. 0.5 for 256 -> 128)."""
    return np.asarray(matrix, np.float64) * factor


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int = CROP_SIZE,
              interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Cut the aligned crop out of an image (H, W, C); outside the image is black."""
    return cv2.warpAffine(image, np.asarray(matrix, np.float64), (size, size), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_box_in_frame(matrix: np.ndarray, frame_hw: tuple, size: int = CROP_SIZE) -> tuple:
    """Integer box (x0, y0, x1, y1) of the frame that the crop covers, clipped to the frame."""
    corners = np.array([(0, 0), (size, 0), (0, size), (size, size)], np.float64)
    pts = transform_points(corners, invert(matrix))
    h, w = frame_hw
    x0, y0 = np.floor(pts.min(0)).astype(int)
    x1, y1 = np.ceil(pts.max(0)).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def box_matrix(matrix: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """The alignment matrix for pixels of a box whose top-left corner is (x0, y0) in the frame."""
    m = np.asarray(matrix, np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    return m


def plane_to_box(plane: np.ndarray, matrix: np.ndarray, box: tuple, outside: float = 0.0,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Inverse-warp one plane (S, S) of an aligned crop onto a box (x0, y0, x1, y1) of the frame:
    (y1-y0, x1-x0) float32 (into `out` when given), `outside` where the box lies beyond the
    crop. One contiguous plane at a time: an 11-channel interleaved warp with its transposes
    cost 5-10x more."""
    x0, y0, x1, y1 = box
    return cv2.warpAffine(np.asarray(plane, np.float32), box_matrix(matrix, x0, y0), (x1 - x0, y1 - y0), dst=out,
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=outside)


def probs_to_frame(probs: np.ndarray, matrix: np.ndarray, frame_hw: tuple, classes=None, out=None):
    """Inverse-warp per-class probabilities (C, S, S) of an aligned crop into the frame.

    Returns (box, probs_box): box = (x0, y0, x1, y1) in the frame, probs_box (C, y1-y0, x1-x0)
    float32. Pixels of the box outside the crop get background (class 0) probability 1.
    Only the box is warped, never the whole frame; with `classes`, only their planes (the
    others 0, never written: a new array's zero pages cost nothing until touched). `out`: a
    zero-filled (C, y1-y0, x1-x0) float32 array (a view) to fill instead of a new one (a large
    photo's planes are hundreds of MB).
    """
    size = probs.shape[-1]
    box = crop_box_in_frame(matrix, frame_hw, size)
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return box, np.zeros((probs.shape[0], 0, 0), np.float32)
    if out is None:
        out = (np.empty if classes is None else np.zeros)((probs.shape[0], y1 - y0, x1 - x0), np.float32)
    for c in range(probs.shape[0]):
        if classes is None or c in classes:
            plane_to_box(probs[c], matrix, box, outside=1.0 if c == 0 else 0.0, out=out[c])
    return box, out


def five_point_heatmap(five: np.ndarray, size: int, sigma: float | None = None) -> np.ndarray:
    """One-channel landmark heatmap (the extra input of Wei et al.,
    "Accurate Facial Image Parsing at Real-Time Speed", Sec. III-B): a Gaussian at each of the
    five points (crop coordinates), max-combined; (size, size) float32 in [0, 1]."""
    sigma = sigma or size / 64
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    heat = np.zeros((size, size), np.float32)
    for x, y in np.asarray(five, np.float32):
        heat = np.maximum(heat, np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2)))
    return heat
