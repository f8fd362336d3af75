#!/bin/sh
# Crash safety of every file crema writes: kill -9 at random moments of
# `crema train` (snapshot every iteration), `convert-imageset`, `lesion-db`
# and `segment` leaves only complete outputs (the previous snapshot or the
# new one, a whole database or none), and training resumes; a full disk
# (ulimit -f) gives a clear error and no partial file; convert-imageset
# fails when it wrote no record; reading a dataset writes nothing into it.
# The moments are random: a failure prints the seed (CRASH_SEED=... reruns).
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"
# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir crash-safety
models="$CREMA_TEST_DATA/../../models/lesion"
case_dir="$CREMA_TEST_DATA/golden/solvers/sgd_step_momentum"
seed=${CRASH_SEED:-$(date +%s)}
draws=0

# random_delay MAX_MS: a pseudo-random delay in seconds, from the seed.
random_delay() {
  draws=$((draws + 1))
  awk -v s="$seed" -v n="$draws" -v m="$1" \
    'BEGIN { srand(s + 7919 * n); printf "%.3f\n", rand() * m / 1000 }'
}

# kill_after MAX_MS COMMAND...: runs COMMAND in the background, kills it
# with SIGKILL after a random delay (unless it has finished).
kill_after() {
  max=$1
  shift
  "$@" >/dev/null 2>&1 &
  pid=$!
  sleep "$(random_delay "$max")"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

# loads FILE: crema reads the file (weights, solver state) without error.
loads() {
  "$CREMA_BIN" info "$1" >/dev/null 2>"$work/info.err" ||
    fail "after kill -9 (seed $seed): $1 does not load: $(tail -n 1 "$work/info.err")"
}

# db_records DB: the number of records compute-image-mean reads from DB
# (empty when the database does not load).
db_records() {
  "$CREMA_BIN" compute-image-mean "$1" "$work/mean.binaryproto" 2>"$work/mean.err" &&
    sed -n 's/.*Processed \([0-9]*\) files.*/\1/p' "$work/mean.err" | tail -n 1
  rm -f "$work/mean.binaryproto"
}

# --- crema train: snapshots every iteration, killed 4 times, resumed ----
mkdir "$work/train" && cp -R "$case_dir/net.prototxt" "$case_dir/init.caffemodel" \
  "$case_dir/train_lmdb" "$work/train/" && chmod -R u+w "$work/train" || exit 99
rm -f "$work/train/train_lmdb/lock.mdb"
sed -e 's/max_iter: 12/max_iter: 400/' -e 's/snapshot: 6/snapshot: 1/' \
  "$case_dir/solver.prototxt" >"$work/train/solver.prototxt" || exit 99
cd "$work/train" || exit 99
# snapshots: how many snapshot files there are.
snapshots() { ls snap_iter_* 2>/dev/null | wc -l; }
for round in 1 2 3 4; do
  latest=$(ls -t snap_iter_*.solverstate 2>/dev/null | head -n 1)
  before=$(snapshots)
  if [ -n "$latest" ]; then
    set -- --snapshot "$latest"
  else
    set -- --weights init.caffemodel
  fi
  "$CREMA_BIN" train --solver solver.prototxt "$@" >/dev/null 2>&1 &
  pid=$!
  # Once training writes snapshots (however slow the start on a loaded
  # machine), a random moment within the next half second.
  waited=0
  while [ "$(snapshots)" -le "$before" ] && [ $waited -lt 600 ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1
    waited=$((waited + 1))
  done
  sleep "$(random_delay 500)"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  for f in snap_iter_*; do
    [ -e "$f" ] && loads "$f"
  done
done
ls snap_iter_*.solverstate >/dev/null 2>&1 || fail "train (seed $seed): no snapshot before the kills"
latest=$(ls -t snap_iter_*.solverstate 2>/dev/null | head -n 1)
if [ -n "$latest" ]; then
  iter=$(echo "$latest" | sed 's/snap_iter_\([0-9]*\).solverstate/\1/')
  sed -i "s/max_iter: 400/max_iter: $((iter + 2))/" solver.prototxt
  "$CREMA_BIN" train --solver solver.prototxt --snapshot "$latest" >/dev/null 2>"$work/err" ||
    fail "resume from $latest after kill -9 (seed $seed): $(tail -n 1 "$work/err")"
  loads "snap_iter_$((iter + 2)).caffemodel"
fi
# Reading the dataset wrote nothing into it (no lock file): read-only
# datasets work, and tracked fixtures stay unchanged.
[ ! -e train_lmdb/lock.mdb ] || fail "training created train_lmdb/lock.mdb"
cd "$work" || exit 99

# --- convert-imageset: killed while writing; the database is whole or absent
"$CREMA_BIN" synth --count 2 --size 48 --seed 5 imgs 2>/dev/null || fail "synth"
i=0
: >list.txt
while [ $i -lt 600 ]; do
  echo "ISIC_000000$((i % 2)).jpg $((i % 2))" >>list.txt
  i=$((i + 1))
done
for round in 1 2 3; do
  kill_after 400 "$CREMA_BIN" convert-imageset imgs/ list.txt "db$round"
  if [ -e "db$round" ]; then
    n=$(db_records "db$round")
    [ "$n" = 600 ] || fail "convert-imageset killed (seed $seed): db$round holds '${n}' records, not 600"
  fi
done

# --- lesion-db: each database present is whole ---------------------------
for round in 1 2; do
  kill_after 500 "$CREMA_BIN" lesion-db --size 32 --augment 2 imgs "ldb$round"
  for db in "ldb$round"/*_lmdb; do
    [ -e "$db" ] || continue
    [ -n "$(db_records "$db")" ] || fail "lesion-db killed (seed $seed): $db does not load"
  done
done

# --- segment: every mask present decodes ---------------------------------
for round in 1 2; do
  kill_after 1500 "$CREMA_BIN" segment --model "$models/bundled/deploy.prototxt" \
    --weights "$models/bundled/lesion_w8_128.caffemodel" --output "seg$round" imgs
  ls "seg$round"/*.png >/dev/null 2>&1 || continue
  ls "seg$round"/*.png | sed 's/$/ 0/' >seglist.txt
  "$CREMA_BIN" convert-imageset ./ seglist.txt "segdb$round" 2>"$work/err" ||
    fail "segment killed (seed $seed): its output does not convert: $(tail -n 1 "$work/err")"
  grep -q "Skipped" "$work/err" && fail "segment killed (seed $seed): a torn mask: $(grep Could "$work/err")"
done

# --- a full disk (a file size limit): a clear error, no partial file ------
mkdir full && cp "$work/train/net.prototxt" "$work/train/init.caffemodel" full/ &&
  cp -R "$case_dir/train_lmdb" full/ && cp "$case_dir/solver.prototxt" full/ &&
  chmod -R u+w full || exit 99
(
  cd full || exit 99
  # Ignored, SIGXFSZ does not kill: writes fail with EFBIG.  4 blocks is
  # 2 KiB (dash) or 4 KiB (bash): the snapshots hold 8 KiB.
  trap '' XFSZ
  ulimit -f 4
  "$CREMA_BIN" train --solver solver.prototxt --weights init.caffemodel 2>&1
  echo "status $?"
) 2>&1 | cat >full.log  # through a pipe: the log is not limited
grep -q "^status 0" full.log && fail "train on a full disk: exit status 0"
tail -n 2 full.log | grep -q "crema train: .*snap_iter_6.*File too large" ||
  fail "train on a full disk: unclear error: $(tail -n 2 full.log | head -n 1)"
leftovers=$(ls -A full | grep -v -e '^net.prototxt$' -e '^init.caffemodel$' \
  -e '^train_lmdb$' -e '^solver.prototxt$')
[ -z "$leftovers" ] || fail "train on a full disk left: $leftovers"
(
  trap '' XFSZ
  ulimit -f 4
  "$CREMA_BIN" convert-imageset imgs/ list.txt fulldb 2>&1
  echo "status $?"
) 2>&1 | cat >full-convert.log
grep -q "^status 0" full-convert.log && fail "convert-imageset on a full disk: exit status 0"
tail -n 2 full-convert.log | grep -q "crema convert-imageset: .*fulldb" ||
  fail "convert-imageset on a full disk: unclear error: $(tail -n 2 full-convert.log | head -n 1)"
ls -d fulldb* >/dev/null 2>&1 && fail "convert-imageset on a full disk left: $(ls -d fulldb*)"

# --- convert-imageset with nothing to store -------------------------------
printf 'not an image' >imgs/bad.jpg
echo "bad.jpg 0" >bad.txt
expect_status 1 "convert-imageset of unreadable images" \
  "$CREMA_BIN" convert-imageset imgs/ bad.txt emptydb
expect_one_line_error convert-imageset "no record written"
[ ! -e emptydb ] || fail "convert-imageset wrote a database without records"
expect_status 0 "convert-imageset --allow_empty" \
  "$CREMA_BIN" convert-imageset --allow_empty imgs/ bad.txt emptydb
[ -d emptydb ] || fail "convert-imageset --allow_empty wrote no database"
printf 'ISIC_0000000.jpg 1\nbad.jpg 0\nmissing.jpg 0\n' >mixed.txt
expect_status 0 "convert-imageset with some unreadable images" \
  "$CREMA_BIN" convert-imageset imgs/ mixed.txt mixeddb
grep -q "Skipped 2 of 3 images" "$work/err" || fail "convert-imageset: no count of skipped images"

finish
