"""Our `run_live.py` against a naive single-threaded loop (the yardstick), whole processes with
start-up, alternated in one run so that the machine's load hits both alike.

    python -m benchmarks.vs_naive [--clip PATH] [--runs 3] [--only NAME ...]

The yardstick is ../shared/bench/mesh_lipstick_anchor.py (decode -> face mesh -> lip polygons
filled and blended -> encode). Each round runs it, then each of our configurations, as separate
processes; per process: wall time, user and system CPU time, peak RSS (os.wait4). Printed:
medians over the rounds, and the ratio of our wall time to the yardstick's in the same round
(median of the per-round ratios). Skips with a message when ../shared is absent.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ANCHOR = SHARED / "bench" / "mesh_lipstick_anchor.py"
DEFAULT_CLIP = SHARED / "data" / "videos" / "talking_d10.mp4"

CONFIGS = {  # name -> run_live.py arguments (default flags otherwise: all faces, smoothing on)
    "landmarks": ["--model", "landmarks", "--effects", "lipstick=#b0103a:0.6"],
    "rnng": ["--model", "rnng"],
    "combined": ["--model", "combined"],
    "combined-lipstick": ["--model", "combined", "--effects", "lipstick=#b0103a:0.6"],   # the lips alone: no RNN-G
    # the hair effect on every frame (issue #12: whole-head hair must not make it slower)
    "rnng-hair": ["--model", "rnng", "--effects", "hair=#c03030:0.7"],
    "landmarks-hair": ["--model", "landmarks", "--effects", "hair=#c03030:0.7"],
    "landmarks-default": ["--model", "landmarks"],
    "rnng-lipstick": ["--model", "rnng", "--effects", "lipstick=#b0103a:0.6"],
}


def run_process(cmd: list, cwd: Path) -> dict:
    """Wall, user, system seconds and peak RSS (MB) of one whole process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{err[-2000:]}")
    return {"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime, "rss": usage.ru_maxrss / 1024}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--runs", type=int, default=3, help="rounds (each: yardstick, then ours)")
    ap.add_argument("--only", choices=sorted(CONFIGS), action="append", help="our configurations to run")
    ap.add_argument("--before", type=Path, metavar="DIR",
                    help="another checkout (e.g. the main branch) whose run_live.py runs too, as NAME@before")
    args = ap.parse_args(argv)
    if not ANCHOR.exists() or not args.clip.exists():
        print(f"skipped: needs {ANCHOR} and {args.clip} (the project's ../shared folder)")
        return 0
    configs = {k: CONFIGS[k] for k in (args.only or CONFIGS)}
    checkouts = {name: ROOT for name in configs}
    if args.before:
        checkouts.update({f"{name}@before": args.before.resolve() for name in configs})
    results = {name: [] for name in ["naive", *checkouts]}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            results["naive"].append(run_process([sys.executable, ANCHOR, args.clip, Path(tmp) / "naive.mp4"], ROOT))
            for name, checkout in checkouts.items():
                extra = configs[name.split("@")[0]]
                cmd = [sys.executable, "run_live.py", "--input", args.clip.resolve(), "--output",
                       Path(tmp) / f"{name}.mp4", *extra]
                results[name].append(run_process(cmd, checkout))
            print(f"round {r + 1}/{args.runs}: " + ", ".join(f"{k} {v[-1]['wall']:.2f} s" for k, v in results.items()),
                  flush=True)
    print(f"\n{args.clip.name}, {args.runs} rounds alternated, {os.cpu_count()} cores; medians:")
    print(f"{'':<17}{'wall s':>8}{'ratio':>7}{'user s':>8}{'sys s':>7}{'CPU ratio':>10}{'peak MB':>9}")
    naive = results["naive"]
    for name, runs in results.items():
        ratio = statistics.median(r["wall"] / n["wall"] for r, n in zip(runs, naive))
        cpu = statistics.median((r["user"] + r["sys"]) / (n["user"] + n["sys"]) for r, n in zip(runs, naive))
        med = {k: statistics.median(r[k] for r in runs) for k in ("wall", "user", "sys", "rss")}
        print(f"{name:<17}{med['wall']:>8.2f}{ratio:>6.2f}x{med['user']:>8.2f}{med['sys']:>7.2f}{cpu:>9.2f}x"
              f"{med['rss']:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
