#!/bin/sh
# crema retrieve with queries given as images run through a net (--net):
# each image's neighbours and scores are those of its own feature record
# from extract-features (a Data-layer net over convert-imageset's
# database, and a deploy net with an Input layer); directory, list and
# file forms; --exclude-self by image name; --eval with the list's labels;
# heat maps from --heat-blob; usage errors.
set -u
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"

make_workdir retrieve-images
cd "$work" || exit 99

synth_image_db --resize_width 32 --resize_height 32
cat >net.prototxt <<'NET'
name: "feat"
layer { name: "data" type: "Data" top: "data" top: "label"
  transform_param { scale: 0.00390625 mean_value: 100 mean_value: 110 mean_value: 120 }
  data_param { source: "db" batch_size: 4 backend: LMDB } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 8 kernel_size: 3 stride: 2 weight_filler { type: "xavier" } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "gap" type: "Pooling" bottom: "conv" top: "gap"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "sil" type: "Silence" bottom: "label" }
NET
# The deploy form: an Input layer of the database's image size, carrying
# the same transform_param.
sed -e 's/type: "Data"/type: "Input"/' -e 's/ top: "label"//' \
  -e 's/data_param {[^}]*}/input_param { shape { dim: 1 dim: 3 dim: 32 dim: 32 } }/' \
  -e '/"sil"/d' net.prototxt >deploy.prototxt
"$CREMA_BIN" init --model net.prototxt --output w.caffemodel 2>/dev/null || fail "init"
"$CREMA_BIN" extract-features w.caffemodel net.prototxt gap,conv feats,spatial 2 lmdb \
  --keep-source 2>/dev/null || fail "extract-features"

# The same listing minus the query column (record keys vs image names).
same_results() {
  cut -f 2- "$1" >a.cut
  cut -f 2- "$2" >b.cut
  cmp -s a.cut b.cut || { fail "$3: results differ"; diff a.cut b.cut | head -n 5 >&2; }
}

"$CREMA_BIN" retrieve --features feats --queries feats --k 4 --tsv rec.tsv ||
  fail "retrieve records"
img="--features feats --net net.prototxt --weights w.caffemodel --blob gap"
# shellcheck disable=SC2086
expect_status 0 "list of images" "$CREMA_BIN" retrieve $img --query-images imgs \
  --query-list list.txt --resize-width 32 --resize-height 32 --k 4 --tsv list.tsv
grep -q "Ran 8 query images through net.prototxt" "$work/err" || fail "log: $(cat "$work/err")"
same_results rec.tsv list.tsv "--query-list"
[ "$(sed -n 2p list.tsv | cut -f 1)" = ISIC_0000000.jpg ] || fail "query key: $(sed -n 2p list.tsv)"
# A directory (its images in name order; the masks are not queries).
# shellcheck disable=SC2086
expect_status 0 "directory" "$CREMA_BIN" retrieve $img --query-images imgs \
  --resize-width 32 --resize-height 32 --k 4 --tsv dir.tsv
same_results rec.tsv dir.tsv "directory"
# Files, the first after --query-images and the rest as arguments.
# shellcheck disable=SC2086
expect_status 0 "files" "$CREMA_BIN" retrieve $img --query-images imgs/ISIC_0000002.jpg \
  imgs/ISIC_0000003.jpg --resize-width 32 --resize-height 32 --k 4 --tsv files.tsv
grep -E '^0000000002_|^0000000003_' rec.tsv >rec23.tsv
tail -n +2 files.tsv >files23.tsv
same_results rec23.tsv files23.tsv "files"
# The deploy net resizes to its Input's 32 x 32 by itself.
expect_status 0 "deploy net" "$CREMA_BIN" retrieve --features feats --net deploy.prototxt \
  --weights w.caffemodel --blob gap --query-images imgs --k 4 --tsv deploy.tsv
same_results rec.tsv deploy.tsv "deploy net (Input layer)"

# --exclude-self skips the database record of the same image.
"$CREMA_BIN" retrieve --features feats --queries feats --k 3 --exclude-self --tsv recx.tsv ||
  fail "retrieve --exclude-self"
# shellcheck disable=SC2086
expect_status 0 "exclude self" "$CREMA_BIN" retrieve $img --query-images imgs \
  --query-list list.txt --resize-width 32 --resize-height 32 --k 3 --exclude-self \
  --tsv imgx.tsv
same_results recx.tsv imgx.tsv "--exclude-self"

# --eval with the list's labels: the measures of the records.
"$CREMA_BIN" retrieve --features feats --queries feats --k 3 --exclude-self --eval \
  --positive 1 >rec.eval || fail "retrieve --eval"
# shellcheck disable=SC2086
expect_status 0 "eval" "$CREMA_BIN" retrieve $img --query-images imgs --query-list list.txt \
  --resize-width 32 --resize-height 32 --k 3 --exclude-self --eval --positive 1
cmp -s rec.eval "$work/out" || fail "--eval: $(cat "$work/out") vs $(cat rec.eval)"

# Heat maps: the queries' spatial features from --heat-blob.
# shellcheck disable=SC2086
expect_status 0 "html" "$CREMA_BIN" retrieve $img --query-images imgs --query-list list.txt \
  --resize-width 32 --resize-height 32 --k 3 --exclude-self --html page.html --images imgs \
  --heat spatial --heat-blob conv
[ "$(grep -o 'class="heat"' page.html | wc -l)" -eq 32 ] || fail "heat maps: 8 x (1 + 3) wanted"
[ "$(grep -o 'class="thumb"' page.html | wc -l)" -eq 32 ] || fail "thumbnails"

# Usage errors.
# shellcheck disable=SC2086
expect_status 1 "no blob" "$CREMA_BIN" retrieve --features feats --net net.prototxt \
  --query-images imgs
expect_one_line_error retrieve "--blob"
expect_status 1 "both" "$CREMA_BIN" retrieve --features feats --queries feats \
  --net net.prototxt --blob gap --query-images imgs
expect_one_line_error retrieve "either --queries"
# shellcheck disable=SC2086
expect_status 1 "unknown blob" "$CREMA_BIN" retrieve --features feats --net net.prototxt \
  --weights w.caffemodel --blob nope --query-images imgs --resize-width 32 --resize-height 32
expect_one_line_error retrieve "no blob named 'nope'"
# shellcheck disable=SC2086
expect_status 1 "sizes differ" "$CREMA_BIN" retrieve $img --query-images imgs --blob conv
expect_one_line_error retrieve "values per record"
# shellcheck disable=SC2086
expect_status 1 "heat without heat-blob" "$CREMA_BIN" retrieve $img --query-images imgs \
  --resize-width 32 --resize-height 32 --heat spatial
expect_one_line_error retrieve "--heat-blob"
printf 'ISIC_0000000.jpg x\n' >bad.txt
# shellcheck disable=SC2086
expect_status 1 "bad list" "$CREMA_BIN" retrieve $img --query-images imgs --query-list bad.txt
expect_one_line_error retrieve "bad.txt:1: expected 'NAME LABEL'"
# shellcheck disable=SC2086
expect_status 1 "missing image" "$CREMA_BIN" retrieve $img --query-images imgs/none.jpg \
  --resize-width 32 --resize-height 32
expect_one_line_error retrieve "none.jpg"
finish
