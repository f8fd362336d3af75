#!/bin/sh
# crema lesion-db and crema segment from the command line, with the bundled
# model: folders with corrupt and non-image files (reported, skipped, exit
# status 1, the rest processed), output names and sizes, usage errors.
set -u
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
models="$CREMA_TEST_DATA/../../models/lesion"

make_workdir lesion-cli
cd "$work" || exit 99

"$CREMA_BIN" segment --help >/dev/null || fail "segment --help"
"$CREMA_BIN" lesion-db --help >/dev/null || fail "lesion-db --help"

"$CREMA_BIN" synth --count 3 --size 80 --seed 3 imgs 2>/dev/null || fail "synth"
printf 'not a jpeg' >imgs/corrupt.jpg
printf 'notes\n' >imgs/notes.txt
head -c 300 imgs/ISIC_0000001.jpg >imgs/truncated.jpg

# segment: 3 images done, 3 files reported, status 1.
"$CREMA_BIN" segment --model "$models/bundled/deploy.prototxt" \
  --weights "$models/bundled/lesion_w8_128.caffemodel" --scales 1,1.5 --output out imgs \
  2>err
[ $? -eq 1 ] || fail "segment of a folder with bad files: expected exit status 1"
for f in corrupt.jpg notes.txt truncated.jpg; do
  grep -q "skipped imgs/$f" err || fail "segment did not report $f"
done
grep -q "3 images segmented at 128x128, 3 failed" err || fail "summary: $(tail -n 1 err)"
for id in ISIC_0000000 ISIC_0000001 ISIC_0000002; do
  for kind in segmentation border lesion overlay; do
    [ -s "out/${id}_$kind.png" ] || fail "missing out/${id}_$kind.png"
  done
done
# No outputs for the masks themselves, nor for the bad files.
[ ! -e out/ISIC_0000000_segmentation_segmentation.png ] || fail "a mask was segmented"
[ ! -e out/corrupt_segmentation.png ] || fail "output for a corrupt file"

# All good: status 0; explicit files work too.
"$CREMA_BIN" segment --model "$models/bundled/deploy.prototxt" \
  --weights "$models/bundled/lesion_w8_128.caffemodel" --size 64 --threshold 0.4 \
  --output out2 imgs/ISIC_0000002.jpg 2>err || fail "segment of one file: $(cat err)"
[ -s out2/ISIC_0000002_overlay.png ] || fail "missing out2/ISIC_0000002_overlay.png"

# Usage errors.
"$CREMA_BIN" segment imgs 2>err
[ $? -ne 0 ] && grep -q "^crema segment: --model and --weights are required" err ||
  fail "segment without a model: $(cat err)"
"$CREMA_BIN" segment --model "$models/bundled/deploy.prototxt" \
  --weights "$models/bundled/lesion_w8_128.caffemodel" --scales 1,zero imgs 2>err
[ $? -ne 0 ] && grep -q "^crema segment: scales" err || fail "bad scales: $(cat err)"
"$CREMA_BIN" segment --model "$models/bundled/deploy.prototxt" 2>err
[ $? -eq 2 ] || fail "segment without images: expected exit status 2"

# lesion-db: the bad files are not pairs (no mask): only the text file is
# ignored silently; corrupt.jpg and truncated.jpg lack masks and are reported.
"$CREMA_BIN" lesion-db --size 32 --val-fraction 0.34 --augment 1 imgs db 2>err
[ $? -eq 1 ] || fail "lesion-db with images lacking masks: expected exit status 1"
grep -q "3 images: 2 for training (4 records), 1 for validation (1 records)" err ||
  fail "lesion-db summary: $(cat err)"
for d in images_lmdb labels_lmdb val_images_lmdb val_labels_lmdb; do
  [ -d "db/$d" ] || fail "missing db/$d"
done
[ "$(wc -l <db/train.txt)" -eq 2 ] && [ "$(wc -l <db/val.txt)" -eq 1 ] || fail "id lists"
rm -f imgs/corrupt.jpg imgs/truncated.jpg
"$CREMA_BIN" lesion-db --size 32 imgs db 2>err
[ $? -eq 1 ] && grep -q "^crema lesion-db: .*exists" err || fail "lesion-db over a db: $(cat err)"
"$CREMA_BIN" lesion-db imgs db3 2>err
[ $? -eq 2 ] || fail "lesion-db without --size: expected exit status 2"

finish
