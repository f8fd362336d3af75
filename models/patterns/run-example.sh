#!/bin/sh
# The README's similarity-retrieval example, end to end: synthetic labelled
# dermoscopy -> training the FIG. 9 network -> features -> retrieval
# measures and the HTML page of similar cases.  Run from the top of the
# source tree with crema on PATH (or CREMA=path/to/crema); it works in
# patterns/, which must not exist yet.
set -eu
crema=${CREMA:-crema}
mkdir patterns
"$crema" synth --labels --count 1200 --size 96 --seed 16 patterns/images
head -n 900 patterns/images/list.txt >patterns/train.txt
tail -n 300 patterns/images/list.txt >patterns/test.txt
"$crema" convert-imageset patterns/images/ patterns/train.txt patterns/train_lmdb
"$crema" convert-imageset patterns/images/ patterns/test.txt patterns/test_lmdb
"$crema" train --solver models/patterns/solver.prototxt \
  --weights models/lesion/bundled/lesion_w8_128.caffemodel
w=patterns/fig9_iter_900.caffemodel
net=models/patterns/train_val.prototxt
blobs=descriptor,bilinear_l2,trunk_gap,bil_reduce
"$crema" extract-features $w $net $blobs \
  patterns/q_desc,patterns/q_bil,patterns/q_gap,patterns/q_heat 15 lmdb --keep-source --count 300
"$crema" extract-features $w $net $blobs \
  patterns/db_desc,patterns/db_bil,patterns/db_gap,patterns/db_heat 45 lmdb --keep-source \
  --count 900 --stage database
for f in desc bil gap; do
  echo "== $f"
  "$crema" retrieve --features patterns/db_$f --queries patterns/q_$f --k 16 --eval --positive 0
done
"$crema" retrieve --features patterns/db_desc --queries patterns/q_desc --k 8 \
  --html patterns/similar.html --images patterns/images \
  --heat patterns/db_heat --query-heat patterns/q_heat --heat-pool bilinear --heat-offset 16 \
  --class-names MEL,NV,BCC,AKIEC,BKL,DF,VASC
