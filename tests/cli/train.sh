#!/bin/sh
# crema train / crema test on a golden solver case: Caffe's log lines,
# snapshots, resuming, signals (SIGHUP snapshots, SIGINT stops) and
# one-line errors for bad invocations.
set -u
: "${CREMA_BIN:?CREMA_BIN must point at the crema binary}"
: "${CREMA_TEST_DATA:?CREMA_TEST_DATA must point at tests/data}"

# shellcheck source-path=SCRIPTDIR source=testlib.sh
. "$(dirname "$0")/testlib.sh"
make_workdir cli-train
case_dir="$CREMA_TEST_DATA/golden/solvers/sgd_step_momentum"

# A writable copy of the case's inputs.
fresh_copy() {
  rm -rf "$work/run"
  mkdir "$work/run" &&
    cp -R "$case_dir/solver.prototxt" "$case_dir/net.prototxt" "$case_dir/init.caffemodel" \
      "$case_dir/train_lmdb" "$work/run/" &&
    chmod -R u+w "$work/run"
}

expect_log() {
  grep -qF -- "$1" "$work/err" || fail "log lacks '$1'"
}

expect_error() {
  [ "$1" -ne 0 ] || fail "$2: exit status 0, expected failure"
  last=$(tail -n 1 "$work/err")
  case "$last" in
    "crema $3: "*"$4"*) ;;
    *) fail "$2: error line '$last' lacks 'crema $3: ...$4'" ;;
  esac
}

# Training from the initial weights logs as Caffe and snapshots at 6 and 12.
fresh_copy || exit 99
(cd "$work/run" && "$CREMA_BIN" train --solver solver.prototxt --weights init.caffemodel) \
  >"$work/out" 2>"$work/err"
[ $? -eq 0 ] || { fail "train: exit status $?"; cat "$work/err" >&2; }
expect_log "Finetuning from init.caffemodel"
expect_log "Iteration 0 ("
expect_log "), loss = 2.46053"
expect_log "    Train net output #0: loss = 2.46053 (* 1 = 2.46053 loss)"
expect_log "Iteration 4, lr = 0.025"
expect_log "Snapshotting to binary proto file snap_iter_6.caffemodel"
expect_log "Snapshotting solver state to binary proto file snap_iter_6.solverstate"
expect_log "Iteration 12, loss = 2.18795"
expect_log "Optimization Done."
for f in snap_iter_6.caffemodel snap_iter_6.solverstate snap_iter_12.caffemodel \
  snap_iter_12.solverstate; do
  [ -s "$work/run/$f" ] || fail "train: $f missing"
done
[ -s "$work/out" ] && fail "train: unexpected stdout: $(cat "$work/out")"

# Resuming from our mid-way snapshot continues at iteration 6.
(cd "$work/run" && "$CREMA_BIN" train --solver solver.prototxt \
  --snapshot snap_iter_6.solverstate) >"$work/out" 2>"$work/err"
[ $? -eq 0 ] || { fail "resume: exit status $?"; cat "$work/err" >&2; }
expect_log "Resuming from snap_iter_6.solverstate"
expect_log "), loss = 2.26092"
expect_log "Iteration 12, loss = 2.18795"
grep -q "Iteration 5 (" "$work/err" && fail "resume: ran iteration 5 again"

# crema test on the TEST-phase version of the net.
sed 's/include { phase: TRAIN }//' "$work/run/net.prototxt" >"$work/run/test.prototxt"
(cd "$work/run" && "$CREMA_BIN" test --model test.prototxt --weights snap_iter_12.caffemodel \
  --iterations 3) >"$work/out" 2>"$work/err"
[ $? -eq 0 ] || { fail "test: exit status $?"; cat "$work/err" >&2; }
expect_log "Running for 3 iterations."
expect_log "Batch 2, loss = "
grep -q "] loss = [0-9.e+-]* (\* 1 = [0-9.e+-]* loss)$" "$work/err" ||
  fail "test: no mean loss line"

# Test nets from the generic net file: tested at test_interval and after
# training, with the train net's current weights.
sed 's/include { phase: TRAIN }//' "$work/run/net.prototxt" >"$work/run/both.prototxt"
printf '%s\n' 'net: "both.prototxt" test_iter: 2 test_interval: 4 max_iter: 8 display: 4' \
  'type: "SGD" base_lr: 0.05 momentum: 0.9 lr_policy: "fixed" snapshot_after_train: false' \
  >"$work/run/tested.prototxt"
(cd "$work/run" && "$CREMA_BIN" train --solver tested.prototxt --weights init.caffemodel) \
  >"$work/out" 2>"$work/err"
[ $? -eq 0 ] || { fail "test nets: exit status $?"; cat "$work/err" >&2; }
expect_log "Creating test net (#0) specified by net file: both.prototxt"
expect_log "Iteration 0, Testing net (#0)"
expect_log "    Test net output #0: loss = 2.39777 (* 1 = 2.39777 loss)"
expect_log "Iteration 4, Testing net (#0)"
expect_log "Iteration 8, Testing net (#0)"

# Signals: SIGHUP snapshots and goes on, SIGINT stops (then the final
# snapshot is written, as Caffe's snapshot_after_train).
fresh_copy || exit 99
sed -e 's/max_iter: 12/max_iter: 100000000/' -e 's/display: 1/display: 0/' \
  -e 's/snapshot: 6/snapshot: 0/' "$case_dir/solver.prototxt" >"$work/run/solver.prototxt"
(cd "$work/run" && exec "$CREMA_BIN" train --solver solver.prototxt \
  --weights init.caffemodel) >"$work/out" 2>"$work/err" &
pid=$!
sleep 1
kill -HUP "$pid"
sleep 1
kill -INT "$pid"
wait "$pid"
status=$?
[ "$status" -eq 0 ] || fail "signals: exit status $status"
[ "$(ls "$work/run" | grep -c '^snap_iter_.*\.solverstate$')" -eq 2 ] ||
  fail "signals: expected two snapshots, got: $(ls "$work/run")"
expect_log "Optimization stopped early."

# --sigint_effect none ignores SIGINT; SIGTERM still ends the process.
(cd "$work/run" && exec "$CREMA_BIN" train --solver solver.prototxt --weights init.caffemodel \
  --sigint_effect none --sighup_effect stop) >"$work/out" 2>"$work/err" &
pid=$!
sleep 1
kill -INT "$pid"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "--sigint_effect none: process ended on SIGINT"
kill -HUP "$pid"
wait "$pid"
[ $? -eq 0 ] || fail "--sighup_effect stop: bad exit status"
expect_log "Optimization stopped early."

# Bad invocations: one-line errors.
"$CREMA_BIN" train >"$work/out" 2>"$work/err"
expect_error $? "no solver" train "--solver"
"$CREMA_BIN" train --solver "$case_dir/solver.prototxt" --weights a --snapshot b \
  >"$work/out" 2>"$work/err"
expect_error $? "weights and snapshot" train "not both"
"$CREMA_BIN" train --solver "$case_dir/solver.prototxt" --sigint_effect pause \
  >"$work/out" 2>"$work/err"
expect_error $? "bad signal effect" train "pause"
"$CREMA_BIN" train --solver "$work/none.prototxt" >"$work/out" 2>"$work/err"
expect_error $? "missing solver" train "none.prototxt"
fresh_copy || exit 99
echo 'snapshot_format: HDF5' >>"$work/run/solver.prototxt"
(cd "$work/run" && "$CREMA_BIN" train --solver solver.prototxt) >"$work/out" 2>"$work/err"
expect_error $? "HDF5" train "HDF5"
fresh_copy || exit 99
sed 's/type: "SGD"/type: "Adamax"/' "$case_dir/solver.prototxt" >"$work/run/solver.prototxt"
(cd "$work/run" && "$CREMA_BIN" train --solver solver.prototxt) >"$work/out" 2>"$work/err"
expect_error $? "unknown solver type" train "Adamax"
fresh_copy || exit 99
(cd "$work/run" && "$CREMA_BIN" train --solver solver.prototxt \
  --snapshot init.caffemodel) >"$work/out" 2>"$work/err"
expect_error $? "not a solver state" train "init.caffemodel"
"$CREMA_BIN" test --model "$work/run/net.prototxt" >"$work/out" 2>"$work/err"
expect_error $? "test without weights" test "--weights"
"$CREMA_BIN" train --help >"$work/out" 2>"$work/err" || fail "train --help failed"
grep -q -- "--sighup_effect" "$work/out" || fail "train --help lacks --sighup_effect"

finish
exit 0
