#!/bin/bash
# data/fused: the training set of tools/build_dataset.sh with the fused teacher signal as the
# auto-labels of real faces (models/data/readers/fused.py, issue #13) and the hair dev set's
# portraits (tests/fixtures/hair_dev) kept out of training. Run from the repo root with the venv active.
set -e
V="$(cd "$(dirname "$0")/../.." && pwd)/shared/data"
OUT=${1:-data/fused}
python -m models.data build --from facesynthetics $V/facesynthetics --out $OUT
python -m models.data build --from lfw_hair $V/lfw_hair --out $OUT --append --labels fused
python -m models.data build --from images $V/portraits --out $OUT --append --labels fused --exclude tests/fixtures/hair_dev
# the same four clips as data/faceparse; the others stay unseen for flicker and agreement
for clip in talking_d3 talking_d6 talking_d10 talking_d11; do
  python -m models.data build --from video $V/videos/$clip.mp4 --out $OUT --append --every 10 --labels fused
done
