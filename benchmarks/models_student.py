"""CPU speed of the Student and Teacher of Wei et al. ("Accurate Facial Image Parsing at Real-Time
Speed"), trained and paper-sized.

    python -m benchmarks.models_student [--variants student teacher ...] [--threads 1 2]
                                        [--batches 1 8 32] [--repeats 5] [--json out.json]

Per variant and thread count: median time of `repeats` runs (after two warm-ups) at batch
1, 8 and 32 of
  * model:  the network's predict at the variant's input size (heatmap channel included),
  * parser: the whole Parser call on 256x256 uint8 crops (resize in, probabilities out at 256),
reported as latency per face (ms) and throughput (faces/s). Variants:
  student        the committed checkpoint (CPU-trained config), else the same config fresh
  student-256    Table IX at the paper's 256x256 input, conv1 64 wide (fresh weights)
  teacher        the committed checkpoint (narrow CPU teacher), else the same config fresh
  teacher-256    the paper's full-width truncated VGG16 at 256 (fresh weights; ~71 GMAC a
                 face, so only batches up to 8 unless --batches says otherwise)
Speed does not depend on the weights. Crops: FaceSynthetics val faces from data/faceparse
when built, else the astronaut.
"""
import argparse
import json

import torch

from benchmarks.common import real_crops, timed
from models.parsers import checkpoint as ckpt
from models.training.evaluate import hardware_string
from models.parsers.registry import network_class, tier
from models.parsers.torch_parser import TorchParser

CPU_STUDENT = {"input_size": 128, "conv1_channels": 16}       # what checkpoints/student.pt uses
CPU_TEACHER = {"input_size": 128, "width_mult": 0.25}          # what checkpoints/teacher.pt uses
VARIANTS = {
    "student": ("student", CPU_STUDENT, True),
    "student-256": ("student", {"input_size": 256, "conv1_channels": 64}, False),
    "teacher": ("teacher", CPU_TEACHER, True),
    "teacher-256": ("teacher", {"input_size": 256, "width_mult": 1.0}, False),
}
MAX_BATCH = {"teacher-256": 8}


def load_variant(variant: str):
    name, config, use_checkpoint = VARIANTS[variant]
    network, path = network_class(name), tier(name).checkpoint
    if use_checkpoint and path.is_file():
        blob = ckpt.load(path, name)
        return name, ckpt.load_into(network.from_config(blob["config"]), blob).eval(), "checkpoint"
    return name, network.from_config(config).eval(), "fresh weights"


def bench(variant: str, batches, repeats: int) -> dict:
    name, model, weights = load_variant(variant)
    parser = TorchParser(name, model, device="cpu")
    s = model.input_size
    crops, five = real_crops(max(batches))
    out = {"variant": variant, "weights": weights, "input_size": s,
           "parameters": sum(p.numel() for p in model.parameters()), "batches": {}}
    for b in batches:
        if b > MAX_BATCH.get(variant, b):
            continue
        image = torch.from_numpy(crops[:b]).permute(0, 3, 1, 2).float() / 255
        if s != 256:
            image = torch.nn.functional.interpolate(image, size=(s, s), mode="bilinear", antialias=True)
        batch = {"image": image, "five": torch.from_numpy(five[:b] * s / 256)}
        with torch.inference_mode():
            net = timed(lambda: model.predict(batch), repeats)["median_ms"] / 1000
        full = timed(lambda: parser(crops[:b], five[:b]), repeats)["median_ms"] / 1000
        out["batches"][b] = {"model_ms_per_face": round(1000 * net / b, 2), "parser_ms_per_face": round(1000 * full / b, 2),
                             "model_faces_per_s": round(b / net, 1), "parser_faces_per_s": round(b / full, 1)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.models_student", description=__doc__.split("\n")[0])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"hardware: {hardware_string('cpu')}; medians of {args.repeats} runs")
        print(f"{'variant':12s} {'weights':13s} {'size':>4s} {'params':>9s} {'batch':>5s} | "
              f"ms/face model parser | faces/s model parser")
        for v in args.variants:
            r = bench(v, args.batches, args.repeats)
            r["threads"] = threads
            results.append(r)
            for b, m in r["batches"].items():
                print(f"{v:12s} {r['weights']:13s} {r['input_size']:4d} {r['parameters']:9d} {b:5d} | "
                      f"{m['model_ms_per_face']:13.1f} {m['parser_ms_per_face']:6.1f} | "
                      f"{m['model_faces_per_s']:13.1f} {m['parser_faces_per_s']:6.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"hardware": hardware_string("cpu"), "repeats": args.repeats, "results": results}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
