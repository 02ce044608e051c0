#!/bin/bash
# The prepared GPU session (issue #13, item 5): on a machine with a CUDA GPU (it needs torch,
# numpy, OpenCV and tqdm; no mediapipe or av), from a dataset built here and carried over:
#   1. train the paper-sized teacher (full-width truncated VGG16 at 256, models/parsers/teacher.py),
#   2. distil the paper-sized Student from it (Table IX at 256, conv1 64),
#   3. score both on the validation split (the README's protocol),
#   4. time every learned tier's CUDA inference (benchmarks/models_device.py).
# Everything lands in OUT: logs, scores and timings as JSON, the Student's fp16 weights (the
# full teacher, ~41 MB, stays out of the repo: only its card and scores come back).
#
#   bash tools/gpu_session.sh DATA OUT [TEACHER_MIN] [STUDENT_MIN] [DEVICE]
#
# e.g. on the device machine, with data/faceparse carried (45 MB):
#   bash tools/gpu_session.sh data/faceparse $OUT 4 3
# DEVICE defaults to cuda; `cpu` with tiny budgets and TEACHER_SET/STUDENT_SET/REPEATS/BENCH_ARGS
# overrides is the smoke run of tests/app/test_gpu_session.py.
set -euo pipefail
DATA=${1:?usage: gpu_session.sh DATA OUT [TEACHER_MIN] [STUDENT_MIN] [DEVICE]}
OUT=${2:?usage: gpu_session.sh DATA OUT [TEACHER_MIN] [STUDENT_MIN] [DEVICE]}
T_MIN=${3:-4}
S_MIN=${4:-3}
DEVICE=${5:-cuda}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [ ! -f "$DATA/index.jsonl" ]; then
  echo "error: no dataset at $DATA (build it with: bash tools/build_dataset.sh, then carry it)" >&2
  exit 2
fi
mkdir -p "$OUT"
RUNS=$(mktemp -d)
LOG="$OUT/session.log"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$LOG"
if [ "$DEVICE" = cuda ]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "error: --device cuda asked for, but torch sees no CUDA GPU" | tee -a "$LOG" >&2; exit 2; }
fi
PAPER_TEACHER=${TEACHER_SET:-"width_mult=1.0 input_size=256"}   # smaller for the smoke run
PAPER_STUDENT=${STUDENT_SET:-"input_size=256 conv1_channels=64"}

echo "== teacher, paper size, $T_MIN min" | tee -a "$LOG"
"$PY" -m models.train --model teacher --data "$DATA" --device "$DEVICE" --time-limit "$T_MIN" \
  --out "$RUNS/teacher" --set $PAPER_TEACHER --export "$RUNS/teacher_full.pt" 2>&1 | tee -a "$LOG"
cp "$RUNS/teacher_full.md" "$OUT/teacher_full.md"

echo "== student, paper size, distilled from it, $S_MIN min" | tee -a "$LOG"
"$PY" -m models.train --model student --data "$DATA" --device "$DEVICE" --time-limit "$S_MIN" \
  --out "$RUNS/student" --set $PAPER_STUDENT teacher_checkpoint="$RUNS/teacher_full.pt" \
  --export "$OUT/student_full.pt" 2>&1 | tee -a "$LOG"

echo "== scores (validation split)" | tee -a "$LOG"
for tier in teacher student; do
  ckpt="$RUNS/teacher_full.pt"; [ $tier = student ] && ckpt="$OUT/student_full.pt"
  "$PY" -m models.evaluate --model $tier --data "$DATA" --split val --device "$DEVICE" \
    --checkpoint "$ckpt" --json "$OUT/${tier}_full_val.json" 2>&1 | tee -a "$LOG"
done

echo "== inference time per face, $DEVICE" | tee -a "$LOG"
"$PY" -m benchmarks.models_device --device "$DEVICE" --repeats "${REPEATS:-20}" ${BENCH_ARGS:-} --json "$OUT/times_$DEVICE.json" \
  --checkpoint teacher="$RUNS/teacher_full.pt" student="$OUT/student_full.pt" 2>&1 | tee -a "$LOG"
ls -la "$OUT" | tee -a "$LOG"
