#!/bin/sh
# Caffe's file rules (issue 14): weights, mean files and solver states are
# binary whatever they are called; only names ending in .prototxt or .pbtxt
# are read as text.  A text file under another name is "not a Caffe binary
# model" and the message names it.  crema info reads a .binaryproto mean
# file (its shape) and a .solverstate.
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"

# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir file-rules
lenet=$CREMA_TEST_DATA/nets/lenet_real

verify_lenet() { # DESCRIPTION WEIGHTS
  expect_status 0 "$1" "$CREMA_BIN" verify --model "$lenet/net.prototxt" --weights "$2" \
    --reference "$lenet/blobs"
  tail -n 1 "$work/out" | grep -q '^[1-9][0-9]* passed, 0 failed$' ||
    fail "$1: $(tail -n 1 "$work/out")"
}

# --- binary weights under any name, in every command that takes them ---
for name in weights.bin lenet.model weights; do
  cp "$lenet/lenet_iter_10000.caffemodel" "$work/$name"
  verify_lenet "binary weights named $name" "$work/$name"
done
expect_status 0 "time with weights.bin" "$CREMA_BIN" time --model "$lenet/net.prototxt" \
  --weights "$work/weights.bin" --iterations 1 --phase test
expect_status 0 "test with weights.bin" "$CREMA_BIN" test --model "$lenet/net.prototxt" \
  --weights "$work/weights.bin" --iterations 1
expect_status 0 "info weights.bin" "$CREMA_BIN" info "$work/weights.bin"
grep -q ": conv1 (Convolution)$" "$work/out" || fail "info weights.bin: no conv1"
grep -q "blobs: 20x1x5x5 20" "$work/out" || fail "info weights.bin: conv1 blob shapes"

# --- text weights: only .prototxt and .pbtxt ---
expect_status 0 "weights to text" "$CREMA_BIN" upgrade-net \
  "$lenet/lenet_iter_10000.caffemodel" "$work/weights.prototxt"
verify_lenet "text weights named .prototxt" "$work/weights.prototxt"
cp "$work/weights.prototxt" "$work/weights.pbtxt"
verify_lenet "text weights named .pbtxt" "$work/weights.pbtxt"
for name in text.caffemodel text.txt; do
  cp "$work/weights.prototxt" "$work/$name"
  expect_status 1 "text weights named $name" "$CREMA_BIN" verify --model "$lenet/net.prototxt" \
    --weights "$work/$name" --reference "$lenet/blobs"
  expect_one_line_error verify "$work/$name: not a Caffe binary model"
  expect_status 1 "test with text weights named $name" "$CREMA_BIN" test \
    --model "$lenet/net.prototxt" --weights "$work/$name" --iterations 1
  expect_one_line_error test "$work/$name: not a Caffe binary model"
done
# One weights file of a list is enough to stop.
expect_status 1 "text weights in a list" "$CREMA_BIN" time --model "$lenet/net.prototxt" \
  --weights "$work/weights.bin,$work/text.txt" --iterations 1
expect_one_line_error time "text.txt: not a Caffe binary model"
expect_status 1 "info on text named .caffemodel" "$CREMA_BIN" info "$work/text.caffemodel"
expect_one_line_error info "text.caffemodel: not a Caffe binary model"
# A definition under another name still lists.
cp "$lenet/net.prototxt" "$work/net.def"
expect_status 0 "info on a definition named .def" "$CREMA_BIN" info "$work/net.def"
grep -q "^layer 1: conv1 (Convolution)" "$work/out" || fail "info net.def: no conv1"

# --- mean files: crema info shows the BlobProto; any name in a net ---
case_dir=$CREMA_TEST_DATA/golden/data/data_mean_file_crop
expect_status 0 "info mean.binaryproto" "$CREMA_BIN" info "$case_dir/mean.binaryproto"
grep -q "^blob: BlobProto$" "$work/out" || fail "info mean: not shown as a BlobProto"
grep -q "^shape: 1x3x" "$work/out" || fail "info mean: no shape: $(cat "$work/out")"
cp -R "$case_dir" "$work/meancase" && chmod -R u+w "$work/meancase" || exit 99
mv "$work/meancase/mean.binaryproto" "$work/meancase/mean.data"
sed 's/mean_file: "mean.binaryproto"/mean_file: "mean.data"/' "$case_dir/net.prototxt" \
  >"$work/meancase/net.prototxt"
(cd "$work/meancase" && "$CREMA_BIN" verify --model net.prototxt --phase test \
  --reference forward0/blobs >"$work/out" 2>"$work/err") ||
  fail "mean file named mean.data: $(tail -n 1 "$work/out") $(tail -n 1 "$work/err")"
cp "$lenet/net.prototxt" "$work/meancase/mean.data"
(cd "$work/meancase" && "$CREMA_BIN" verify --model net.prototxt --phase test \
  --reference forward0/blobs >"$work/out" 2>"$work/err") && fail "text mean file accepted"
grep -q "mean.data: not a Caffe binary BlobProto" "$work/err" ||
  fail "text mean file: $(tail -n 1 "$work/err")"

# --- solver states: crema info, and a text one named .solverstate ---
state=$CREMA_TEST_DATA/golden/solvers/lesion_w8_sgd/snap_iter_4.solverstate
expect_status 0 "info solverstate" "$CREMA_BIN" info "$state"
grep -q "^iter: 4$" "$work/out" || fail "info solverstate: $(cat "$work/out")"
sgd=$CREMA_TEST_DATA/golden/solvers/sgd_step_momentum
cp -R "$sgd" "$work/sgd" && chmod -R u+w "$work/sgd" || exit 99
cp "$lenet/net.prototxt" "$work/sgd/bad.solverstate"
(cd "$work/sgd" && "$CREMA_BIN" train --solver solver.prototxt \
  --snapshot bad.solverstate >"$work/out" 2>"$work/err") && fail "text solver state accepted"
grep -q "bad.solverstate: not a Caffe binary SolverState" "$work/err" ||
  fail "text solver state: $(tail -n 1 "$work/err")"
finish
