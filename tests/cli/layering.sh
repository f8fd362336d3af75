#!/bin/sh
# tools/check-layering passes on src/ and catches what it is for: an
# upward include and an include cycle, on a copy of src/ with one of each.
. "$srcdir/tests/cli/testlib.sh"
make_workdir layering
check="$srcdir/tools/check-layering"
expect_status 0 "the source tree" sh "$check" "$srcdir"
cat "$work/out"

mkdir -p "$work/tree"
cp -R "$srcdir/src" "$work/tree/src"
printf '#include "graph/net.h"\n' >> "$work/tree/src/core/blob.c"
expect_status 1 "core including graph" sh "$check" "$work/tree"
grep -q 'core/blob.c includes graph/net.h' "$work/out" || fail "upward include not reported"

rm -rf "$work/tree/src" && cp -R "$srcdir/src" "$work/tree/src"
printf '#include "io/binary.h"\n' >> "$work/tree/src/io/file.h"
printf '#include "io/file.h"\n' >> "$work/tree/src/io/binary.c"
expect_status 1 "io/file and io/binary including each other" sh "$check" "$work/tree"
grep -q 'include cycle: .*io/binary.*io/file\|include cycle: .*io/file.*io/binary' "$work/out" ||
  fail "cycle not reported"
exit $((failures > 0))
