#!/usr/bin/env bash
# Fuzzes the GGUF reader for SECONDS: configures the `fuzz` CMake preset (clang,
# V4_FUZZ=ON, build-fuzz/), builds fuzz_gguf and runs it on a copy of the seed corpus
# in a temporary directory. Crash inputs are kept in build-fuzz/fuzz-artifacts/.
#   tests/fuzz/run_fuzz.sh 600 [extra libFuzzer flags, e.g. -jobs=2]
# Exit status: libFuzzer's (0 when nothing was found).
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECONDS [libFuzzer flags...]" >&2
  exit 2
fi
seconds=$1
shift
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

build=build-fuzz
log=$(mktemp)
if ! cmake --preset fuzz >"$log" 2>&1; then
  # The whole tree may not configure (e.g. a folder mid-edit); tests/fuzz also builds
  # as a project of its own, from the same sources.
  echo "warning: 'cmake --preset fuzz' failed; building tests/fuzz on its own instead:" >&2
  grep -m5 -A3 "CMake Error" "$log" >&2 || tail -5 "$log" >&2
  build=build-fuzz/standalone
  cmake -S tests/fuzz -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER=clang++ -DV4_FUZZ=ON >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
fi
rm -f "$log"
cmake --build "$build" -j2 --target fuzz_gguf
bin=$(find "$build" -name fuzz_gguf -type f -perm -u+x | head -n1)

work=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_gguf.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" build-fuzz/fuzz-artifacts
cp tests/fuzz/corpus/* "$work/corpus/"

echo "running $bin for ${seconds}s on $(ls "$work/corpus" | wc -l) seed inputs"
set +e
"$bin" "$work/corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
  -timeout=10 -max_len=16384 -print_final_stats=1 -dict=tests/fuzz/gguf.dict \
  -artifact_prefix="$root/build-fuzz/fuzz-artifacts/" "$@"
rc=$?
set -e
echo "fuzz_gguf exit status $rc; corpus grew to $(ls "$work/corpus" | wc -l) inputs"
exit $rc
