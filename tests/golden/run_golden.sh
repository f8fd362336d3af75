#!/bin/sh
# Every golden case through `crema verify`: the 64 layer cases of
# tests/data/golden/layers (phase and backward as their meta.txt says) and
# the whole nets of tests/data/nets, once with every convolution engine
# (CREMA_CONV) and once with the portable kernels (CREMA_SIMD=generic).
# Prints one summary line per case and the failing comparisons; exits 1 if
# any case fails.
#   GOLDEN_ONLY=substring   runs only the cases whose name contains it.
#   GOLDEN_ENGINES="a b"    the engines (default: auto gemm winograd direct depthwise).
#   GOLDEN_VERBOSE=1        prints every comparison line.
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"

work=$(mktemp -d "${TMPDIR:-/tmp}/crema-golden.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
failed_names=""

# run_case NAME ARGS...: one crema verify run.
run_case() {
  name=$1
  shift
  case "$name" in *"${GOLDEN_ONLY:-}"*) ;; *) return 0 ;; esac
  "$CREMA_BIN" verify "$@" >"$work/out" 2>"$work/err"
  status=$?
  summary=$(tail -n 1 "$work/out")
  if [ "$status" -eq 0 ]; then
    passed=$((passed + 1))
    echo "PASS $name: $summary"
    [ -n "${GOLDEN_VERBOSE:-}" ] && cat "$work/out"
  else
    failed=$((failed + 1))
    failed_names="$failed_names $name"
    echo "FAIL $name: $summary"
    grep -v ' ok$' "$work/out" | grep -v ' passed, ' | sed 's/^/    /'
    tail -n 3 "$work/err" | sed 's/^/    stderr: /'
  fi
}

meta_value() {
  sed -n "s/^$1: *//p" "$2" | head -n 1
}

# all_cases PREFIX: every case, named PREFIX/...
all_cases() {
prefix=$1
for dir in "$CREMA_TEST_DATA"/golden/layers/*/; do
  dir=${dir%/}
  name=$prefix/layers/$(basename "$dir")
  phase=$(meta_value phase "$dir/meta.txt" | tr 'A-Z' 'a-z')
  set -- --model "$dir/net.prototxt" --reference "$dir/blobs" --phase "${phase:-train}"
  [ -f "$dir/net.caffemodel" ] && set -- "$@" --weights "$dir/net.caffemodel"
  [ -d "$dir/params" ] && set -- "$@" --params "$dir/params"
  [ "$(meta_value backward "$dir/meta.txt")" = True ] && set -- "$@" --backward
  run_case "$name" "$@"
done

nets="$CREMA_TEST_DATA/nets"
run_case "$prefix/nets/vgg16_w8_v1" --model "$nets/vgg16_w8_v1/net.prototxt" \
  --weights "$nets/vgg16_w8_v1/legacy_v1.caffemodel" --reference "$nets/vgg16_w8_v1/blobs" \
  --phase test
run_case "$prefix/nets/lenet_real" --model "$nets/lenet_real/net.prototxt" \
  --weights "$nets/lenet_real/lenet_iter_10000.caffemodel" --reference "$nets/lenet_real/blobs" \
  --phase test
run_case "$prefix/nets/lesion_w8_train" --model "$nets/lesion_w8_train/net.prototxt" \
  --weights "$nets/lesion_w8_train/net.caffemodel" --reference "$nets/lesion_w8_train/blobs" \
  --params "$nets/lesion_w8_train/params" --phase train --backward
deploy_weights=$(head -n 1 "$nets/lesion_w8_deploy/WEIGHTS")
run_case "$prefix/nets/lesion_w8_deploy" --model "$nets/lesion_w8_deploy/net.prototxt" \
  --weights "$nets/lesion_w8_deploy/$deploy_weights" --reference "$nets/lesion_w8_deploy/blobs" \
  --phase test
}

for engine in ${GOLDEN_ENGINES:-auto gemm winograd direct depthwise}; do
  CREMA_CONV=$engine
  export CREMA_CONV
  all_cases "$engine"
done
unset CREMA_CONV
CREMA_SIMD=generic
export CREMA_SIMD
all_cases generic
unset CREMA_SIMD

echo "golden: $passed cases passed, $failed failed${failed_names:+ (}${failed_names# }${failed_names:+)}"
[ "$failed" -eq 0 ]
