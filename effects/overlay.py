"""Label overlays (argmax classes in core.classes.PALETTE colours) and a legend."""
import cv2
import numpy as np

from core.classes import BACKGROUND, CLASS_NAMES, PALETTE, argmax_labels


def overlay_labels(frame: np.ndarray, parses: list, alpha: float = 0.5) -> np.ndarray:
    """A new frame with each face's argmax labels blended in at `alpha` (background left as is)."""
    out = frame.copy()
    for parse in parses:
        x0, y0, x1, y1 = parse.box
        if x1 <= x0 or y1 <= y0 or parse.probs.size == 0:
            continue
        label = argmax_labels(parse.probs)
        fg = label != BACKGROUND
        region = out[y0:y1, x0:x1]
        blended = region.astype(np.float32) * (1 - alpha) + PALETTE[label].astype(np.float32) * alpha
        np.copyto(region, (blended + 0.5).astype(np.uint8), where=fg[..., None])
    return out


def legend_image(swatch: int = 18, width: int = 150) -> np.ndarray:
    """RGB image listing the 11 classes with their colours, one row each."""
    img = np.full((swatch * len(CLASS_NAMES) + 4, width, 3), 255, np.uint8)
    for i, (name, colour) in enumerate(zip(CLASS_NAMES, PALETTE)):
        y = 2 + i * swatch
        cv2.rectangle(img, (2, y + 2), (2 + swatch - 4, y + swatch - 2), tuple(int(c) for c in colour), -1)
        cv2.rectangle(img, (2, y + 2), (2 + swatch - 4, y + swatch - 2), (90, 90, 90), 1)
        cv2.putText(img, name, (swatch + 4, y + swatch - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return img


def legend_html() -> str:
    """The legend as inline HTML (one coloured swatch and name per class)."""
    items = "".join(
        f'<span style="display:inline-flex;align-items:center;margin:2px 10px 2px 0">'
        f'<span style="width:14px;height:14px;background:#{r:02x}{g:02x}{b:02x};border:1px solid #888;'
        f'margin-right:4px;display:inline-block"></span>{name}</span>'
        for name, (r, g, b) in zip(CLASS_NAMES, PALETTE.tolist()))
    return f'<div class="parse-legend" style="display:flex;flex-wrap:wrap">{items}</div>'
