#!/usr/bin/env bash
# Kitchen figures for the head cascade through the agent's own `npm run eval -- --violation`:
#  - by video (strict): each kitchen video scored by the fold model that never saw it
#    (train.py --holdout kitchenA / kitchenB);
#  - by time (weaker): the last 40 % of each video's frames scored by the model trained on the first
#    55 % (train.py --holdout time).
#   bash training/heads/folds.sh [run-suffix]     (HEADS_CACHE: the crops, default var/train/heads;
#                                                  FOLDS: which, default "kitchenA kitchenB time")
# Per fold: var/folds/<fold>/ holds the fold's ONNX + manifests + a site config; no_hat.json and
# smoking.json are the eval reports (no_hat: has_hat = 0 frames are positives; smoking: no frame
# shows smoking, every frame is a negative).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SUFFIX="${1:-}"
CACHE="${HEADS_CACHE:-$ROOT/var/train/heads}"
FOLDS=" ${FOLDS:-kitchenA kitchenB time} "  # a subset, e.g. FOLDS=time
DATA="$ROOT/../shared/data"
cd "$ROOT"

prepare() { # fold run
  local D="$ROOT/var/folds/$1"
  mkdir -p "$D"
  cp models/rfb640_masked_face.model.yaml models/yolox_nano.model.yaml models/head_attrs.model.yaml "$D/"
  .venv/bin/python training/heads/train.py "$CACHE" --holdout "$1" --name "$2" --export-only --export "$D" > "$D/export.log"
  cat > "$D/site.yaml" <<YAML
site: { id: fold-$1, name: fold $1 }
models:
  manifests: $D
  dir: $ROOT/var/models
  pack: [{ manifest: rfb640_masked_face }, { manifest: yolox_nano }, { manifest: head_attrs }]
cameras:
  - { id: none, name: none, url: "file:///dev/null", enabled: false }
YAML
}

score() { # fold kind csv where positive-when
  local D="$ROOT/var/folds/$1"
  node_modules/.bin/tsx agent/cli/eval.ts --violation "$2" --labels "$3" --where "$4" --positive-when "$5" \
    --config "$D/site.yaml" --json > "$D/$2.json" 2> "$D/$2.log"
  node -e "const r=require('$D/$2.json').metrics; console.log('$1 $2', JSON.stringify({positives:r.positives,raised:r.truePositives,recall:r.recall,negatives:r.negatives,falseAlarms:r.falseAlarms,falseAlarmRate:r.falseAlarmRate}))"
}

CSV="$DATA/hats/kitchen/labels.csv"
for fold in kitchenA kitchenB; do
  [[ "$FOLDS" == *" $fold "* ]] || continue
  other=$([[ $fold == kitchenA ]] && echo kitchenB || echo kitchenA)
  prepare "$fold" "head_attrs_$fold$SUFFIX"
  score "$fold" no_hat "$CSV" "video=$fold" has_hat=0
  score "$fold" smoking "$CSV" "video=$fold" "video=$other" # no row of this video is positive
done

[[ "$FOLDS" == *" time "* ]] || exit 0
# By time: a copy of labels.csv with a block column (early / gap / late by frame rank in its video).
prepare time "head_attrs_time$SUFFIX"
TCSV="$ROOT/var/folds/time/labels.csv"
node -e "
const fs = require('fs'); const path = require('path');
const lines = fs.readFileSync('$CSV', 'utf8').trim().split(/\r?\n/); const head = lines.shift().split(',');
const rows = lines.map((l) => l.split(',')); const fi = head.indexOf('file'), vi = head.indexOf('video');
const byVideo = {}; for (const r of rows) (byVideo[r[vi]] ??= []).push(r[fi]);
const rank = {}; for (const [v, fs_] of Object.entries(byVideo)) fs_.sort().forEach((f, i) => (rank[f] = i / Math.max(fs_.length - 1, 1)));
const out = [[...head, 'block'].join(',')];
for (const r of rows) { const p = rank[r[fi]]; r[fi] = path.join('$DATA/hats/kitchen/images', r[fi]); out.push([...r, p >= 0.6 ? 'late' : p >= 0.55 ? 'gap' : 'early'].join(',')); }
fs.writeFileSync('$TCSV', out.join('\n') + '\n');"
score time no_hat "$TCSV" block=late has_hat=0
score time smoking "$TCSV" block=late block=early # no late row is positive
