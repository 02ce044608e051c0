"""Hair flicker over the whole frame on the talking-head clips never used in training.

    python -m benchmarks.hair_flicker --model rnng [--frames 150] [--clips talking_d12] [--save-frames DIR]

The in-crop meter of benchmarks/flicker.py cannot see hair outside the aligned crop, so this
one compares the frame-sized label maps (stream.assemble.label_map, what --save-labels writes)
of consecutive frames, smoothing on as a user runs it. Per clip: the share of hair pixels that
change (|H_t xor H_t-1| / |H_t or H_t-1|, summed over the clip) and the same changes as a share
of the frame's pixels; "plain" compares the maps pixel for pixel (head motion counts),
"compensated" first moves the previous map by the change of the face's alignment between the
two frames (a similarity: where the head went, not how it turned).
`--save-frames DIR` writes hair overlays of the clip's frames around its fastest head motion.
"""
import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from core import align
from core.classes import HAIR
from stream import assemble, capture

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"
HELD_OUT = ("talking_d0", "talking_d12", "talking_d18", "talking_d19", "talking_d20")


def clip_flicker(parser, path: Path, frames: int, save_frames: Path | None = None) -> dict:
    pipeline = assemble.build_pipeline(parser=parser, effects=None, max_faces=1)
    changed = union = pixels = pairs = 0
    moved_changed = moved_union = 0
    prev, shown, motion = None, [], []
    with capture.VideoFileSource(path) as src:
        for i, result in enumerate(pipeline.run(src)):
            if i == frames:
                break
            hair = assemble.label_map(result) == HAIR
            centre = result.faces[0].face.five[:2].mean(0) if result.faces else None
            matrix = result.faces[0].face.matrix if result.faces else None
            if prev is not None:
                changed += int((hair ^ prev[0]).sum())
                union += int((hair | prev[0]).sum())
                pixels += hair.size
                pairs += 1
                moved = prev[0]
                if matrix is not None and prev[2] is not None:   # previous frame -> this one
                    to_now = compose(align.invert(matrix), prev[2])
                    moved = cv2.warpAffine(prev[0].astype(np.uint8), to_now, hair.shape[::-1],
                                           flags=cv2.INTER_NEAREST).astype(bool)
                moved_changed += int((hair ^ moved).sum())
                moved_union += int((hair | moved).sum())
                if centre is not None and prev[1] is not None:
                    motion.append((float(np.linalg.norm(centre - prev[1])), i))
            if save_frames is not None:
                shown.append(_overlay(result.frame.image, hair))
            prev = (hair, centre, matrix)
    pipeline.close()
    if save_frames is not None and motion:
        fastest = max(motion)[1]
        save_frames.mkdir(parents=True, exist_ok=True)
        for k in range(max(fastest - 2, 0), min(fastest + 3, len(shown))):
            cv2.imwrite(str(save_frames / f"{path.stem}_{k:04d}.png"), cv2.cvtColor(shown[k], cv2.COLOR_RGB2BGR))
    return {"frames": pairs + 1, "hair_changed": changed / max(union, 1), "frame_changed": changed / max(pixels, 1),
            "hair_changed_compensated": moved_changed / max(moved_union, 1),
            "fastest_motion_px": max(motion)[0] if motion else 0.0}


def compose(a, b):
    """2x3 matrix of "apply b, then a"."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def _overlay(image, hair):
    out = image.copy()
    out[hair] = (0.45 * out[hair] + 0.55 * np.array([255, 0, 255])).astype(np.uint8)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="rnng")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--clips", nargs="*", default=list(HELD_OUT))
    ap.add_argument("--save-frames", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    parser = assemble.create_parser(args.model)
    rows = {}
    for name in args.clips:
        rows[name] = r = clip_flicker(parser, VIDEOS / f"{name}.mp4", args.frames, args.save_frames)
        print(f"{name:<12} hair pixels changing per frame: plain {100 * r['hair_changed']:5.2f}% "
              f"({100 * r['frame_changed']:.3f}% of the frame), compensated {100 * r['hair_changed_compensated']:5.2f}%, "
              f"{r['frames']} frames", flush=True)
    mean = {k: 100 * np.mean([r[k] for r in rows.values()]) for k in ("hair_changed", "frame_changed", "hair_changed_compensated")}
    print(f"mean over {len(rows)} clips ({args.model}): plain {mean['hair_changed']:.2f}% of hair pixels "
          f"({mean['frame_changed']:.3f}% of the frame), compensated {mean['hair_changed_compensated']:.2f}%")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
