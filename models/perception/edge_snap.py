"""Photos: a face's parse snapped to the photo's own edges.

The parsers answer on the 256x256 aligned crop; warped back into a photo whose face is larger
than the crop, a part's edge is a bilinear ramp over a crop pixel or more, and even where the
face is smaller the networks' edges follow their receptive fields, not the brow's hairs or the
lip line. A guided filter (He et al., "Guided Image Filtering", TPAMI 2013) of every class plane,
with the photo's grey levels as the guide, moves each probability edge onto the nearest image
edge within its radius. It is linear and keeps constants, so the planes still sum to one.

Chosen on FaceSynthetics validation faces and LFW's training people (not on the yardsticks),
README "Accuracy": a radius of 2 frame pixels, growing with faces larger than the crop (1.5
frame pixels per crop pixel), and eps 1e-3 (grey-level steps under ~8 of 255 count as texture).
About 10 ms a face: for photos' label maps only; video keeps its frame budget. A face more than
WORK_SCALE frame pixels per crop pixel (a large face in a large photo) is snapped on a copy
shrunk to that scale and scaled back: the filter's time and memory stay those of a ~500-pixel
face instead of growing with the photo.
"""
import cv2
import numpy as np

EPS = 1e-3          # on a 0..1 guide: steps below ~0.03 (8 grey levels) are smoothed over
MIN_RADIUS = 2      # frame pixels
PER_CROP_PIXEL = 1.5  # radius in frame pixels per crop pixel, for faces larger than the crop
WORK_SCALE = 2.0      # at most this many frame pixels per crop pixel where the filter runs


def radius(frame_per_crop: float) -> int:
    """Filter radius (frame pixels) for a face with `frame_per_crop` frame pixels per crop pixel."""
    return max(MIN_RADIUS, int(round(PER_CROP_PIXEL * frame_per_crop)))


def snap(probs: np.ndarray, rgb: np.ndarray, frame_per_crop: float) -> np.ndarray:
    """(C, h, w) class probabilities over a box, snapped to the edges of its (h, w, 3) uint8 RGB
    pixels; in place (the result is `probs`)."""
    h, w = rgb.shape[:2]
    if min(h, w) < 2:
        return probs
    guide = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    shrink = min(1.0, WORK_SCALE / frame_per_crop)
    size = (max(2, round(w * shrink)), max(2, round(h * shrink)))
    if shrink < 1.0:
        guide = cv2.resize(guide, size, interpolation=cv2.INTER_AREA)
    flt = cv2.ximgproc.createGuidedFilter(guide.astype(np.float32) * (1.0 / 255.0),
                                          radius(min(frame_per_crop, WORK_SCALE)), EPS)
    for plane in probs:
        if not plane.any():   # classes nobody asked for stay 0
            continue
        if shrink < 1.0:
            small = flt.filter(cv2.resize(plane, size, interpolation=cv2.INTER_AREA))
            cv2.resize(small, (w, h), dst=plane, interpolation=cv2.INTER_LINEAR)
        else:
            plane[...] = flt.filter(plane)
    np.clip(probs, 0.0, 1.0, out=probs)   # the filter overshoots a little at strong edges
    return probs
