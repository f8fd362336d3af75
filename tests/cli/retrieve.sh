#!/bin/sh
# crema extract-features and crema retrieve from the command line: Caffe's
# argument order and database layout, the TSV listing, --exclude-self,
# --eval, the HTML page, and usage errors.  The page is opened in a browser
# by retrieve_html.sh.
set -u
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"

make_workdir retrieve
cd "$work" || exit 99

# retrieve_fixture: 8 synthetic images labelled 0/1, their LMDB, a small
# net with random weights, and its features (global and spatial).
retrieve_fixture() {
  synth_image_db --resize_width 32 --resize_height 32
  cat >net.prototxt <<'NET'
name: "feat"
layer { name: "data" type: "Data" top: "data" top: "label"
  transform_param { scale: 0.00390625 }
  data_param { source: "db" batch_size: 4 backend: LMDB } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 8 kernel_size: 3 stride: 2 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "gap" type: "Pooling" bottom: "conv" top: "gap"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "bil" type: "Bilinear" bottom: "conv" bottom: "conv" top: "bil" }
layer { name: "bil_sqrt" type: "SignedSqrt" bottom: "bil" top: "bil_sqrt" }
layer { name: "bil_l2" type: "L2Normalize" bottom: "bil_sqrt" top: "bil_l2" }
layer { name: "both" type: "Concat" bottom: "gap" bottom: "bil_l2" top: "both" }
layer { name: "sil" type: "Silence" bottom: "label" }
NET
  "$CREMA_BIN" init --model net.prototxt --output w.caffemodel 2>/dev/null || fail "init"
  "$CREMA_BIN" extract-features w.caffemodel net.prototxt gap,conv,bil_l2,both \
    feats,spatial,bil,both 2 lmdb --keep-source 2>err || { fail "extract-features"; cat err >&2; }
}
retrieve_fixture
[ -f feats/data.mdb ] && [ -f spatial/data.mdb ] || fail "feature databases missing"
grep -q "Extracted features of 8 query images for feature blob gap" err ||
  fail "extract-features log: $(cat err)"
ls -d feats.tmp-* spatial.tmp-* >/dev/null 2>&1 && fail "temporary databases left"

# Caffe's argument checks.
expect_status 1 "existing database" "$CREMA_BIN" extract-features w.caffemodel net.prototxt \
  gap feats 1 lmdb
expect_one_line_error extract-features "already exists"
expect_status 1 "leveldb" "$CREMA_BIN" extract-features w.caffemodel net.prototxt gap x 1 leveldb
expect_one_line_error extract-features "lmdb only"
expect_status 1 "GPU" "$CREMA_BIN" extract-features w.caffemodel net.prototxt gap x 1 lmdb GPU
expect_one_line_error extract-features "CPU only"
expect_status 1 "blob and db counts" "$CREMA_BIN" extract-features w.caffemodel net.prototxt \
  gap,conv x 1 lmdb
expect_one_line_error extract-features "one database per blob"
expect_status 1 "unknown blob" "$CREMA_BIN" extract-features w.caffemodel net.prototxt nope x 1 lmdb
expect_one_line_error extract-features "no blob named 'nope'"
[ ! -e x ] || fail "a failed extraction left its database"
expect_status 1 "too few arguments" "$CREMA_BIN" extract-features w.caffemodel net.prototxt gap
expect_one_line_error extract-features "expected 6 to 8 arguments"
expect_status 0 "exact count" "$CREMA_BIN" extract-features w.caffemodel net.prototxt gap five \
  9 lmdb --count 5

# The listing: header + 8 queries x 3, never the query itself.
expect_status 0 "retrieve" "$CREMA_BIN" retrieve --features feats --queries feats --k 3 \
  --exclude-self
[ "$(wc -l <"$work/out")" -eq 25 ] || fail "TSV lines: $(wc -l <"$work/out")"
head -n 1 "$work/out" | grep -q "^query	rank	key	score	label$" || fail "TSV header"
awk -F'\t' 'NR > 1 && $1 == $3 { bad = 1 } END { exit bad }' "$work/out" ||
  fail "--exclude-self returned a query itself"
# Without --exclude-self each query finds itself first, at cosine 1.
"$CREMA_BIN" retrieve --features feats --queries feats --k 2 --metric l2 >l2.tsv ||
  fail "retrieve --metric l2"
awk -F'\t' 'NR > 1 && $2 == 1 && ($1 != $3 || $4 != 0) { bad = 1 } END { exit bad }' l2.tsv ||
  fail "l2: a query is not its own nearest at distance 0"
# A subset of the database as queries (extract-features --count 5).
expect_status 0 "five queries" "$CREMA_BIN" retrieve --features feats --queries five --k 1 \
  --tsv five.tsv
[ "$(wc -l <five.tsv)" -eq 6 ] || fail "five queries: $(wc -l <five.tsv) lines"

expect_status 0 "eval" "$CREMA_BIN" retrieve --features feats --queries feats --k 3 \
  --exclude-self --eval --positive 1
for m in "P@1 " "P@3 " "mAP " "3-NN vote accuracy " "AUC (malignant: 1; 4 positive, 4 negative"; do
  grep -q "^$m" "$work/out" || fail "--eval lacks '$m'"
done

expect_status 0 "html" "$CREMA_BIN" retrieve --features feats --queries feats --k 3 \
  --exclude-self --eval --html page.html --images imgs --heat spatial --query-heat spatial \
  --class-names benign,malignant
grep -q 'data:image/png;base64,' page.html || fail "no embedded image"
grep -q 'malignant' page.html || fail "no diagnosis in the page"
[ "$(grep -o 'class="heat"' page.html | wc -l)" -eq 32 ] || fail "heat maps: 8 x (1 + 3) wanted"

# The heat maps add up to the scores: each neighbour's map sum (printed
# under its cosine) against the cosine, for descriptors that are all
# pooled features (global average; bilinear, signed sqrt, L2), and a part
# of it for the concatenation (the bilinear part at offset 8).
heat_sums() { # PAGE MODE: MODE "all" (sum = score) or "part" (0 < sum < score)
  /usr/bin/python3 - "$1" "$2" <<'PY'
import re, sys
page = open(sys.argv[1]).read()
pairs = re.findall(r'class="score">([-0-9.e]+)</span><br>map sum <span class="heatsum">'
                   r'([-0-9.e]+)<', page)
assert len(pairs) == 24, len(pairs)
for score, total in ((float(a), float(b)) for a, b in pairs):
    if sys.argv[2] == "all":
        assert abs(score - total) < 1e-4, (score, total)
    else:
        assert 0 < total < score + 1e-6, (score, total)
PY
}
heat_sums page.html all || fail "average: the maps do not add up to the scores"
expect_status 0 "html bilinear" "$CREMA_BIN" retrieve --features bil --queries bil --k 3 \
  --exclude-self --html bil.html --images imgs --heat spatial --query-heat spatial
heat_sums bil.html all || fail "bilinear: the maps do not add up to the scores"
expect_status 0 "html concat" "$CREMA_BIN" retrieve --features both --queries both --k 3 \
  --exclude-self --html both.html --images imgs --heat spatial --query-heat spatial \
  --heat-pool bilinear --heat-offset 8
heat_sums both.html part || fail "concatenation: the maps are not a part of the scores"
expect_status 1 "which part" "$CREMA_BIN" retrieve --features both --queries both \
  --html x.html --heat spatial --query-heat spatial
expect_one_line_error retrieve "--heat-pool and --heat-offset"
expect_status 1 "offset needed" "$CREMA_BIN" retrieve --features both --queries both \
  --html x.html --heat spatial --query-heat spatial --heat-pool bilinear
expect_one_line_error retrieve "give --heat-offset"
expect_status 1 "offset too far" "$CREMA_BIN" retrieve --features both --queries both \
  --html x.html --heat spatial --query-heat spatial --heat-pool bilinear --heat-offset 9
expect_one_line_error retrieve "end past"

# Usage errors.
expect_status 1 "no queries" "$CREMA_BIN" retrieve --features feats
expect_one_line_error retrieve "--queries"
expect_status 1 "dimensions" "$CREMA_BIN" retrieve --features feats --queries spatial
expect_one_line_error retrieve "values per record"
expect_status 1 "metric" "$CREMA_BIN" retrieve --features feats --queries feats --metric dot
expect_one_line_error retrieve "cosine or l2"
expect_status 1 "heat alone" "$CREMA_BIN" retrieve --features feats --queries feats --heat spatial
expect_one_line_error retrieve "--query-heat"
expect_status 1 "not a database" "$CREMA_BIN" retrieve --features imgs --queries feats
finish
