#!/bin/sh
# crema synth and crema evaluate: determinism of synthetic sets, the ISIC
# metrics table and CSV, missing and unreadable predictions, stray files,
# and one-line errors.
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"

# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir cli-evaluate

# --- help and usage ---
for cmd in synth evaluate; do
  expect_status 0 "$cmd --help" "$CREMA_BIN" "$cmd" --help
  grep -q "usage: crema $cmd" "$work/out" || fail "$cmd --help prints no usage"
done
expect_status 2 "synth without OUTDIR" "$CREMA_BIN" synth --count 2
expect_status 2 "evaluate without --pred" "$CREMA_BIN" evaluate --truth "$work"
expect_status 1 "synth --count 0" "$CREMA_BIN" synth --count 0 "$work/x"
expect_one_line_error synth "--count"
expect_status 1 "synth --size 5" "$CREMA_BIN" synth --count 1 --size 5 "$work/x"
expect_one_line_error synth "--size"
expect_status 1 "synth --format gif" "$CREMA_BIN" synth --count 1 --format gif "$work/x"
expect_one_line_error synth "jpg or png"

# --- synth: ISIC names, bit-identical reruns ---
expect_status 0 "synth a" "$CREMA_BIN" synth --count 6 --size 64 --seed 3 "$work/a"
expect_status 0 "synth b" "$CREMA_BIN" synth --count 6 --size 64 --seed 3 "$work/b"
for i in 0 1 2 3 4 5; do
  for f in "ISIC_000000$i.jpg" "ISIC_000000${i}_segmentation.png"; do
    [ -f "$work/a/$f" ] || fail "synth wrote no $f"
    cmp -s "$work/a/$f" "$work/b/$f" || fail "$f differs between two runs with one seed"
  done
done
[ "$(ls "$work/a" | wc -l)" -eq 12 ] || fail "synth wrote other files: $(ls "$work/a")"
expect_status 0 "synth png" "$CREMA_BIN" synth --count 1 --size 32 --format png --first 42 \
  "$work/p"
[ -f "$work/p/ISIC_0000042.png" ] && [ -f "$work/p/ISIC_0000042_segmentation.png" ] ||
  fail "synth --format png --first 42 wrote $(ls "$work/p")"

# --- evaluate: a perfect prediction ---
mkdir "$work/pred"
cp "$work/a/"*_segmentation.png "$work/pred/"
expect_status 0 "evaluate perfect" "$CREMA_BIN" evaluate --truth "$work/a" --pred "$work/pred" \
  --csv "$work/perfect.csv"
head -n 1 "$work/out" | grep -q "jaccard.*dice.*accuracy.*sensitivity.*specificity.*thr_jaccard" ||
  fail "no table header: $(head -n 1 "$work/out")"
[ "$(grep -c '^ISIC_' "$work/out")" -eq 6 ] || fail "expected 6 image rows: $(cat "$work/out")"
grep -q '^mean (6) *1.0000 *1.0000 *1.0000 *1.0000 *1.0000 *1.0000$' "$work/out" ||
  fail "perfect mean row: $(grep mean "$work/out")"
[ "$(wc -l <"$work/perfect.csv")" -eq 8 ] || fail "CSV has $(wc -l <"$work/perfect.csv") lines"
grep -q '^mean,1.000000,1.000000,1.000000,1.000000,1.000000,1.000000,6 images$' \
  "$work/perfect.csv" || fail "CSV mean row: $(tail -n 1 "$work/perfect.csv")"
# The images beside the masks are skipped without a message.
grep -q "skipped" "$work/err" && fail "images reported as skipped: $(cat "$work/err")"

# --- evaluate: one prediction missing, one of the wrong size, a stray file ---
rm "$work/pred/ISIC_0000002_segmentation.png"
cp "$work/p/ISIC_0000042_segmentation.png" "$work/pred/ISIC_0000004_segmentation.png"
echo "notes" >"$work/a/README.txt"
expect_status 1 "evaluate with problems" "$CREMA_BIN" evaluate --truth "$work/a" \
  --pred "$work/pred" --csv "$work/problems.csv"
grep -q "^ISIC_0000002 *missing prediction" "$work/out" || fail "missing row: $(cat "$work/out")"
grep -q "^missing predictions (1): ISIC_0000002$" "$work/out" || fail "no missing list"
grep -q "^failed prediction ISIC_0000004: .*32x32.*64x64" "$work/out" ||
  fail "no size mismatch report: $(cat "$work/out")"
grep -q "^failed prediction ISIC_0000004: .*pred/ISIC_0000004_segmentation.png: size mismatch: .*32x32.*64x64" \
  "$work/out" || fail "size mismatch not named with the file: $(grep failed "$work/out")"
grep -q "^ISIC_0000004 *size mismatch (scored 0)" "$work/out" || fail "no size mismatch row"
grep -q '^mean (6) *0.6667 ' "$work/out" || fail "mean row: $(grep mean "$work/out")"
grep -q "skipped 'README.txt'" "$work/err" || fail "README.txt not reported: $(cat "$work/err")"
grep -q '^ISIC_0000002,0.000000,.*,missing$' "$work/problems.csv" || fail "CSV missing row"
grep -q '^ISIC_0000004,0.000000,.*,failed$' "$work/problems.csv" || fail "CSV failed row"

# --- evaluate --only-predicted: the missing prediction left out, the failed one kept ---
expect_status 1 "evaluate --only-predicted" "$CREMA_BIN" evaluate --truth "$work/a" \
  --pred "$work/pred" --only-predicted
grep -q '^mean (5) *0.8000 ' "$work/out" || fail "only-predicted mean: $(grep mean "$work/out")"
grep -q "ISIC_0000002" "$work/out" && fail "left-out image listed: $(cat "$work/out")"
grep -q "1 truth mask without a prediction left out" "$work/err" ||
  fail "left-out count not said: $(cat "$work/err")"
rm "$work/pred/ISIC_0000004_segmentation.png"
expect_status 0 "evaluate --only-predicted, all present scored" "$CREMA_BIN" evaluate \
  --truth "$work/a" --pred "$work/pred" --only-predicted
grep -q '^mean (4) *1.0000 ' "$work/out" || fail "only-predicted mean: $(grep mean "$work/out")"
mkdir "$work/nopred"
expect_status 1 "evaluate --only-predicted, no prediction" "$CREMA_BIN" evaluate \
  --truth "$work/a" --pred "$work/nopred" --only-predicted
expect_one_line_error evaluate "no prediction in"

# --- evaluate: folders that are not there, or hold no masks ---
expect_status 1 "evaluate no truth folder" "$CREMA_BIN" evaluate --truth "$work/none" \
  --pred "$work/pred"
expect_one_line_error evaluate "none"
mkdir "$work/empty"
expect_status 1 "evaluate no masks" "$CREMA_BIN" evaluate --truth "$work/empty" \
  --pred "$work/pred"
expect_one_line_error evaluate "no ground-truth masks"

finish
