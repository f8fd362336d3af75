#!/bin/sh
# crema time: caffe time's report, the peak memory, and --forward-only
# (issue 14), which times inference alone and allocates no gradients.
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"

# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir time
lenet=$CREMA_TEST_DATA/nets/lenet_real

expect_status 0 "time" "$CREMA_BIN" time --model "$lenet/net.prototxt" \
  --weights "$lenet/lenet_iter_10000.caffemodel" --iterations 2
for line in "Average Forward pass: " "Average Backward pass: " "Average Forward-Backward: " \
  "Peak memory (resident): " "conv1	backward: "; do
  grep -q "$line" "$work/err" || fail "time: no '$line' line"
done

for flag in --forward-only --forward_only; do
  expect_status 0 "time $flag" "$CREMA_BIN" time --model "$lenet/net.prototxt" \
    --weights "$lenet/lenet_iter_10000.caffemodel" --iterations 2 "$flag"
  grep -q "Average Forward pass: " "$work/err" || fail "$flag: no forward time"
  grep -q "Peak memory (resident): " "$work/err" || fail "$flag: no peak memory"
  grep -q "ackward" "$work/err" && fail "$flag: backward timed"
done
expect_status 1 "--forward-only --phase train" "$CREMA_BIN" time \
  --model "$lenet/net.prototxt" --forward-only --phase train --iterations 1
expect_one_line_error time "--forward-only times the inference (TEST) net"

# A net whose parameters dominate its memory (a 4096 x 4096 InnerProduct,
# 64 MB of weights): without gradients its peak is at least 48 MB lower.
cat >"$work/fc.prototxt" <<'NET'
name: "fc"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4096 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
  inner_product_param { num_output: 4096 weight_filler { type: "gaussian" std: 0.01 } } }
NET
peak() { sed -n 's/.*Peak memory (resident): \([0-9]*\).*/\1/p' "$work/err"; }
expect_status 0 "time fc" "$CREMA_BIN" time --model "$work/fc.prototxt" --iterations 1
full=$(peak)
expect_status 0 "time fc --forward-only" "$CREMA_BIN" time --model "$work/fc.prototxt" \
  --iterations 1 --forward-only
inference=$(peak)
[ -n "$full" ] && [ -n "$inference" ] && [ "$inference" -le $((full - 48)) ] ||
  fail "--forward-only peak ${inference:-?} MB, with gradients ${full:-?} MB"
echo "peak memory of a 64 MB InnerProduct net: $full MB timed with gradients, $inference MB --forward-only"
finish
