#!/bin/bash
# Full build of data/faceparse (data helper). Run from the repo root with the venv active.
set -e
V="$(cd "$(dirname "$0")/../.." && pwd)/shared/data"
STEP=${1:-all}
if [ "$STEP" = all ]; then
  python -m models.data build --from facesynthetics $V/facesynthetics --out data/faceparse
  python -m models.data build --from lfw_hair $V/lfw_hair --out data/faceparse --append
fi
python -m models.data build --from images $V/portraits --out data/faceparse --append
# a few talking-head clips for training; the other clips (talking_d0/d12/d18/d19/d20, news_*,
# expressions/*) stay unseen for flicker/speed evaluation and the demo
for clip in talking_d3 talking_d6 talking_d10 talking_d11; do
  python -m models.data build --from video $V/videos/$clip.mp4 --out data/faceparse --append --every 10
done
