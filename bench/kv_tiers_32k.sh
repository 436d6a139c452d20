#!/usr/bin/env bash
# Issue 7's tiered-KV decode benchmark: tinyllama-1.1b-shaped Q4_0 model, f16 KV, 128-token
# pages, a 32K-token context; decode speed with the whole cache in RAM versus 75 % of its pages
# on disk, and fio's read figure on the same filesystem in the same run.
#
#   bench/kv_tiers_32k.sh WORK_DIR [V4_BINARY]
#
# The context is filled once (tests/data/tinystories-sample.txt eight times: 30 480 tokens with
# the llama vocabulary) and saved as a session; both runs
# restore it (`v4 run --session`), so the prefill is paid once.
set -euo pipefail
work="${1:?usage: bench/kv_tiers_32k.sh WORK_DIR [V4_BINARY]}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
v4="${2:-$root/build/tools/v4/v4}"
mkdir -p "$work/kv"
model="$work/tl32k.gguf"
[ -f "$model" ] || "$v4" mkmodel --shape tinyllama-1.1b,ctx=32768 --type q4_0 \
  --vocab-from "$root/tests/data/ggml-vocab-llama-spm.gguf" --seed 1 -o "$model"
for i in 1 2 3 4 5 6 7 8; do cat "$root/tests/data/tinystories-sample.txt"; done >"$work/prompt32k.txt"
common=(run -m "$model" -f "$work/prompt32k.txt" --temp 0 --ctx 32768 --kv-type f16 --kv-page 128
        --session "$work/s32k.v4s")
if [ ! -f "$work/s32k.v4s" ]; then
  echo "== fill the context and save the session" >&2
  "$v4" "${common[@]}" -n 1 >/dev/null
fi
# KV: 22 layers x 256 pages x 128 KiB blocks = 704 MiB; device + host budgets of 88 MiB each
# hold 25 % of it, the rest goes to disk.
echo "== all in RAM" >&2
"$v4" "${common[@]}" -n 16 --stats 2>&1 >/dev/null | grep -E "generated|^kv|session"
echo "== 75 % of the pages on disk" >&2
"$v4" "${common[@]}" -n 16 --stats --kv-vram 88M --kv-ram 88M --kv-disk "$work/kv" 2>&1 >/dev/null |
  grep -E "generated|^kv|session"
echo "== fio on the same directory" >&2
"$root/bench/fio_read.sh" "$work/kv" 131072 1g 64 5
