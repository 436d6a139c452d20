#!/usr/bin/env bash
# The TinyLlama-1.1B table of docs/BENCHMARKS.md: makes random-weight models of that shape at
# each type with `v4 mkmodel`, runs `v4 bench` on each, and prints the JSON lines (stdout) and
# a markdown table (stderr). The models are deleted afterwards unless KEEP=1.
#   bench/tinyllama.sh [V4_BINARY] [MODEL_DIR]
# Environment: TYPES (default "q4_0 q8_0 f16"), THREADS (2), P (128), N (32), R (2),
#   EXTRA (more `v4 bench` options, e.g. "--depth 4096 --kv-type f16"), KEEP (0),
#   REUSE (0; 1: use MODEL_DIR/tl-TYPE.gguf if it exists instead of making it again).
# Disk: about 2.2 GB in MODEL_DIR (default /tmp) for the F16 file, one model at a time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
v4="${1:-$root/build/tools/v4/v4}"
dir="${2:-/tmp}"
types=(${TYPES:-q4_0 q8_0 f16})
threads="${THREADS:-2}"
vocab="$root/tests/data/ggml-vocab-llama-spm.gguf"
results="$(mktemp)"
trap 'rm -f "$results"' EXIT

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
  echo "v4: $("$v4" --version)"
} >&2

for t in "${types[@]}"; do
  model="$dir/tl-$t.gguf"
  if [[ "${REUSE:-0}" == 1 && -f "$model" ]]; then
    echo "+ reusing $model" >&2
  else
    echo "+ v4 mkmodel --shape tinyllama-1.1b --type $t --vocab-from $vocab --seed 1 -o $model" >&2
    "$v4" mkmodel --shape tinyllama-1.1b --type "$t" --vocab-from "$vocab" --seed 1 -o "$model"
  fi
  echo "+ v4 bench -m $model -p ${P:-128} -n ${N:-32} -r ${R:-2} --threads $threads --json ${EXTRA:-}" >&2
  # shellcheck disable=SC2086
  "$v4" bench -m "$model" -p "${P:-128}" -n "${N:-32}" -r "${R:-2}" --threads "$threads" --json \
    ${EXTRA:-} | tee -a "$results"
  [[ "${KEEP:-0}" == 1 || "${REUSE:-0}" == 1 ]] || rm -f "$model"
done

python3 - "$results" >&2 <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n| type | size | pp t/s | pp GFLOP/s | tg t/s | tg GB/s | membw GB/s (1 thread) "
      "| % of roofline | roofline t/s | others_cpu pp / tg |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
membw, tests = None, {}
for r in rows:
    if r["test"] == "membw":
        membw = r
    else:
        tests.setdefault(r["model"], {"membw": membw})[r["test"][:2]] = r
fmt = lambda r, k, f: (f % r[k]) if r and r.get(k) is not None else "-"
tps = lambda r: ("%.2f ± %.2f" % (r["tokens_per_s"], r["stddev"])) if r else "-"
for m, t in tests.items():
    pp, tg, mb = t.get("pp"), t.get("tg"), t["membw"]
    any_ = pp or tg
    print("| %s | %.0f MiB | %s | %s | %s | %s | %s (%s) | %s | %s | %s / %s |" % (
        any_["type"], any_["size_bytes"] / 2**20, tps(pp), fmt(pp, "gflops", "%.1f"), tps(tg),
        fmt(tg, "gbs", "%.2f"), fmt(mb, "membw_gbs", "%.1f"), fmt(mb, "membw_1t_gbs", "%.1f"),
        ("%.1f %%" % (100 * tg["roofline_fraction"])) if tg else "-",
        fmt(tg, "roofline_tokens_per_s", "%.1f"), fmt(pp, "others_cpu", "%.2f"),
        fmt(tg, "others_cpu", "%.2f")))
EOF
