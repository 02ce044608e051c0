"""Flicker and lag of the labels on the real talking-head clips, with and without smoothing.

    python -m benchmarks.flicker [--model landmarks] [--frames 150] [--clips talking_d0 ...]

Flicker: in the aligned crop (head motion taken out), the share of face pixels whose label
changes between consecutive frames (stream.flicker.FlickerMeter), overall and per group;
"plain" compares labels pixel for pixel, "compensated" first moves the previous labels along
the optical flow between the two crops (what the five-point alignment leaves of head turns and
talking is motion, not flicker): the smoother's own DIS flow, and Farnebäck's, a flow the
smoother never sees. "frame" compares the frame-sized label maps (what --save-labels writes,
whole-head hair included) pixel for pixel, head motion and all.
Floor: the Farnebäck figure of labels that follow the smoother's DIS flow exactly (the first
smoothed label map moved from crop to crop, stream.flicker.flow_floor): where the two flows
disagree at a part's edge, no smoother that moves its memory along DIS reads below it.
Default clips: those never used in training (talking_d0, d12, d18, d19, d20).
Lag: on the fastest-moving 10% of frames, the shift k (frames) that best matches the smoothed
labels at t+k to the unsmoothed labels at t; 0 means smoothing adds no delay after fast motion.
"""
import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from core import align
from core.classes import BACKGROUND
from stream import capture, assemble as session
from stream.flicker import FlickerMeter, flow_floor

VIDEOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"


def clip_labels(pipeline, path, frames):
    """Per frame: (crop label map of the first face or None, five points in the frame, crop,
    frame-sized label map)."""
    out = []
    with capture.VideoFileSource(path) as src:
        for i, result in enumerate(pipeline.run(src)):
            if i == frames:
                break
            fp = result.faces[0] if result.faces else None
            crop_part = (fp.crop_probs.argmax(0).astype(np.uint8), fp.face.five,
                         align.warp_crop(result.frame.image, fp.face.matrix)) if fp else (None, None, None)
            out.append(crop_part + (session.label_map(result),))
    pipeline.close()
    return out


COLUMNS = ("plain", "compensated", "farneback", "frame")
HELD_OUT = ("talking_d0", "talking_d12", "talking_d18", "talking_d19", "talking_d20")   # never trained on


def flicker_of(seq, kind):
    if kind == "frame":
        meter = FlickerMeter()
        for *_, frame_label in seq:
            meter.update(0, frame_label)
        return meter.result()
    meter = FlickerMeter(kind != "plain", flow="farneback" if kind == "farneback" else "dis")
    for label, _, crop, _ in seq:
        if label is None:
            meter.forget(0)
        else:
            meter.update(0, label, crop)
    return meter.result()


def floor_of(seq) -> float:
    """stream.flicker.flow_floor over the clip's longest run of frames with a face: the
    Farnebäck figure of labels that follow the smoother's DIS flow exactly."""
    runs = [list(run) for has_face, run in itertools.groupby(seq, key=lambda item: item[0] is not None) if has_face]
    run = max(runs, key=len, default=[])
    return flow_floor([crop for _, _, crop, _ in run], run[0][0]) if len(run) > 1 else 0.0


def lag_of(raw, smooth, max_shift=4):
    motion = [np.linalg.norm(raw[i][1] - raw[i - 1][1], axis=1).mean() / np.linalg.norm(raw[i][1][1] - raw[i][1][0])
              if raw[i][1] is not None and raw[i - 1][1] is not None else 0.0 for i in range(1, len(raw))]
    if not motion:
        return None, 0.0
    fast = [i + 1 for i in np.argsort(motion)[-max(1, len(motion) // 10):]]
    scores = []
    for k in range(max_shift + 1):
        agree = []
        for t in fast:
            if t + k < len(smooth) and raw[t][0] is not None and smooth[t + k][0] is not None:
                face = raw[t][0] != BACKGROUND
                agree.append((raw[t][0][face] == smooth[t + k][0][face]).mean())
        scores.append(np.mean(agree) if agree else 0)
    return int(np.argmax(scores)), float(np.percentile(motion, 90))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="landmarks")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--clips", nargs="*", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    clips = [VIDEOS / f"{c}.mp4" for c in (args.clips or HELD_OUT)]
    parser = session.create_parser(args.model, leave_a_core=True)   # torch threads as run_live.py sets them
    rows = {}
    for clip in clips:
        raw = clip_labels(session.build_pipeline(parser=parser, smooth=False, leave_a_core=True), clip, args.frames)
        smooth = clip_labels(session.build_pipeline(parser=parser, smooth=True, leave_a_core=True), clip, args.frames)
        lag, motion = lag_of(raw, smooth)
        rows[clip.stem] = r = {"lag_frames": lag, "frames": len(raw), "floor": floor_of(smooth)}
        for kind in COLUMNS:
            r[kind] = {"raw": flicker_of(raw, kind), "smoothed": flicker_of(smooth, kind)}
        print(f"{clip.stem:<14} flicker raw -> smoothed: " + ", ".join(
            f"{k} {100 * r[k]['raw']['all']:5.2f}% -> {100 * r[k]['smoothed']['all']:5.2f}%" for k in COLUMNS)
              + f"  floor {100 * r['floor']:.2f}%  lag {lag} frames  ({len(raw)} frames)", flush=True)
    groups = list(next(iter(rows.values()))["plain"]["raw"])
    print(f"\nmean over {len(rows)} clips, % of face pixels changing label per frame ({args.model}):")
    print(f"{'group':<8}" + "".join(f"{k + ' ' + s:>22}" for k in COLUMNS for s in ("raw", "smoothed")))
    for g in groups:
        print(f"{g:<8}" + "".join(f"{100 * np.mean([r[k][s][g] for r in rows.values()]):>22.2f}"
                                  for k in COLUMNS for s in ("raw", "smoothed")))
    print(f"floor of the Farnebäck figure (labels moved exactly along the smoother's DIS flow): "
          f"{100 * np.mean([r['floor'] for r in rows.values()]):.2f}%")
    lags = [r["lag_frames"] for r in rows.values() if r["lag_frames"] is not None]
    print(f"lag after the fastest motion: median {np.median(lags):.0f}, max {max(lags)} frames")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
