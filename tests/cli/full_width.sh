#!/bin/sh
# Full-width nets under every convolution engine (issue 14): the golden
# cases of tests/data are 1/8-width, where Winograd's rounding stays small;
# users run the real widths.
#   1. VGG-16 as published (V1 layout, 224x224, batch 1) and the lesion
#      deploy net of models/lesion, with seeded weights (crema init): every
#      blob against OpenCV's dnn (crema verify, the golden tolerance), with
#      CREMA_CONV=auto, winograd, gemm and direct, and with
#      CREMA_SIMD=generic.
#   2. The lesion training net, forward and backward through the Python
#      module under the same engines: each convolution's parameter and
#      bottom gradients against float64 computed from its own inputs
#      (tests/cli/full_width.py; only where the module, numpy and protobuf
#      are there).
# Skipped (77) without python3-opencv.  Prints each run's largest relative
# error (the README's table of engine errors comes from this output).
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
srcdir=$(cd "$CREMA_TEST_DATA/../.." && pwd)
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-/usr/bin/python3}
"$py" -c 'import cv2, numpy' >/dev/null 2>&1 || { echo "no python3-opencv: skipped"; exit 77; }
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$here/testlib.sh"
make_workdir full-width
size=224

# verify_engines NAME NET WEIGHTS: crema verify against $work/NAME.ref under
# each engine, one summary line each.
verify_engines() {
  name=$1 net=$2 weights=$3
  for run in auto winograd gemm direct generic; do
    out=$work/$name.$run.txt
    if [ "$run" = generic ]; then
      CREMA_SIMD=generic "$CREMA_BIN" verify --model "$net" --weights "$weights" \
        --reference "$work/$name.ref" >"$out" 2>"$work/err"
    else
      CREMA_CONV=$run "$CREMA_BIN" verify --model "$net" --weights "$weights" \
        --reference "$work/$name.ref" >"$out" 2>"$work/err"
    fi
    rc=$?
    "$py" "$here/full_width.py" summary "$out"
    if [ "$rc" -ne 0 ] || ! tail -n 1 "$out" | grep -q '^[1-9][0-9]* passed, 0 failed$'; then
      fail "$name under $run: $(tail -n 1 "$out")"
      grep FAIL "$out" | head -n 20 >&2
      tail -n 3 "$work/err" >&2
    fi
  done
}

# forward_case NAME NET WEIGHTS: OpenCV's blobs, then verify_engines.
forward_case() {
  mkdir -p "$work/$1.ref"
  "$CREMA_BIN" info "$2" >"$work/$1.info" 2>"$work/err" &&
    "$py" "$here/full_width.py" forward "$2" "$3" "$work/$1.info" "$size" "$work/$1.ref" ||
    { fail "$1: OpenCV's reference"; cat "$work/err" >&2; return; }
  verify_engines "$@"
}

# 1. VGG-16, published layout; weights MSRA-filled so activations keep
#    their scale as with trained weights.
sh "$srcdir/bench/vgg16.sh" 1 "$size" >"$work/vgg16.prototxt"
sh "$srcdir/bench/vgg16.sh" 1 "$size" fillers >"$work/vgg16_init.prototxt"
if "$CREMA_BIN" init --model "$work/vgg16_init.prototxt" --output "$work/vgg16.caffemodel" \
  --seed 14 --v1 2>"$work/err"; then
  forward_case vgg16 "$work/vgg16.prototxt" "$work/vgg16.caffemodel"
else
  fail "crema init VGG-16"
  cat "$work/err" >&2
fi
rm -f "$work/vgg16.caffemodel"

# 2. The lesion nets of models/lesion (the patent's), full width.
lesion=$srcdir/models/lesion
if "$CREMA_BIN" init --model "$lesion/deploy.prototxt" --output "$work/lesion.caffemodel" \
  --seed 14 2>"$work/err"; then
  forward_case lesion_deploy "$lesion/deploy.prototxt" "$work/lesion.caffemodel"
  if [ "${CREMA_PY_BUILT:-no}" = yes ] &&
    "$CREMA_PYTHON" -c 'import numpy, google.protobuf' >/dev/null 2>&1; then
    if [ -n "${CREMA_PY_ASAN_PRELOAD:-}" ]; then
      LD_PRELOAD=$CREMA_PY_ASAN_PRELOAD \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        PYTHONPATH=$CREMA_PYTHONPATH "$CREMA_PYTHON" "$here/full_width.py" backward \
        "$lesion/train_val.prototxt" "$work/lesion.caffemodel" "$size" >"$work/backward.txt" 2>&1
    else
      PYTHONPATH=$CREMA_PYTHONPATH "$CREMA_PYTHON" "$here/full_width.py" backward \
        "$lesion/train_val.prototxt" "$work/lesion.caffemodel" "$size" >"$work/backward.txt" 2>&1
    fi
    rc=$?
    grep -v '^[IWE][0-9]' "$work/backward.txt"
    [ "$rc" -eq 0 ] || fail "lesion training net: gradients against float64"
  else
    echo "lesion training net: the Python module, numpy or protobuf missing: backward skipped"
  fi
else
  fail "crema init lesion deploy"
  cat "$work/err" >&2
fi
finish
