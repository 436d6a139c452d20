#!/usr/bin/env bash
# End-to-end tests of the Vulkan backend through the v4 tool. Usage (from ctest):
#   vulkan_tests.sh TEST V4_BINARY REPO_DIR WORK_DIR
# Tests needing a Vulkan device exit 77 (skip) with the reason when there is none.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
shift 4

expected=$(cat "$EXPECTED_FILE")

need_vulkan_device() {
  run_v4 info --devices
  expect_rc 0 "v4 info --devices"
  if ! grep -A1 '^vulkan:$' "$WORK/stdout" | grep -q '^  0: '; then
    echo "SKIP ($test_name): no Vulkan device: $out"
    exit 77
  fi
}

# run_v4 plus: no Vulkan validation errors (when the layer is on, the backend's messenger
# prints them on stderr).
run_vk() {
  run_v4 "$@"
  [[ "$err" != *"validation error"* ]] || die "Vulkan validation errors: $err"
}

# Greedy text on Vulkan equals the CPU's reference text.
vulkan_run_expected() {
  need_vulkan_device
  run_vk run --backend vulkan -n 200 --temp 0
  expect_rc 0 "v4 run --backend vulkan -n 200 --temp 0"
  if [[ "$out" != "$expected" ]]; then
    show_diff "$expected" "$out"
    die "Vulkan stdout differs from tests/data/stories260K-expected.txt"
  fi
}

# Logits rows (prompt and generated) agree with the CPU's within 1e-3.
vulkan_logits() {
  need_vulkan_device
  run_v4 run --backend cpu -p "Once upon a time" -n 8 --temp 0 --logits-out "$WORK/cpu.bin"
  expect_rc 0 "cpu --logits-out"
  run_vk run --backend vulkan -p "Once upon a time" -n 8 --temp 0 --logits-out "$WORK/vk.bin"
  expect_rc 0 "vulkan --logits-out"
  logits_close "$WORK/cpu.bin" "$WORK/vk.bin" 1e-3 || die "logits differ"
  # FP8 pages, past the 32-row exact window so dequantised rows are read too. K and V
  # reach kv_store with last-bit differences (matmul order), which can round to another
  # E4M3 step; measured 1.4e-5 on lavapipe.
  run_v4 run --backend cpu -p "Once upon a time" -n 60 --temp 0 --kv-type fp8 --logits-out "$WORK/cpu8.bin"
  expect_rc 0 "cpu --kv-type fp8 --logits-out"
  run_vk run --backend vulkan -p "Once upon a time" -n 60 --temp 0 --kv-type fp8 --logits-out "$WORK/vk8.bin"
  expect_rc 0 "vulkan --kv-type fp8 --logits-out"
  logits_close "$WORK/cpu8.bin" "$WORK/vk8.bin" 1e-3 || die "FP8 logits differ"
}

# The executor's plan shows the Vulkan splits and the copies between them and the CPU.
vulkan_plan() {
  need_vulkan_device
  run_vk info -m "$MODEL" --plan --backend vulkan
  expect_rc 0 "v4 info --plan --backend vulkan"
  [[ "$out" == *"on vulkan"* ]] || die "no Vulkan split in the plan: $out"
  [[ "$out" == *"copy in  (host -> vulkan)"* ]] || die "no copy to the device in the plan"
  [[ "$out" == *"copy out (vulkan -> host)"* ]] || die "no copy to the host in the plan"
  [[ "$out" == *"device weights:"* ]] || die "no device weights in the plan"
}

# A layer split over two devices (here two backends on the same device, the only way to run
# the multi-device path without two GPUs): each device holds its own layers' weights,
# activations cross through host memory, and the text and logits match one device's.
vulkan_layer_split() {
  need_vulkan_device
  run_vk run --backend vulkan -p "Once upon a time" -n 8 --temp 0 --logits-out "$WORK/one.bin"
  expect_rc 0 "vulkan on one device"
  run_vk run --backend vulkan --devices 0,0 --split 2,3 -p "Once upon a time" -n 8 --temp 0 \
    --logits-out "$WORK/two.bin" -v
  expect_rc 0 "vulkan --devices 0,0 --split 2,3"
  [[ "$err" == *"layers 0-1"* && "$err" == *"layers 2-4 + output"* ]] ||
    die "the log does not show layers 0-1 / 2-4 + output: $err"
  # (One device runs attention on Vulkan; the split runs it on the CPU over host pages.)
  logits_close "$WORK/one.bin" "$WORK/two.bin" 1e-3 || die "logits of the layer split differ from one device"
  run_vk run --backend vulkan --devices 0,0 -n 40 --temp 0
  expect_rc 0 "vulkan --devices 0,0 (auto split)"
  [[ -n "$out" && "$expected" == "$out"* ]] || die "layer-split text is not the reference's start: $out"
  run_vk info -m "$MODEL" --plan --backend vulkan --devices 0,0 --split 1,1
  expect_rc 0 "v4 info --plan with --devices"
  [[ "$out" == *"on vulkan#0"* && "$out" == *"on vulkan#1"* ]] || die "the plan lacks vulkan#0/#1: $out"
  [[ "$out" == *"copy out (vulkan#0 -> host)"* && "$out" == *"copy in  (host -> vulkan#1)"* ]] ||
    die "the plan does not cross from device 0 to device 1 through the host: $out"
  run_v4 run --backend vulkan --devices 0,0 --split 1,0,1 -n 5
  expect_rc 1 "three ratios for two devices"
  [[ "$err" == *"ratios"* ]] || die "unclear message for a bad --split: $err"
  run_v4 run --backend vulkan --devices 0,7 -n 5
  expect_rc 1 "a device that does not exist"
  [[ "$err" == *"7"* ]] || die "the error does not name device 7: $err"
  run_v4 run --backend cpu --devices 0,1 -n 5
  expect_rc 1 "--devices with the CPU backend"
  [[ "$err" == *"--backend"* ]] || die "the error does not suggest --backend: $err"
}

# The split of the plan that runs `op` (the backend named on the split line before the
# "ops:" line listing it).
split_running() {
  awk -v op="$1=" '/ on [a-z]+ \(/ { for (i = 1; i <= NF; ++i) if ($i == "on") b = $(i + 1) }
                   /^ +ops:/ && index($0, " " op) { print b; exit }' <<<"$out"
}

# KV pages live in Vulkan memory and kv_store/attention run there (the plan says so),
# FP8 pages (with their recent-row window ring) too; greedy text with FP8 pages is the
# CPU's with FP8 pages.
vulkan_kv_device() {
  need_vulkan_device
  run_vk info -m "$MODEL" --plan --backend vulkan
  expect_rc 0 "v4 info --plan --backend vulkan"
  [[ $(split_running attention) == vulkan ]] || die "attention is not on vulkan: $out"
  [[ $(split_running kv_store) == vulkan ]] || die "kv_store is not on vulkan: $out"
  [[ "$out" == *"kv tier device: "*" in vulkan memory"* ]] || die "KV pages not in vulkan memory: $out"
  run_vk info -m "$MODEL" --plan --backend vulkan --kv-type fp8
  expect_rc 0 "v4 info --plan --backend vulkan --kv-type fp8"
  [[ $(split_running attention) == vulkan ]] || die "FP8 attention is not on vulkan: $out"
  [[ $(split_running kv_store) == vulkan ]] || die "FP8 kv_store is not on vulkan: $out"
  [[ "$out" == *"kv tier device: "*" in vulkan memory"* ]] || die "FP8 pages not in vulkan memory: $out"
  run_v4 run --backend cpu -n 200 --temp 0 --kv-type fp8
  expect_rc 0 "v4 run --backend cpu --kv-type fp8"
  local cpu_text=$out
  run_vk run --backend vulkan -n 200 --temp 0 --kv-type fp8
  expect_rc 0 "v4 run --backend vulkan --kv-type fp8"
  [[ "$out" == "$cpu_text" ]] || { show_diff "$cpu_text" "$out"; die "FP8 text differs from the CPU's"; }
}

# Small device and host budgets with a disk tier on Vulkan: blocks move between Vulkan
# memory, RAM and disk, the logits are bitwise those of all-device pages, and the stats
# count device blocks; for f16 pages and FP8 pages (their window ring in Vulkan memory).
vulkan_kv_tiers() {
  need_vulkan_device
  local args=(run --backend vulkan -p "Once upon a time" -n 120 --temp 0 --ctx 256 --kv-page 16)
  local type text
  mkdir -p "$WORK/disk"
  for type in f16 fp8; do
    run_vk "${args[@]}" --kv-type $type --logits-out "$WORK/all.bin"
    expect_rc 0 "all $type pages on vulkan"
    text=$out
    run_vk "${args[@]}" --kv-type $type --kv-vram 40K --kv-ram 40K --kv-disk "$WORK/disk" \
      --stats --logits-out "$WORK/tiered.bin"
    expect_rc 0 "tiered $type pages on vulkan"
    [[ "$out" == "$text" ]] || { show_diff "$text" "$out"; die "tiered $type text differs"; }
    cmp -s "$WORK/all.bin" "$WORK/tiered.bin" || die "tiered $type logits differ from all-device logits"
    grep -Eq '^kv device +[1-9][0-9]* blocks' <<<"$err" || die "no device blocks in the $type stats: $err"
    grep -Eq '^kv disk +[1-9][0-9]* blocks' <<<"$err" || die "no disk blocks in the $type stats: $err"
    [[ -z $(ls -A "$WORK/disk") ]] || die "the disk tier left files behind"
  done
}

# Sessions read and write KV rows in Vulkan memory: saving on Vulkan and resuming on Vulkan
# (and on the CPU, the same file) print the text of a plain run.
vulkan_kv_session() {
  need_vulkan_device
  local prompt="Once upon a time, there was a little girl named Lily"
  run_vk run --backend vulkan -p "$prompt" -n 30 --temp 0
  expect_rc 0 "vulkan run without a session"
  local plain=$out
  run_vk run --backend vulkan -p "$prompt" -n 30 --temp 0 --session "$WORK/s.v4s"
  expect_rc 0 "vulkan run --session (save)"
  [[ "$out" == "$plain" ]] || { show_diff "$plain" "$out"; die "first --session run differs"; }
  run_vk run --backend vulkan -p "$prompt" -n 30 --temp 0 --session "$WORK/s.v4s"
  expect_rc 0 "vulkan run --session (resume)"
  [[ "$err" == *"restored"* ]] || die "nothing restored: $err"
  [[ "$out" == "$plain" ]] || { show_diff "$plain" "$out"; die "resumed run on vulkan differs"; }
  run_v4 run --backend cpu -p "$prompt" -n 30 --temp 0 --session "$WORK/s.v4s"
  expect_rc 0 "cpu run --session with a file saved on vulkan"
  [[ "$err" == *"restored"* ]] || die "nothing restored on the CPU: $err"
  [[ "$out" == "$plain" ]] || { show_diff "$plain" "$out"; die "resumed run on the CPU differs"; }
  # FP8 pages: the window's exact rows are read from and written to the device ring.
  run_vk run --backend vulkan -p "$prompt" -n 30 --temp 0 --kv-type fp8
  expect_rc 0 "vulkan FP8 run without a session"
  plain=$out
  run_vk run --backend vulkan -p "$prompt" -n 30 --temp 0 --kv-type fp8 --session "$WORK/s8.v4s"
  expect_rc 0 "vulkan FP8 run --session (save)"
  run_vk run --backend vulkan -p "$prompt" -n 30 --temp 0 --kv-type fp8 --session "$WORK/s8.v4s"
  expect_rc 0 "vulkan FP8 run --session (resume)"
  [[ "$err" == *"restored"* ]] || die "nothing restored (FP8): $err"
  [[ "$out" == "$plain" ]] || { show_diff "$plain" "$out"; die "resumed FP8 run on vulkan differs"; }
  run_v4 run --backend cpu -p "$prompt" -n 30 --temp 0 --kv-type fp8 --session "$WORK/s8.v4s"
  expect_rc 0 "cpu FP8 run --session with a file saved on vulkan"
  [[ "$out" == "$plain" ]] || { show_diff "$plain" "$out"; die "resumed FP8 run on the CPU differs"; }
}

# Compiled pipelines are kept in a cache file and read back by the next process.
vulkan_pipeline_cache() {
  need_vulkan_device
  export V4_VULKAN_CACHE_DIR="$WORK/cache"
  run_vk run --backend vulkan -n 5 --temp 0
  expect_rc 0 "v4 run --backend vulkan (cache written)"
  local first=$out files
  files=$(find "$WORK/cache" -name 'vulkan-*.cache' -size +0)
  [[ -n "$files" ]] || die "no pipeline cache file in $WORK/cache"
  run_vk run --backend vulkan -n 5 --temp 0
  expect_rc 0 "v4 run --backend vulkan (cache read)"
  [[ "$out" == "$first" ]] || die "output changed with the pipeline cache: $out"
  echo garbage >"$files"  # a damaged file is ignored, never fatal
  run_vk run --backend vulkan -n 5 --temp 0
  expect_rc 0 "v4 run --backend vulkan (damaged cache)"
  [[ "$out" == "$first" ]] || die "output changed with a damaged cache: $out"
}

# Q8_0 weights with integer dot products (mul_mat_dot.comp): Vulkan quantises the
# activations like the CPU's q8 kernels, so the bundled model quantised to Q8_0 gives the
# CPU's 200-token greedy text and logits within 1e-4 (measured 9.5e-6 on lavapipe; the f32
# matvec's are 0.26 apart and its text leaves the CPU's at character 296); logits with the
# weights regrouped (--load read, Q8_0_R4/X16) and as in the file (--load mmap, Q8_0). Skips
# on a device without integer dot products.
vulkan_int_dot() {
  need_vulkan_device
  if [[ "$out" != *"int8 dot products"* ]]; then
    echo "SKIP ($test_name): no integer dot products: $out"
    exit 77
  fi
  run_v4 quantize "$MODEL" "$WORK/q8.gguf" Q8_0
  expect_rc 0 "v4 quantize Q8_0"
  # The text once (regrouped weights, the default load mode), the logits for both layouts.
  local args=(run -m "$WORK/q8.gguf" -n 200 --temp 0)
  run_v4 "${args[@]}" --backend cpu
  expect_rc 0 "cpu Q8_0"
  local cpu_text=$out
  run_vk "${args[@]}" --backend vulkan
  expect_rc 0 "vulkan Q8_0"
  if [[ "$out" != "$cpu_text" ]]; then
    show_diff "$cpu_text" "$out"
    die "Q8_0 text differs"
  fi
  for load in read mmap; do
    args=(run -m "$WORK/q8.gguf" --load $load -p "Once upon a time" -n 8 --temp 0)
    run_v4 "${args[@]}" --backend cpu --logits-out "$WORK/cpu.bin"
    expect_rc 0 "cpu Q8_0 --logits-out"
    run_vk "${args[@]}" --backend vulkan --logits-out "$WORK/vk.bin"
    expect_rc 0 "vulkan Q8_0 --logits-out"
    logits_close "$WORK/cpu.bin" "$WORK/vk.bin" 1e-4 || die "Q8_0 logits differ (--load $load)"
  done
}

# With the loader pointed at no driver: --backend vulkan fails clearly, auto falls back.
vulkan_no_device() {
  export VK_ICD_FILENAMES=/nonexistent VK_DRIVER_FILES=/nonexistent
  run_v4 run --backend vulkan -n 5 --temp 0
  expect_rc 1 "v4 run --backend vulkan without a driver"
  [[ "$err" == *"vulkan"* && "$err" == *"--backend cpu"* ]] || die "unclear message: $err"
  [[ -z "$out" ]] || die "stdout not empty: $out"
  run_v4 run --backend auto -n 200 --temp 0 -v
  expect_rc 0 "v4 run --backend auto without a driver"
  [[ "$out" == "$expected" ]] || { show_diff "$expected" "$out"; die "auto fallback text differs"; }
  [[ $(grep -c "backend auto: running on the CPU" <<<"$err") == 1 ]] ||
    die "expected one log line about the fallback: $err"
  run_v4 info --devices
  expect_rc 0 "v4 info --devices without a driver"
  [[ "$out" == *"vulkan: no device"* ]] || die "info --devices does not say there is none: $out"
}

declare -F "$test_name" >/dev/null || die "no such test"
"$test_name" "$@"
echo "PASS ($test_name)"
