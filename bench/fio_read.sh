#!/usr/bin/env bash
# Random-read throughput of a directory's filesystem with fio (io_uring, O_DIRECT): the figure
# `v4 bench --kv-disk` is compared with (the disk tier should reach >= 80 % of it).
# Needs fio (Debian package `fio`; an optional bench dependency, not installed by tools/setup.sh).
#
#   bench/fio_read.sh DIR [BLOCK_BYTES=262144] [SIZE=1g] [IODEPTH=64] [RUNTIME_S=10]
#
# Prints one line: "fio randread bs=... iodepth=...: X.XXX GB/s" (1e9 bytes per second).
set -euo pipefail

dir="${1:?usage: bench/fio_read.sh DIR [BLOCK_BYTES] [SIZE] [IODEPTH] [RUNTIME_S]}"
bs="${2:-262144}"
size="${3:-1g}"
depth="${4:-64}"
runtime="${5:-10}"
command -v fio >/dev/null || { echo "fio_read.sh: fio is not installed (apt-get install fio)" >&2; exit 2; }
[ -d "$dir" ] && [ -w "$dir" ] || { echo "fio_read.sh: $dir is not a writable directory" >&2; exit 2; }

file="$dir/v4-fio-read-$$.bin"
trap 'rm -f "$file"' EXIT
# Lay the file out first (sequential write), so the read phase measures reads only.
fio --name=layout --filename="$file" --size="$size" --rw=write --bs=1m --ioengine=io_uring \
  --direct=1 --end_fsync=1 >/dev/null
json="$(fio --name=randread --filename="$file" --size="$size" --rw=randread --bs="$bs" \
  --iodepth="$depth" --ioengine=io_uring --direct=1 --time_based --runtime="$runtime" \
  --output-format=json)"
python3 -c '
import json, sys
gbps = json.loads(sys.argv[1])["jobs"][0]["read"]["bw_bytes"] / 1e9
print(f"fio randread bs={sys.argv[2]} iodepth={sys.argv[3]}: {gbps:.3f} GB/s")
' "$json" "$bs" "$depth"
