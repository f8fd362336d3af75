#!/bin/sh
# libcrema exports exactly the functions src/crema.h declares: the
# internal helpers (crema_fail, crema_malloc, ...) stay inside.
top_builddir=$(dirname "$CREMA_BIN")
lib="$top_builddir/.libs/libcrema.so"
[ -f "$lib" ] || { echo "no shared libcrema (--disable-shared): skipped"; exit 77; }
command -v nm >/dev/null 2>&1 || { echo "no nm: skipped"; exit 77; }
want=$(sed -n 's/.*\<\(crema_[a-z0-9_]*\)(.*/\1/p' "$srcdir/src/crema.h" | sort -u)
got=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort -u)
if [ "$want" != "$got" ]; then
  echo "FAIL: libcrema's exports differ from src/crema.h's functions" >&2
  printf '%s\n' "$want" >"${TMPDIR:-/tmp}/exports-want.$$"
  printf '%s\n' "$got" | diff "${TMPDIR:-/tmp}/exports-want.$$" - >&2
  rm -f "${TMPDIR:-/tmp}/exports-want.$$"
  exit 1
fi
echo "libcrema exports the $(printf '%s\n' "$got" | wc -l) functions of crema.h"
