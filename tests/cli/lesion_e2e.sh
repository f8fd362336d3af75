#!/bin/sh
# The lesion workflow end to end, small enough for CI: 48 synthetic images
# (crema synth, 96 px) -> databases at 64 x 64 with one augmented copy each
# (crema lesion-db) -> 300 Adam iterations of the bundled 1/8-width network
# from scratch (crema train) -> segmentation of 16 held-out synthetic images
# (crema segment) -> ISIC metrics (crema evaluate).
# Documented bounds (models/lesion/README): the loss falls at least 3-fold
# (observed about 8x) and the mean Jaccard on the held-out images is at
# least 0.6 (observed about 0.85).
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
models="$CREMA_TEST_DATA/../../models/lesion"

# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir lesion-e2e
cd "$work" || exit 99
OMP_NUM_THREADS=2
OPENBLAS_NUM_THREADS=2
export OMP_NUM_THREADS OPENBLAS_NUM_THREADS

die() {
  echo "FAIL: $*" >&2
  exit 1
}

"$CREMA_BIN" synth --count 48 --size 96 --seed 11 train_imgs 2>log || die "synth: $(cat log)"
"$CREMA_BIN" synth --count 16 --size 96 --seed 99 --first 1000 test_imgs 2>log ||
  die "synth: $(cat log)"
"$CREMA_BIN" lesion-db --size 64 --augment 1 train_imgs . 2>log || die "lesion-db: $(cat log)"

# Without test_iter the solver builds no test net: the val_ sources are unused.
cp "$models/bundled/train_val.prototxt" . || exit 99
cat >solver.prototxt <<'SOLVER'
net: "train_val.prototxt"
type: "Adam"
base_lr: 0.001
momentum: 0.9
momentum2: 0.999
lr_policy: "fixed"
max_iter: 300
display: 25
average_loss: 25
snapshot: 0
snapshot_prefix: "e2e"
random_seed: 5
SOLVER
"$CREMA_BIN" train --solver solver.prototxt 2>train.log || die "train: $(tail -n 5 train.log)"
first=$(sed -n 's/.*Iteration 0 (.*loss = \([0-9.e+-]*\).*/\1/p' train.log)
last=$(sed -n 's/.*Iteration 300, loss = \([0-9.e+-]*\).*/\1/p' train.log)
[ -n "$first" ] && [ -n "$last" ] || die "no losses in the training log"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b > 0 && a / b >= 3) }' ||
  die "loss fell from $first to $last only (expected 3x)"
echo "loss $first -> $last"

"$CREMA_BIN" segment --model "$models/bundled/deploy.prototxt" --weights e2e_iter_300.caffemodel \
  --size 64 --output pred test_imgs 2>log || die "segment: $(cat log)"
"$CREMA_BIN" evaluate --truth test_imgs --pred pred >metrics 2>log || die "evaluate: $(cat log)"
jaccard=$(awk '/^mean/ { print $3 }' metrics)
[ -n "$jaccard" ] || die "no mean line in $(cat metrics)"
awk -v j="$jaccard" 'BEGIN { exit !(j >= 0.6) }' || die "mean Jaccard $jaccard < 0.6"
echo "held-out mean Jaccard $jaccard"
