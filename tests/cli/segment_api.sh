#!/bin/sh
# The library segments an image by itself (crema.h's crema_segment_*): a
# small C program linked with libcrema alone gets, from a file and from a
# pixel buffer, the mask `crema segment` writes, pixel for pixel; and the
# preprocessing follows a transform_param on the model's input layer.
set -u
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
models="$CREMA_TEST_DATA/../../models/lesion"
example="$(dirname "$CREMA_BIN")/tests/cli/segment_example"
deploy="$models/bundled/deploy.prototxt"
weights="$models/bundled/lesion_w8_128.caffemodel"

make_workdir segment-api
cd "$work" || exit 99

"$CREMA_BIN" synth --count 2 --size 150 --seed 11 imgs 2>/dev/null || fail "synth"
mv imgs/ISIC_0000001.jpg imgs/second.jpg
"$CREMA_BIN" segment --model "$deploy" --weights "$weights" --output seg imgs 2>err ||
  fail "segment: $(cat err)"
for id in ISIC_0000000 second; do
  expect_status 0 "example on $id" "$example" "$deploy" "$weights" "imgs/$id.jpg" \
    "seg/${id}_segmentation.png"
  grep -q "^150x150 at 128: [0-9]* lesion pixels$" "$work/out" || fail "example: $(cat "$work/out")"
  grep -q "^pixels: same$" "$work/out" || fail "file and pixel buffer differ: $(cat "$work/out")"
  grep -q "^differ from seg/${id}_segmentation.png: 0$" "$work/out" ||
    fail "the library's mask is not crema segment's: $(cat "$work/out")"
done
grep -q " 0 lesion pixels" "$work/out" && fail "nothing segmented: $(cat "$work/out")"

# The model's own preprocessing: a transform_param on the input layer
# whose mean_value and scale equal VGG's defaults gives the same mask; a
# scale of 0 (every input 0) gives another.
awk '{print} /^  type: "Input"/ && !done {print "  transform_param { mean_value: 104.00699 mean_value: 116.66877 mean_value: 122.67892 scale: 1 }"; done=1}' \
  "$deploy" >same.prototxt
grep -q transform_param same.prototxt || fail "no Input layer in $deploy"
expect_status 0 "same preprocessing" "$example" same.prototxt "$weights" imgs/ISIC_0000000.jpg \
  seg/ISIC_0000000_segmentation.png
grep -q "^differ from seg/ISIC_0000000_segmentation.png: 0$" "$work/out" ||
  fail "transform_param with VGG's means: $(cat "$work/out")"
sed 's/scale: 1 }/scale: 0 }/' same.prototxt >zero.prototxt
expect_status 0 "scale 0" "$example" zero.prototxt "$weights" imgs/ISIC_0000000.jpg \
  seg/ISIC_0000000_segmentation.png
grep -q "^differ from seg/ISIC_0000000_segmentation.png: 0$" "$work/out" &&
  fail "the model's transform_param scale was not applied"

# Errors are returned, not printed by the library or fatal.
expect_status 1 "missing image" "$example" "$deploy" "$weights" nothere.jpg
grep -q "^segment_example: .*nothere.jpg" "$work/err" || fail "error: $(cat "$work/err")"

finish
