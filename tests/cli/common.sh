# Shared set-up of the CLI test scripts (sourced). Usage of a script:
#   SCRIPT.sh TEST V4_BINARY REPO_DIR WORK_DIR [EXTRA...]
# Sets test_name, V4, REPO, WORK, MODEL, EXPECTED_FILE; leaves the extra arguments in "$@"
# of the caller (shift 4 there); runs in a fresh WORK directory with V4_MODEL unset.
set -uo pipefail

test_name=$1
V4=$2
REPO=$3
WORK=$4
MODEL="$REPO/models/stories260K-f32.gguf"
EXPECTED_FILE="$REPO/tests/data/stories260K-expected.txt"
unset V4_MODEL
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1

die() {
  echo "FAIL ($test_name): $*" >&2
  exit 1
}

# run_v4 ARGS...: runs the tool; sets $out (stdout, trailing newlines stripped), $err, $rc.
run_v4() {
  "$V4" "$@" >"$WORK/stdout" 2>"$WORK/stderr"
  rc=$?
  out=$(cat "$WORK/stdout")
  err=$(cat "$WORK/stderr")
}

expect_rc() {
  [[ $rc == "$1" ]] || die "expected exit $1, got $rc for: $2
stdout: $out
stderr: $err"
}

show_diff() {
  diff <(printf '%s\n' "$1") <(printf '%s\n' "$2") | head -20 >&2
}

need_python() {
  command -v python3 >/dev/null || { echo "SKIP: python3 is needed to check JSON"; exit 77; }
}

# Two --logits-out files agree within TOL (largest absolute difference).
logits_close() {
  python3 - "$1" "$2" "$3" <<'PY'
import struct, sys
a, b = (open(p, "rb").read() for p in sys.argv[1:3])
if len(a) != len(b) or not a:
    sys.exit(f"sizes differ: {len(a)} vs {len(b)}")
n = len(a) // 4
x, y = struct.unpack(f"<{n}f", a), struct.unpack(f"<{n}f", b)
worst = max(abs(p - q) for p, q in zip(x, y))
print(f"max |difference| over {n} logits: {worst:.3g}")
sys.exit(0 if worst <= float(sys.argv[3]) else 1)
PY
}
