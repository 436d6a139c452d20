#!/usr/bin/env bash
# Decode at context depth 4096 (issue 4), AVX2 against AVX-512 attention, in one run:
#  1. kernel level: bench/attention_bench (one thread's CPU time per token, f16/bf16/f32 pages,
#     22 layers so the cache streams from memory; 1 token = decode, 4 = a prefill tile);
#  2. model level: `v4 bench -p 0 -n N --depth 4096 --kv-type f16 --threads 2` on a
#     TinyLlama-1.1B-shaped Q4_0 file, alternating V4_CPU_ATTENTION=avx2 and the default
#     (AVX-512 where the CPU has it), ROUNDS times each, JSON lines tagged with the kernel.
#   bench/attention_depth.sh [BUILD_DIR] [MODEL]
# Environment: ROUNDS (2), N (32), THREADS (2). MODEL defaults to /tmp/tl-q4_0.gguf, made with
# `v4 mkmodel` when missing (about 640 MB). Run on a quiet machine: wall-clock t/s is what
# `v4 bench` reports.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
model="${2:-/tmp/tl-q4_0.gguf}"
v4="$build/tools/v4/v4"
rounds="${ROUNDS:-2}"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ); cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; v4: $("$v4" --version)" >&2
if [[ ! -f "$model" ]]; then
  echo "+ v4 mkmodel --shape tinyllama-1.1b --type q4_0 -o $model" >&2
  "$v4" mkmodel --shape tinyllama-1.1b --type q4_0 --vocab-from "$root/tests/data/ggml-vocab-llama-spm.gguf" \
    --seed 1 -o "$model" >&2
fi
for type in f16 bf16 f32; do
  for tokens in 1 4; do
    echo "+ attention_bench --type $type --tokens $tokens --layers 22 --depth 4096" >&2
    "$build/bench/attention_bench" --type "$type" --tokens "$tokens" --layers 22 --depth 4096 --reps 10
  done
done
for ((r = 0; r < rounds; ++r)); do
  for kernel in avx2 default; do
    echo "+ V4_CPU_ATTENTION=$kernel v4 bench -m $model -p 0 -n ${N:-32} -r 1 --depth 4096 --kv-type f16" >&2
    V4_CPU_ATTENTION="$kernel" "$v4" bench -m "$model" -p 0 -n "${N:-32}" -r 1 --depth 4096 --kv-type f16 \
      --threads "${THREADS:-2}" --json | sed "s/^{/{\"attention\": \"$kernel\", /"
  done
done
