#!/bin/sh
# Rebuilds models/demo-t2i from nothing: data -> training (resumable) -> export -> evaluation -> fixtures -> card.
# Every step is deterministic for SEED on one machine. Re-running after an interruption resumes the training
# from build/t2i-train/ckpt.pt (delete that folder to start over). See models/demo-t2i/MODEL_CARD.md.
#   sh scripts/t2i/train_all.sh            (from the repository root; training ~1 h on one shared core)
set -e
PY=/usr/bin/python3
SEED=${SEED:-1}
STEPS=${STEPS:-2600}
GUIDANCE=${GUIDANCE:-3.0}
DATA=build/t2i-data
WORK=build/t2i-train
OUT=models/demo-t2i
D=scripts/t2i

$PY $D/make_data.py --out $DATA --seed "$SEED"
OPENBLAS_NUM_THREADS=1 nice -n 5 $PY $D/train.py --data $DATA --work $WORK --seed "$SEED" --steps "$STEPS" --lr 2e-3 --warmup 200 \
    --ema 0.998 --threads 1
$PY $D/export.py --work $WORK --out $OUT --guidance "$GUIDANCE"
cp $DATA/heldout.tsv $DATA/indist.tsv $DATA/heldout_triples.txt $OUT/
$PY $D/detect.py --selftest 3000
$PY $D/evaluate.py --model $OUT --guidance-sweep 1.5,3,5 --sheet docs/img/t2i-heldout-samples.png \
    --out $WORK/eval_report.json
$PY $D/make_fixtures.py --model $OUT --out tests/fixtures/t2i
$PY $D/card.py --model $OUT --work $WORK --report $WORK/eval_report.json
