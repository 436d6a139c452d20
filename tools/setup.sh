#!/usr/bin/env bash
# Installs what is missing (Debian 12 packages), builds v4engine, then either starts
# `v4 chat` on the bundled model or runs the test suite.
#
#   tools/setup.sh chat    # build and start the chat REPL (default)
#   tools/setup.sh test    # build and run the tests (labels slow/bench excluded)
#   tools/setup.sh build   # build only
set -euo pipefail

mode="${1:-chat}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${V4_BUILD_DIR:-$root/build}"

packages=(cmake ninja-build g++ pkg-config libfmt-dev catch2 libcli11-dev libedit-dev libpcre2-dev python3)
packages+=(liburing-dev libzstd-dev libxxhash-dev)  # KV disk tier (io_uring, compression, checksums)
packages+=(libvulkan-dev glslc mesa-vulkan-drivers vulkan-validationlayers)  # Vulkan backend; lavapipe runs its tests
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

jobs="$(nproc)"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${V4_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$jobs"

case "$mode" in
  chat) exec "$build/tools/v4/v4" chat "${@:2}" ;;
  test) cd "$build" && exec ctest --output-on-failure -j "$jobs" -LE 'slow|bench' "${@:2}" ;;
  build) ;;
  *) echo "usage: tools/setup.sh [chat|test|build]" >&2; exit 2 ;;
esac
