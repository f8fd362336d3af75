#!/bin/sh
# Hostile sizes are refused with a message before anything is allocated,
# within the memory cap (core/memcap.h: CREMA_MAX_MEMORY, physical memory,
# ulimit -v/-d), never by the kernel's OOM killer: blob shapes whose
# product overflows or that exceed the cap, images claiming 60000x60000 or
# more memory than the cap, a deeply nested prototxt, an oversized record.
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir resource-limits
cd "$work" || exit 99
limits="$CREMA_TEST_DATA/limits"

# expect_refusal WHAT NEEDLE: the last command ($work/err) failed cleanly
# (status 1, not a signal) with NEEDLE on its error line.
input_net() { # NAME TOPS DIMS...
  name=$1 tops=$2
  shift 2
  {
    printf 'name: "%s"\nlayer { name: "in" type: "Input"' "$name"
    for t in $tops; do printf ' top: "%s"' "$t"; done
    printf ' input_param { shape {'
    for d in "$@"; do printf ' dim: %s' "$d"; done
    printf ' } } }\n'
  } >"$name.prototxt"
}

# A shape whose element count overflows.
input_net overflow x 100000 100000 100000
expect_status 1 "a net with an overflowing shape" \
  "$CREMA_BIN" time --model overflow.prototxt --iterations 1
expect_one_line_error time "blob 'x': element count exceeds"

# A shape that fits an int but exceeds the cap: 4 GB against 1 GiB.
input_net big x 1 1000 1000 1000
CREMA_MAX_MEMORY=1G expect_status 1 "a 4 GB blob over a 1 GiB cap" \
  "$CREMA_BIN" time --model big.prototxt --iterations 1
expect_one_line_error time "blob 'x' (1000000000 values) needs 3814.7 MiB, more than the memory cap of 1024.0 MiB"

# Under ulimit -v (not with AddressSanitizer, which reserves terabytes of
# address space): the cap follows the limit, and blobs that each fit but
# together do not are refused once the address space is used up.
if ! ldd "$CREMA_BIN" 2>/dev/null | grep -q libasan; then
  (ulimit -v 1000000 && "$CREMA_BIN" time --model big.prototxt --iterations 1) 2>err
  [ $? -eq 1 ] && tail -n 1 err | grep -q "needs 3814.7 MiB, more than the memory cap of 976.6 MiB" ||
    fail "a 4 GB blob under ulimit -v 1000000: $(tail -n 1 err)"
  input_net many "a b c d e f" 1 64 1000 1000
  (ulimit -v 1200000 && "$CREMA_BIN" time --model many.prototxt --iterations 1) 2>err
  [ $? -eq 1 ] && tail -n 1 err | grep -q "needs 244.1 MiB, more than the .* MiB of memory available" ||
    fail "six 244 MiB blobs under ulimit -v 1200000: $(tail -n 1 err)"
fi

# Images whose headers claim 60000x60000 (over the pixel limit) and
# 16000x16000 (1 GB decoded, over a 512 MiB cap): refused from the header.
printf 'huge_60000.jpg 0\nhuge_60000.png 0\nbig_16000.jpg 0\nbig_16000.png 0\n' >huge.txt
CREMA_MAX_MEMORY=512M expect_status 1 "images claiming huge sizes" \
  "$CREMA_BIN" convert-imageset "$limits/" huge.txt hugedb
for f in huge_60000.jpg huge_60000.png; do
  grep -q "$f: image of 60000x60000 pixels exceeds the limit" err || fail "$f not refused: $(cat err)"
done
for f in big_16000.jpg big_16000.png; do
  grep -q "$f: a 16000x16000 image needs 976.6 MiB, more than the memory cap of 512.0 MiB" err ||
    fail "$f not refused: $(cat err)"
done

# Prototxt nested 100000 levels deep: caffe.proto has no recursive
# message, so the schema stops it at once (the parser's own depth limit,
# for any schema, is tested in check_text); no recursion runs away.
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "layer { "; print "" }' >deep.prototxt
expect_status 1 "a deeply nested prototxt" "$CREMA_BIN" time --model deep.prototxt --iterations 1
expect_one_line_error time "deep.prototxt:1:"
awk 'BEGIN { printf "layer { name: \"a\" type: \"Input\" top: \"x\" input_param { shape { dim: 1 } } }\n";
  for (i = 0; i < 100000; i++) printf "include { "; print "" }' >deep2.prototxt
expect_status 1 "a deeply nested prototxt" "$CREMA_BIN" time --model deep2.prototxt --iterations 1
expect_one_line_error time "deep2.prototxt:2:"

# A record larger than the cap (3 MB against 1 MiB): refused before it is
# unpacked, naming the database and the key.
"$CREMA_BIN" synth --count 1 --size 1024 --seed 9 imgs 2>/dev/null || fail "synth"
echo "ISIC_0000000.jpg 1" >one.txt
"$CREMA_BIN" convert-imageset imgs/ one.txt bigdb 2>/dev/null || fail "convert-imageset"
CREMA_MAX_MEMORY=1M expect_status 1 "a 3 MB record over a 1 MiB cap" \
  "$CREMA_BIN" compute-image-mean bigdb mean.binaryproto
tail -n 1 err | grep -q "bigdb.*00000000_ISIC_0000000.jpg.*a record needs 3.0 MiB, more than the memory cap of 1.0 MiB" ||
  fail "oversized record: $(tail -n 1 err)"

finish
