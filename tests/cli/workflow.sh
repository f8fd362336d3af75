#!/bin/sh
# The lesion workflow's rough edges found by a new user (issue 15, item 4):
# crema help CMD, Caffe's underscore tool names, lesion-db's progress, --size
# values the net cannot take, duplicate image IDs, quiet logs.
set -u
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
models="$CREMA_TEST_DATA/../../models/lesion"

make_workdir workflow
cd "$work" || exit 99

# --- crema help CMD, and Caffe's tool names ---
expect_status 0 "help segment" "$CREMA_BIN" help segment
grep -q "^usage: crema segment" "$work/out" || fail "help segment: $(head -n 2 "$work/out")"
expect_status 0 "help compute_image_mean" "$CREMA_BIN" help compute_image_mean
grep -q "^usage: crema compute-image-mean" "$work/out" || fail "help compute_image_mean"
expect_status 2 "help of an unknown command" "$CREMA_BIN" help frobnicate
grep -q "unknown command 'frobnicate'" "$work/err" || fail "help frobnicate: $(cat "$work/err")"
for pair in convert_imageset:convert-imageset compute_image_mean:compute-image-mean \
  extract_features:extract-features upgrade_net_proto_text:upgrade-net \
  upgrade_net_proto_binary:upgrade-net upgrade_solver_proto_text:upgrade-solver; do
  caffe=${pair%%:*}
  crema=${pair#*:}
  expect_status 0 "$caffe --help" "$CREMA_BIN" "$caffe" --help
  grep -q "^usage: crema $crema" "$work/out" || fail "$caffe is not $crema: $(head -n 1 "$work/out")"
done
expect_status 2 "a near miss is no alias" "$CREMA_BIN" compute_image_means --help

# --- sizes the net cannot take, refused up front naming the multiple ---
"$CREMA_BIN" synth --count 3 --size 80 --seed 3 imgs 2>/dev/null || fail "synth"
expect_status 1 "lesion-db --size 50 --net" "$CREMA_BIN" lesion-db --size 50 \
  --net "$models/deploy.prototxt" imgs db50
expect_one_line_error lesion-db "--size 50: $models/deploy.prototxt takes sizes that are multiples of 16"
[ -e db50 ] && fail "lesion-db --size 50 wrote db50"
expect_status 1 "segment --size 50" "$CREMA_BIN" segment --model "$models/bundled/deploy.prototxt" \
  --weights "$models/bundled/lesion_w8_128.caffemodel" --size 50 --output seg50 imgs
expect_one_line_error segment "size 50: the model takes sizes that are multiples of 16"
# A net built at such a size says why its Concat fails.
sed 's/dim: 128 dim: 128/dim: 50 dim: 50/' "$models/bundled/deploy.prototxt" >d50.prototxt
expect_status 1 "time at 50x50" "$CREMA_BIN" time --model d50.prototxt --iterations 1 \
  --forward-only
grep -q "(Concat).*the input 'data' is 50x50; this net's strided layers take sizes that are multiples of 16" \
  "$work/err" || fail "no size explanation: $(tail -n 1 "$work/err")"

# --- lesion-db: a progress line with an ETA on a terminal ---
if command -v script >/dev/null 2>&1; then
  script -qec "'$CREMA_BIN' lesion-db --size 32 --net '$models/deploy.prototxt' imgs db" \
    /dev/null >tty.out 2>&1 || fail "lesion-db on a terminal: $(cat tty.out)"
  grep -q "crema lesion-db: \[#*\] 3/3 (100%), .* images/s, ETA 0:00:00" tty.out ||
    fail "no progress line: $(cat tty.out)"
fi
expect_status 0 "lesion-db off a terminal" "$CREMA_BIN" lesion-db --size 32 imgs db2
grep -q "ETA" "$work/err" && fail "progress drawn off a terminal"

finish
