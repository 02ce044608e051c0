#!/bin/bash
# The prepared GPU session (issue #13, item 5): on a machine with a CUDA GPU (it needs torch,
# numpy, OpenCV and tqdm; no mediapipe or av), from a dataset built here and carried over
# (best: data/fused, the real faces labelled by the fused teacher signal, `bash tools/build_fused.sh`):
#   1. train the paper-sized teacher (full-width truncated VGG16 at 256, models/parsers/teacher.py),
#   2. distil the paper-sized Student from it (Table IX at 256, conv1 64),
#   3. score both on the validation split (the README's protocol),
#   4. time every learned tier's CUDA inference (benchmarks/models_device.py).
# Both train on FaceSynthetics (full labels, the main batch) plus a batch of every real face of
# the set (LFW hair masks and the auto/fused labels of portraits and video frames), with
# --fit-time: the lr schedules end at the time limit whatever the GPU's speed; the Student's
# unsupervised stage is off (on these data it cost accuracy: checkpoints/student.md).
# TEACHER_MIN 0 skips the teacher and the Student. SEEDS="rnng rednet bspnet stn-icnn" (env) then
# trains those tiers SEED_MIN minutes each (default 2) with their own recipes on the same data
# (issue #13 item 3), exported fp16 into seeds.tar.
# OUT gets at most 8 files (the device tool's limit), each under 16 MiB:
#   session.log, student_full.pt (fp16), results.tar (cards, val scores, timings, per-epoch
#   metrics), teacher_full.pt.aa/.ab/.ac (the fp16 teacher, ~41 MB, split: join with cat;
#   too large for the repo), seeds.tar.aa/.ab (the seed tiers' checkpoints and cards, joined with cat).
#
#   bash tools/gpu_session.sh DATA OUT [TEACHER_MIN] [STUDENT_MIN] [DEVICE]
#
# e.g. on the device machine, with the set carried as data/gpu (a copy of data/fused):
#   bash tools/gpu_session.sh data/gpu $OUT 3 3
#   SEEDS="rednet bspnet stn-icnn" SEED_MIN=3 bash tools/gpu_session.sh data/gpu $OUT 0 0
# DEVICE defaults to cuda; `cpu` with tiny budgets and TEACHER_SET/STUDENT_SET/SEED_SET/REPEATS/
# BENCH_ARGS/WORKERS overrides is the smoke run of tests/app/test_gpu_session.py.
set -euo pipefail
DATA=${1:?usage: gpu_session.sh DATA OUT [TEACHER_MIN] [STUDENT_MIN] [DEVICE]}
OUT=${2:?usage: gpu_session.sh DATA OUT [TEACHER_MIN] [STUDENT_MIN] [DEVICE]}
T_MIN=${3:-3}
S_MIN=${4:-3}
DEVICE=${5:-cuda}
PY=${PYTHON:-python3}
WORKERS=${WORKERS:-6}   # per loader: the main and the real-face loader each get this many
export PYTHONUNBUFFERED=1
if [ ! -f "$DATA/index.jsonl" ]; then
  echo "error: no dataset at $DATA (build it with: bash tools/build_fused.sh, then carry it)" >&2
  exit 2
fi
mkdir -p "$OUT"
RUNS=$(mktemp -d)
LOG="$OUT/session.log"
pack() {   # on any exit, failures too: whatever was made so far goes into OUT
  for tier in teacher student; do
    [ -f "$RUNS/$tier/metrics.jsonl" ] && cp "$RUNS/$tier/metrics.jsonl" "$RUNS/${tier}_metrics.jsonl"
  done
  [ -f "$OUT/student_full.md" ] && mv "$OUT/student_full.md" "$RUNS/student_full.md"
  (cd "$RUNS" && tar -cf "$OUT/results.tar" $(ls *.md *.json *.jsonl 2>/dev/null))
  [ -f "$RUNS/teacher_full.pt" ] && split -b 15M -a 2 "$RUNS/teacher_full.pt" "$OUT/teacher_full.pt."
  if [ -d "$RUNS/seeds" ]; then
    tar -cf "$RUNS/seeds.tar" -C "$RUNS/seeds" . && split -b 15M -a 2 "$RUNS/seeds.tar" "$OUT/seeds.tar."
  fi
  ls -la "$OUT" | tee -a "$LOG"
}
trap pack EXIT
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$LOG"
if [ "$DEVICE" = cuda ]; then
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "error: --device cuda asked for, but torch sees no CUDA GPU" | tee -a "$LOG" >&2; exit 2; }
fi
PAPER_TEACHER=${TEACHER_SET:-"width_mult=1.0 input_size=256"}   # smaller for the smoke run
PAPER_STUDENT=${STUDENT_SET:-"input_size=256 conv1_channels=64"}
# FaceSynthetics 8 a step (the epoch: 64 faces) + 24 real faces; epochs far more than fit, cut by --fit-time
DATA_SET='partial_sources=["lfw_hair","portraits","video:"] partial_batch_size=24 val_every=20'
TRAIN="--data $DATA --device $DEVICE --workers $WORKERS --fit-time"

if [ "$T_MIN" != 0 ]; then
echo "== teacher, paper size, $T_MIN min" | tee -a "$LOG"
"$PY" -m models.train --model teacher $TRAIN --time-limit "$T_MIN" --out "$RUNS/teacher" \
  --set $PAPER_TEACHER $DATA_SET epochs=100000 --export "$RUNS/teacher_full.pt" 2>&1 | tee -a "$LOG"

echo "== student, paper size, distilled from it, $S_MIN min" | tee -a "$LOG"
"$PY" -m models.train --model student $TRAIN --time-limit "$S_MIN" --out "$RUNS/student" \
  --set $PAPER_STUDENT $DATA_SET supervised_epochs=100000 unsupervised_epochs=0 \
  teacher_checkpoint="$RUNS/teacher_full.pt" --export "$OUT/student_full.pt" 2>&1 | tee -a "$LOG"

echo "== scores (validation split)" | tee -a "$LOG"
for tier in teacher student; do
  ckpt="$RUNS/teacher_full.pt"; [ $tier = student ] && ckpt="$OUT/student_full.pt"
  timeout 150 "$PY" -m models.evaluate --model $tier --data "$DATA" --split val --device "$DEVICE" \
    --checkpoint "$ckpt" --json "$RUNS/${tier}_full_val.json" 2>&1 | tee -a "$LOG"
done
TRAINED="--checkpoint teacher=$RUNS/teacher_full.pt student=$OUT/student_full.pt"
fi

# the seed tiers: their recipes' data mix (8 FaceSynthetics + real faces a step), the last stage
# fitted to SEED_MIN (STN-iCNN's first two stages are short and fixed)
[ -n "${SEEDS:-}" ] && mkdir -p "$RUNS/seeds"
for tier in ${SEEDS:-}; do
  LEN='epochs=100000'
  [ "$tier" = stn-icnn ] && LEN='stage_epochs={"coarse":20,"localizer":20,"end2end":100000}'
  echo "== $tier, ${SEED_MIN:-2} min" | tee -a "$LOG"
  "$PY" -m models.train --model "$tier" $TRAIN --time-limit "${SEED_MIN:-2}" --out "$RUNS/$tier" \
    --set "$LEN" real_batch_size=24 val_every=20 ${SEED_SET:-} --export "$RUNS/seeds/$tier.pt" 2>&1 | tee -a "$LOG"
  cp "$RUNS/$tier/metrics.jsonl" "$RUNS/seeds/${tier}_metrics.jsonl"
done

echo "== inference time per face, $DEVICE" | tee -a "$LOG"
timeout 200 "$PY" -m benchmarks.models_device --device "$DEVICE" --repeats "${REPEATS:-20}" ${BENCH_ARGS:-} \
  --data "$DATA" --json "$RUNS/times_$DEVICE.json" ${TRAINED:-} 2>&1 | tee -a "$LOG"
