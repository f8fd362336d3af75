#!/bin/sh
# crema retrieve --masks: descriptors pooled inside each image's mask.
# White masks give the descriptors of the whole images (the same
# neighbours), the lesion masks other descriptors whose heat maps still
# add up to the scores; empty masks fall back to the whole image; errors.
set -u
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
python=/usr/bin/python3
"$python" -c 'import cv2' 2>/dev/null || { echo "python3-opencv missing: skipped"; exit 77; }

make_workdir retrieve-masks
cd "$work" || exit 99
synth_image_db
cat >net.prototxt <<'NET'
layer { name: "data" type: "Data" top: "data" top: "label"
  transform_param { scale: 0.00390625 } data_param { source: "db" batch_size: 4 backend: LMDB } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 6 kernel_size: 3 stride: 2 weight_filler { type: "xavier" } } }
layer { name: "gap" type: "Pooling" bottom: "conv" top: "gap"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "bil" type: "Bilinear" bottom: "conv" bottom: "conv" top: "bil" }
layer { name: "bil_sqrt" type: "SignedSqrt" bottom: "bil" top: "bil_sqrt" }
layer { name: "bil_l2" type: "L2Normalize" bottom: "bil_sqrt" top: "bil_l2" }
layer { name: "both" type: "Concat" bottom: "gap" bottom: "bil_l2" top: "both" }
layer { name: "sil" type: "Silence" bottom: "label" }
NET
"$CREMA_BIN" init --model net.prototxt --output w.caffemodel 2>/dev/null || fail "init"
"$CREMA_BIN" extract-features w.caffemodel net.prototxt gap,bil_l2,both,conv \
  gap,bil,both,conv 2 lmdb --keep-source 2>/dev/null || fail "extract-features"
# White masks (the whole image), black ones (no lesion found).
mkdir white black
"$python" - <<'PY' || fail "masks"
import cv2, numpy as np
for i in range(8):
    cv2.imwrite("white/ISIC_%07d_segmentation.png" % i, np.full((48, 48), 255, np.uint8))
    cv2.imwrite("black/ISIC_%07d_segmentation.png" % i, np.zeros((20, 30), np.uint8))
PY

r="--queries" # each database as its own queries
for d in gap bil both; do
  extra=""
  [ $d = both ] && extra="--heat-pool bilinear --heat-offset 6"
  # shellcheck disable=SC2086
  "$CREMA_BIN" retrieve --features $d $r $d --k 7 --exclude-self --tsv plain_$d.tsv ||
    fail "$d: retrieve"
  # shellcheck disable=SC2086
  expect_status 0 "$d white masks" "$CREMA_BIN" retrieve --features $d $r $d --k 7 \
    --exclude-self --heat conv --query-heat conv $extra --masks white --tsv white_$d.tsv
  grep -q "inside the masks (0 database and 0 query masks empty" "$work/err" ||
    fail "$d: log $(tail -n 1 "$work/err")"
  cut -f 1-3,5 plain_$d.tsv >a.cut
  cut -f 1-3,5 white_$d.tsv >b.cut
  cmp -s a.cut b.cut || fail "$d: white masks changed the neighbours"
  # shellcheck disable=SC2086
  expect_status 0 "$d black masks" "$CREMA_BIN" retrieve --features $d $r $d --k 7 \
    --exclude-self --heat conv --query-heat conv $extra --masks black --tsv black_$d.tsv
  grep -q "(8 database and 8 query masks empty: whole images)" "$work/err" ||
    fail "$d: black masks: $(tail -n 1 "$work/err")"
  cut -f 1-3,5 black_$d.tsv >b.cut
  cmp -s a.cut b.cut || fail "$d: empty masks are not the whole image"
  # The lesion masks: other descriptors; the maps still add up to them.
  # shellcheck disable=SC2086
  expect_status 0 "$d lesion masks" "$CREMA_BIN" retrieve --features $d $r $d --k 3 \
    --exclude-self --heat conv --query-heat conv $extra --masks imgs --tsv lesion_$d.tsv \
    --html lesion_$d.html
  cmp -s plain_$d.tsv lesion_$d.tsv && fail "$d: the lesion masks changed nothing"
  [ $d = both ] && continue
  "$python" - lesion_$d.html <<'PY' || fail "$d: masked maps do not add up to the scores"
import re, sys
page = open(sys.argv[1]).read()
pairs = re.findall(r'class="score">([-0-9.e]+)</span><br>map sum <span class="heatsum">'
                   r'([-0-9.e]+)<', page)
assert len(pairs) == 24, len(pairs)
assert all(abs(float(a) - float(b)) < 1e-4 for a, b in pairs), pairs
PY
done

expect_status 1 "masks without heat" "$CREMA_BIN" retrieve --features bil --queries bil \
  --masks imgs
expect_one_line_error retrieve "--heat"
expect_status 1 "missing mask" "$CREMA_BIN" retrieve --features bil --queries bil \
  --heat conv --query-heat conv --masks imgs --mask-suffix _lesion.png
expect_one_line_error retrieve "ISIC_0000000_lesion.png"
finish
