#!/bin/sh
# The Python module's tests: pycaffe-style scripts (only the import
# changed) run with the module from the build tree, their numbers checked
# against BVLC Caffe's golden data and against the C library (crema verify,
# crema train).  Skipped (77) when the module is not built.
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
if [ "${CREMA_PY_BUILT:-no}" != yes ]; then
  echo "the Python module is not built (configure --enable-python): skipped"
  exit 77
fi
if ! "$CREMA_PYTHON" -c 'import google.protobuf' 2>/dev/null; then
  echo "python3-protobuf is missing (the scripts read Caffe's files through caffe.proto): skipped"
  exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../cli/testlib.sh
. "$here/../cli/testlib.sh"
make_workdir python
data=$CREMA_TEST_DATA
fixtures=$data/python

# An ASan build's extension needs the ASan runtime loaded first; Python's
# own allocations are not ours to leak-check.
run_py() {
  if [ -n "${CREMA_PY_ASAN_PRELOAD:-}" ]; then
    LD_PRELOAD=$CREMA_PY_ASAN_PRELOAD \
      ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
      PYTHONPATH=$CREMA_PYTHONPATH "$CREMA_PYTHON" "$@"
  else
    PYTHONPATH=$CREMA_PYTHONPATH "$CREMA_PYTHON" "$@"
  fi
}

# step NAME COMMAND...: runs COMMAND with output in $work/NAME.log.
step() {
  name=$1
  shift
  t0=$(date +%s)
  if ! "$@" >"$work/$name.log" 2>&1; then
    fail "$name"
    tail -n 40 "$work/$name.log" >&2
    return 1
  fi
  echo "$name: ok ($(($(date +%s) - t0)) s)"
  return 0
}

# verify_ok NAME: crema verify's log ends with "N passed, 0 failed".
verify_ok() {
  tail -n 1 "$work/$1.log" | grep -q '^[1-9][0-9]* passed, 0 failed$' ||
    { fail "$1: $(tail -n 1 "$work/$1.log")"; grep FAIL "$work/$1.log" >&2; }
}

# 1. VGG-16 (1/8 width, legacy V1 layout): golden blobs, then an image
#    through caffe.io; the C library recomputes every blob from the input
#    the script fed.
vgg=$data/nets/vgg16_w8_v1
step classify_vgg run_py "$here/classify_vgg.py" "$vgg/net.prototxt" \
  "$vgg/legacy_v1.caffemodel" "$fixtures/photo.png" "$vgg/blobs" "$work/vgg_dump" &&
  step classify_vgg_verify "$CREMA_BIN" verify --model "$vgg/net.prototxt" \
    --weights "$vgg/legacy_v1.caffemodel" --reference "$work/vgg_dump" &&
  verify_ok classify_vgg_verify

# 2. Reading blobs after (partial) forward passes and backward: golden
#    blobs, then crema verify --backward on the data, diffs and parameter
#    diffs the script saw.
lenet=$data/nets/lenet_real
step blobs_after_forward run_py "$here/blobs_after_forward.py" \
  "$fixtures/lenet_force_backward.prototxt" "$lenet/lenet_iter_10000.caffemodel" \
  "$lenet/blobs" "$work/lenet_dump" "$work/lenet_params" &&
  step blobs_verify "$CREMA_BIN" verify --model "$fixtures/lenet_force_backward.prototxt" \
    --weights "$lenet/lenet_iter_10000.caffemodel" --reference "$work/lenet_dump" \
    --params "$work/lenet_params" --backward &&
  verify_ok blobs_verify

# 3. A Transformer chain against convert-imageset + the Data layer.
mkdir -p "$work/photo" && cp "$fixtures/photo.png" "$work/photo/" &&
  echo "photo.png 0" >"$work/photo/list.txt" &&
  step photo_lmdb "$CREMA_BIN" convert-imageset "$work/photo/" "$work/photo/list.txt" \
    "$work/photo/photo_lmdb" &&
  (cd "$work/photo" && step transformer_chain run_py "$here/transformer_chain.py" \
    "$fixtures/photo.png" "$fixtures/photo_data.prototxt") || fail transformer_chain

# 4. LeNet training after net surgery; crema train from the same weights
#    must give the same losses and weights.
mkdir -p "$work/lenet" &&
  cp "$fixtures/lenet_solver.prototxt" "$fixtures/lenet_train_test.prototxt" "$work/lenet/" &&
  step digits_lmdb "$CREMA_BIN" convert-imageset --gray "$fixtures/digits/" \
    "$fixtures/digits/list.txt" "$work/lenet/digits_lmdb" &&
  (cd "$work/lenet" && step lenet_surgery run_py "$here/lenet_surgery.py" \
    lenet_solver.prototxt "$lenet/net.prototxt" "$lenet/lenet_iter_10000.caffemodel" \
    "$work/lenet/py") &&
  (cd "$work/lenet" && step lenet_crema_train "$CREMA_BIN" train \
    --solver lenet_solver.prototxt --weights py/surgery.caffemodel) &&
  step lenet_compare run_py "$here/compare_training.py" "$work/lenet/py/train_loss.txt" \
    "$work/lenet_crema_train.log" "$work/lenet/py/trained.caffemodel" \
    "$work/lenet/lenet_iter_10.caffemodel" || fail lenet_training

# 5. Step loops of the six solvers against Caffe's trajectories.
cases=
for c in sgd_step_momentum nesterov_inv adagrad_fixed rmsprop_poly adadelta_multistep adam_exp; do
  src=$data/golden/solvers/$c
  mkdir -p "$work/solvers/$c" &&
    cp -R "$src/solver.prototxt" "$src/net.prototxt" "$src/init.caffemodel" "$src/train_lmdb" \
      "$work/solvers/$c/" && chmod -R u+w "$work/solvers/$c" || exit 99
  cases="$cases $work/solvers/$c"
done
# shellcheck disable=SC2086
step solver_loop run_py "$here/solver_loop.py" "$data/golden/solvers" $cases

# 6. Errors and lifetimes.
step api_errors run_py "$here/api_errors.py" "$lenet/net.prototxt" \
  "$lenet/lenet_iter_10000.caffemodel" "$work"

for f in "$work"/*.log; do
  echo "== $(basename "$f")"
  grep -v '^[IW][0-9]' "$f" | tail -n 12
done
[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
exit 0
