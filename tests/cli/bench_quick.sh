#!/bin/sh
# bench/run --quick runs to the end and prints its table: against OpenCV's
# dnn module where python3-opencv is importable, crema alone otherwise (the
# test never installs packages).
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
srcdir=$(cd "$CREMA_TEST_DATA/../.." && pwd)
CREMA_BENCH_BIN=${CREMA_BENCH_BIN:-$(dirname "$CREMA_BIN")/bench/crema_bench}
export CREMA_BIN CREMA_BENCH_BIN

# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir bench-quick

flags="--quick --no-install --workdir $work"
if ! "${PYTHON:-/usr/bin/python3}" -c 'import cv2' >/dev/null 2>&1; then
  echo "bench_quick: no python3-opencv: crema only"
  flags="$flags --no-opencv"
fi
sh "$srcdir/bench/run" $flags > "$work/table.txt" 2> "$work/stderr.txt"
rc=$?
cat "$work/table.txt"
if [ "$rc" -ne 0 ]; then
  echo "FAIL: bench/run --quick exited with $rc" >&2
  cat "$work/stderr.txt" >&2
  tail -n 40 "$work/bench.log" >&2
  exit 1
fi
if grep -q "failed" "$work/stderr.txt"; then
  echo "FAIL: a measurement failed" >&2
  cat "$work/stderr.txt" >&2
  tail -n 40 "$work/bench.log" >&2
  exit 1
fi
for what in "load VGG-16" "forward VGG-16" "peak RSS"; do
  grep -q "| $what" "$work/table.txt" || { echo "FAIL: no '$what' row" >&2; exit 1; }
done
# Every crema cell holds a number.
if awk -F'|' '/^\| [a-z]/ && !/^\| measurement/ && $4 !~ /^ *[0-9.]+ *$/ { bad = 1 }
              END { exit !bad }' \
     "$work/table.txt"; then
  echo "FAIL: a crema measurement is missing" >&2
  exit 1
fi
exit 0
