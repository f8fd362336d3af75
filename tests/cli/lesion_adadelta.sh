#!/bin/sh
# The solver case of issue 14: AdaDelta on the 1/8-width lesion net
# (models/lesion/bundled) at 48x48, 6 iterations from filler-initialised
# weights on synthetic images.  Its first steps are large (the loss
# quadruples, then falls), which magnifies any difference in the gradients:
# AdaDelta's first updates are nearly +-sqrt(delta / (1 - momentum))
# whatever a gradient's size, so rounding in a small component moves its
# weight as much as a large one's, and near ties in the max pools and
# ReLUs flip with it.  With the classic Winograd points the default
# engine's loss ended 8e-4 away from Caffe's while gemm's stayed within
# 7e-5; with Winograd's gradients forced onto every 3x3 layer, 1.6e-3 (it
# now keeps gemm's where it is not faster, see math/winograd.c).  Every
# iteration's loss under the default engine, forced Winograd, direct and
# the portable kernels must be within 2e-4 of gemm's (im2col + SGEMM,
# Caffe's own way).
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
srcdir=$(cd "$CREMA_TEST_DATA/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir lesion-adadelta
cd "$work" || exit 99
"$CREMA_BIN" synth --count 4 --size 64 --seed 3 images >/dev/null 2>&1 &&
  "$CREMA_BIN" lesion-db --size 48 images . >/dev/null 2>&1 ||
  { echo "FAIL: synthetic lesion data" >&2; exit 1; }
cp "$srcdir/models/lesion/bundled/train_val.prototxt" . || exit 99
cat >solver.prototxt <<'SOLVER'
net: "train_val.prototxt"
type: "AdaDelta"
base_lr: 1.0
momentum: 0.95
delta: 1e-6
lr_policy: "fixed"
max_iter: 6
display: 1
snapshot: 0
snapshot_prefix: "ada"
random_seed: 1701
solver_mode: CPU
SOLVER

# losses RUN: "iter loss" lines of one training run.
losses() {
  if [ "$1" = generic ]; then
    CREMA_SIMD=generic "$CREMA_BIN" train --solver solver.prototxt >"$1.log" 2>&1
  else
    CREMA_CONV=$1 "$CREMA_BIN" train --solver solver.prototxt >"$1.log" 2>&1
  fi || { fail "training under $1"; tail -n 5 "$1.log" >&2; }
  sed -n 's/.*Iteration \([0-9]*\) (.*loss = \([-0-9.e+]*\).*/\1 \2/p' "$1.log" >"$1.loss"
}
losses gemm
[ "$(wc -l <gemm.loss)" -eq 6 ] || fail "gemm: $(wc -l <gemm.loss) losses, expected 6"
for run in auto direct generic winograd; do
  losses "$run"
  worst=$(paste gemm.loss "$run.loss" | awk '
    { d = ($4 - $2) / $2; if (d < 0) d = -d; if (d > m) m = d; n++ }
    END { if (n != 6) print "missing"; else printf "%.3g\n", m + 0 }')
  echo "AdaDelta lesion 48x48 under $run: max rel loss difference from gemm $worst"
  awk -v w="$worst" 'BEGIN { exit !(w != "missing" && w + 0 <= 2e-4) }' ||
    fail "$run: losses $(tr '\n' ' ' <"$run.loss") against gemm's $(tr '\n' ' ' <gemm.loss)"
done
finish
