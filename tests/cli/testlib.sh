# Helpers shared by the command-line tests; sourced, not run.  The caller
# makes $work (make_workdir) before using expect_status.

failures=0

# make_workdir NAME: a scratch directory in $work, removed on exit (made
# writable first: some tests take write permission away).
make_workdir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/crema-$1.XXXXXX") || exit 99
  trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
}

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect_status WANT DESCRIPTION COMMAND...: runs COMMAND, stdout to
# $work/out, stderr to $work/err.
expect_status() {
  want=$1
  what=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  got=$?
  if [ "$got" -ne "$want" ]; then
    fail "$what: exit status $got, expected $want"
    cat "$work/err" >&2
  fi
}

# expect_one_line_error COMMAND_NAME NEEDLE: the last stderr line is the
# one-line report naming the problem.
expect_one_line_error() {
  last=$(tail -n 1 "$work/err")
  case "$last" in
    "crema $1: "*"$2"*) ;;
    *) fail "error line '$last' lacks 'crema $1: ...$2'" ;;
  esac
}

# finish: exit status 1 (with a count) if any check failed.
finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
  fi
  exit 0
}

# synth_image_db [CONVERT-IMAGESET OPTION...]: in the current directory,
# imgs/ with 8 synthetic 48x48 lesions, list.txt labelling them 0/1 by
# parity, and db, their convert-imageset LMDB (the retrieval tests' data).
synth_image_db() {
  "$CREMA_BIN" synth --count 8 --size 48 --seed 5 imgs 2>/dev/null || fail "synth"
  for i in 0 1 2 3 4 5 6 7; do echo "ISIC_000000$i.jpg $((i % 2))"; done >list.txt
  "$CREMA_BIN" convert-imageset "$@" imgs/ list.txt db 2>/dev/null || fail "convert-imageset"
}
