#!/usr/bin/env bash
# Issue 7's long-context memory check: a 128K-token context on a small `v4 mkmodel` model
# (the `tiny` preset with 8 layers: 16 MiB of f16 KV per layer, 128 MiB in all) with 1 MiB of
# device and 4 MiB of host KV budget, the rest on disk. Prints the decode speed at depth
# 130 000 and the process's peak RSS next to the bound weights + host budgets + 256 MiB.
#
#   bench/kv_128k_rss.sh WORK_DIR [V4_BINARY]
#
# WORK_DIR must be on a real disk (tmpfs refuses O_DIRECT; the tier then falls back to
# buffered I/O, whose page cache would not count as RSS but would hide the disk).
set -euo pipefail
work="${1:?usage: bench/kv_128k_rss.sh WORK_DIR [V4_BINARY]}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
v4="${2:-$root/build/tools/v4/v4}"
mkdir -p "$work/kv"
model="$work/tiny128k.gguf"
[ -f "$model" ] || "$v4" mkmodel --shape tiny,layers=8,ctx=131072 --type f32 --seed 1 -o "$model"
# --membw-mib 64: the bandwidth probe's buffer would otherwise dominate the peak RSS.
/usr/bin/time -v "$v4" bench -m "$model" -p 0 -n 16 -r 1 --depth 130000 --threads 2 \
  --kv-type f16 --kv-vram 1M --kv-ram 4M --kv-disk "$work/kv" --kv-disk-mib 16 \
  --membw-mib 64 --json 2>"$work/time.txt" | grep -E '"tg16|kv_disk' || true
rss_kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
weights=$(stat -c %s "$model")
bound=$(( weights + 5 * 1048576 + 256 * 1048576 ))
echo "peak RSS $(( rss_kib / 1024 )) MiB; bound weights $(( weights / 1048576 )) MiB + 5 MiB budgets + 256 MiB = $(( bound / 1048576 )) MiB"
[ $(( rss_kib * 1024 )) -lt "$bound" ] && echo "within the bound" || { echo "OVER the bound"; exit 1; }
