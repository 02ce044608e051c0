"""Per-face time of the learned tiers on a device (CUDA where there is one), through the Parser
interface as the pipeline calls it (TorchParser: fp16 and channels-last on CUDA).

    python -m benchmarks.models_device [--device cuda] [--models rnng student ...]
                                       [--checkpoint teacher=PATH ...] [--json out.json]

Per tier and batch size (1, 8, 32 faces): median and minimum ms per face over `repeats` calls
after warm-up, the GPU synchronised around each call (the probabilities come back to the CPU,
as the pipeline needs them). Real crops: FaceSynthetics val faces of data/faceparse when built,
else the astronaut. A tier without weights is skipped with a message. Written for the prepared
GPU session (tools/gpu_session.sh); on a CPU it times the torch path (no ONNX Runtime)."""
import argparse
import json
import platform
from pathlib import Path

import torch

from core.errors import InputError
from benchmarks.common import DATA, real_crops, timed
from models.parsers import registry
from models.parsers.torch_parser import TorchParser, pick_device

LEARNED = [n for n, t in registry.TIERS.items() if t.learned]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU, torch threads {torch.get_num_threads()}"


def bench(name: str, path, device: torch.device, batches, repeats: int, data) -> dict:
    parser = TorchParser.from_checkpoint(name, registry.network_class(name), path, device)
    crops, five = real_crops(max(batches), data)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def call(b):
        parser(crops[:b], five[:b])
        sync()

    out = {"model": name, "checkpoint": str(path), "fp16": parser.fp16,
           "parameters": sum(p.numel() for p in parser.model.parameters())}
    for b in batches:
        t = timed(lambda: call(b), repeats)
        out[f"ms_per_face_b{b}"] = round(t["median_ms"] / b, 3)
        out[f"min_ms_per_face_b{b}"] = round(t["min_ms"] / b, 3)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--models", nargs="+", default=LEARNED, choices=LEARNED)
    ap.add_argument("--checkpoint", nargs="+", default=[], metavar="TIER=PATH",
                    help="weights other than the committed ones (e.g. a paper-sized teacher)")
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--data", default=str(DATA), help="dataset whose FaceSynthetics val crops are timed")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    try:
        device = pick_device(args.device)
    except InputError as exc:
        raise SystemExit(f"error: {exc}") from None
    paths = {n: registry.tier(n).checkpoint for n in args.models}
    for item in args.checkpoint:
        name, _, path = item.partition("=")
        if name not in paths or not path:
            ap.error(f"--checkpoint takes TIER=PATH with TIER one of {', '.join(args.models)}: {item!r}")
        paths[name] = path
    print(f"device: {device_name(device)}; torch {torch.__version__}")
    rows = []
    for name, path in paths.items():
        if not Path(path).is_file():
            print(f"{name:<9} skipped: no weights at {path}")
            continue
        try:
            row = bench(name, path, device, args.batches, args.repeats, args.data)
        except Exception as exc:  # noqa: BLE001 - one tier failing on a device must not lose the others' timings
            print(f"{name:<9} failed: {type(exc).__name__}: {exc}", flush=True)
            rows.append({"model": name, "checkpoint": str(path), "error": f"{type(exc).__name__}: {exc}"})
            continue
        rows.append(row)
        print(f"{name:<9} " + "  ".join(f"b{b} {row[f'ms_per_face_b{b}']:.3f} ms/face" for b in args.batches), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device_name(device), "torch": torch.__version__, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
