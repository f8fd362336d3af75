#!/bin/sh
# crema upgrade-net / upgrade-solver / info on the golden legacy VGG-16 files
# and on broken inputs: exit codes, outputs and one-line error messages.
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"

# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir cli-upgrade
vgg="$CREMA_TEST_DATA/nets/vgg16_w8_v1"

# The report must also be the only non-log line on stderr.
expect_lone_error() {
  expect_one_line_error "$1" "$2"
  grep -v '^[IWE][0-9]' "$work/err" | grep -vq "^crema $1: " &&
    fail "stray stderr output: $(cat "$work/err")"
}

# --- help ---
for cmd in upgrade-net upgrade-solver info; do
  expect_status 0 "$cmd --help" "$CREMA_BIN" "$cmd" --help
  grep -q "usage: crema $cmd" "$work/out" || fail "$cmd --help prints no usage"
done

# --- text upgrade: byte-identical to Caffe's upgrade_net_proto_text ---
expect_status 0 "upgrade-net prototxt" \
  "$CREMA_BIN" upgrade-net "$vgg/net.prototxt" "$work/up.prototxt"
cmp -s "$work/up.prototxt" "$vgg/upgraded.prototxt" ||
  fail "upgraded prototxt differs from Caffe's:" \
    "$(diff "$vgg/upgraded.prototxt" "$work/up.prototxt" | head -20)"
grep -q "deprecated V1LayerParameter" "$work/err" || fail "no upgrade log"
ls -a "$work" | grep -q '\.tmp\.' && fail "temporary file left behind"

# Upgrading the result again changes nothing.
expect_status 0 "upgrade-net current prototxt" \
  "$CREMA_BIN" upgrade-net "$work/up.prototxt" "$work/up2.prototxt"
cmp -s "$work/up.prototxt" "$work/up2.prototxt" || fail "second upgrade changed the file"
grep -q "already in latest proto format" "$work/err" || fail "no 'already latest' note"

# --- binary upgrade, then info on the result ---
expect_status 0 "upgrade-net caffemodel" \
  "$CREMA_BIN" upgrade-net "$vgg/legacy_v1.caffemodel" "$work/up.caffemodel"
[ -s "$work/up.caffemodel" ] || fail "no upgraded caffemodel"
expect_status 0 "info caffemodel" "$CREMA_BIN" info "$work/up.caffemodel"
grep -q "^layer 0: conv1_1 (Convolution)" "$work/out" || fail "info: conv1_1 missing"
grep -q "blobs: 8x3x3x3 1x1x1x8" "$work/out" || fail "info: conv1_1 blob shapes"
grep -q "blobs: 1x1x1000x512 1x1x1x1000" "$work/out" || fail "info: fc8 blob shapes"
grep -q "^total: 39 layers, 32 parameter blobs, 1137808 parameters$" "$work/out" ||
  fail "info totals: $(tail -n 1 "$work/out")"
# The legacy model itself gives the same listing (upgraded on the fly).
"$CREMA_BIN" info "$vgg/legacy_v1.caffemodel" 2>/dev/null | tail -n 1 >"$work/legacy_total"
tail -n 1 "$work/out" | cmp -s - "$work/legacy_total" || fail "info on the legacy model differs"

# Text to binary also works: the definition has no blobs.
expect_status 0 "upgrade-net text to binary" \
  "$CREMA_BIN" upgrade-net "$vgg/net.prototxt" "$work/def.caffemodel"
expect_status 0 "info prototxt" "$CREMA_BIN" info "$vgg/net.prototxt"
grep -q "^layer 0: input (Input)" "$work/out" || fail "info prototxt: no Input layer"
grep -q "shape: 1x3x64x64" "$work/out" || fail "info prototxt: input shape"
grep -q "^total: 40 layers, 0 parameter blobs, 0 parameters$" "$work/out" ||
  fail "info prototxt totals: $(tail -n 1 "$work/out")"

# --- solver ---
expect_status 0 "upgrade-solver" "$CREMA_BIN" upgrade-solver \
  "$CREMA_TEST_DATA/solvers/legacy_solver_type_enum/solver.prototxt" "$work/solver.prototxt"
grep -q '^type: "Nesterov"$' "$work/solver.prototxt" || fail "solver type not upgraded"
grep -q 'solver_type' "$work/solver.prototxt" && fail "solver_type still present"
expect_status 1 "upgrade-solver with both types" "$CREMA_BIN" upgrade-solver \
  "$CREMA_TEST_DATA/upgrade/solver_both_types.prototxt" "$work/bad_solver.prototxt"
expect_lone_error upgrade-solver "cannot be both specified"
[ -e "$work/bad_solver.prototxt" ] && fail "output written despite the error"

# --- bad inputs: exit 1 and one line naming the problem ---
head -c 1000 "$vgg/legacy_v1.caffemodel" >"$work/cut.caffemodel"
expect_status 1 "truncated model" \
  "$CREMA_BIN" upgrade-net "$work/cut.caffemodel" "$work/x.caffemodel"
expect_lone_error upgrade-net "not a Caffe binary model (truncated or corrupt)"
[ -e "$work/x.caffemodel" ] && fail "output written for a truncated model"

expect_status 1 "truncated model info" "$CREMA_BIN" info "$work/cut.caffemodel"
expect_lone_error info "truncated or corrupt"

: >"$work/empty.caffemodel"
expect_status 1 "empty model" "$CREMA_BIN" info "$work/empty.caffemodel"
expect_lone_error info "empty file"

expect_status 1 "missing file" "$CREMA_BIN" upgrade-net "$work/nope.prototxt" "$work/x.prototxt"
expect_lone_error upgrade-net "nope.prototxt"

expect_status 1 "directory" "$CREMA_BIN" info "$work"
expect_lone_error info "directory"

expect_status 1 "unknown V0 type" "$CREMA_BIN" upgrade-net \
  "$CREMA_TEST_DATA/upgrade/v0_bad_type.prototxt" "$work/x.prototxt"
expect_lone_error upgrade-net "unknown layer type 'warp_drive'"

expect_status 1 "bad padding" "$CREMA_BIN" upgrade-net \
  "$CREMA_TEST_DATA/upgrade/v0_bad_padding.prototxt" "$work/x.prototxt"
expect_lone_error upgrade-net "padding layer 'pad1'"

expect_status 1 "unwritable output" \
  "$CREMA_BIN" upgrade-net "$vgg/net.prototxt" "$work/no/dir/x.prototxt"
expect_lone_error upgrade-net "no/dir/x.prototxt"

expect_status 2 "missing argument" "$CREMA_BIN" upgrade-net "$vgg/net.prototxt"
expect_status 2 "too many arguments" "$CREMA_BIN" info a b

finish
echo "all upgrade CLI checks passed"
