#!/usr/bin/env bash
# End-to-end tests of the v4 tool. Usage (from ctest, see CMakeLists.txt):
#   cli_tests.sh TEST V4_BINARY REPO_DIR WORK_DIR [EXTRA...]
# Each test is a function below; it exits 0 on success, 1 with a message on failure.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
shift 4

expected=$(cat "$EXPECTED_FILE")

cli_run_expected() {
  run_v4 run -n 200 --temp 0
  expect_rc 0 "v4 run -n 200 --temp 0"
  if [[ "$out" != "$expected" ]]; then
    show_diff "$expected" "$out"
    die "stdout differs from tests/data/stories260K-expected.txt"
  fi
  [[ "$err" == *"tokens/s"* ]] || die "no timings on stderr: $err"
}

cli_kv_tiers() {
  # Issue 7: the same greedy text with most KV pages on disk, statistics on request, and a
  # clear error for a bad size or an unusable directory.
  mkdir -p "$WORK/kv"
  run_v4 run -n 200 --temp 0 --kv-page 16 --kv-vram 4K --kv-ram 40K --kv-disk "$WORK/kv" --stats
  expect_rc 0 "v4 run with a disk tier"
  [[ "$out" == "$expected" ]] || { show_diff "$expected" "$out"; die "text differs with KV on disk"; }
  [[ "$err" == *"kv disk"*"blocks"* && "$err" == *"hit rate"* ]] || die "no KV statistics: $err"
  [[ -z "$(ls -A "$WORK/kv")" ]] || die "files left in the KV directory: $(ls "$WORK/kv")"
  for t in f16 bf16 fp8; do
    run_v4 run -n 40 --temp 0 --kv-type $t --kv-page 16 --kv-vram 4K --kv-ram 4K --kv-disk "$WORK/kv"
    expect_rc 0 "v4 run --kv-type $t with a disk tier"
    [[ "$out" == "Once upon a time"* ]] || die "--kv-type $t: unexpected text: $out"
  done
  run_v4 run -n 5 --kv-ram 12Q
  expect_rc 2 "--kv-ram 12Q"
  [[ "$err" == *"bad size '12Q'"* ]] || die "no clear message for a bad size: $err"
  run_v4 run -n 5 --kv-vram 4K --kv-ram 4K --kv-disk "$WORK/missing-dir"
  expect_rc 1 "--kv-disk on a missing directory"
  [[ "$err" == *"missing-dir"* ]] || die "the error does not name the directory: $err"
  # Unusable: a regular file where the directory should be (root ignores permission bits, so
  # this is the unwritable case every user can reproduce); the file is left as it was.
  printf 'keep me' >"$WORK/not-a-dir"
  run_v4 run -n 5 --kv-vram 4K --kv-ram 4K --kv-disk "$WORK/not-a-dir"
  expect_rc 1 "--kv-disk on a regular file"
  [[ "$err" == *"not-a-dir"* ]] || die "the error does not name the path: $err"
  [[ "$(cat "$WORK/not-a-dir")" == "keep me" ]] || die "--kv-disk changed the file it could not use"
  run_v4 run -n 5 --kv-vram 4K --kv-ram 4K
  expect_rc 1 "budgets too small without a disk tier"
  [[ "$err" == *"--kv-disk"* ]] || die "the error does not suggest --kv-disk: $err"
}

cli_session() {
  # Issue 7: --session saves the prompt's cache and a second run reuses it (same text).
  local prompt="Once upon a time, there was a little girl named Lily"
  run_v4 run -p "$prompt" -n 30 --temp 0
  expect_rc 0 "v4 run without a session"
  local plain=$out
  run_v4 run -p "$prompt" -n 30 --temp 0 --session "$WORK/s.v4s"
  expect_rc 0 "v4 run --session (first)"
  [[ "$out" == "$plain" ]] || { show_diff "$plain" "$out"; die "first --session run differs"; }
  [[ -f "$WORK/s.v4s" ]] || die "no session file written"
  [[ "$err" != *"restored"* ]] || die "a session was restored on the first run: $err"
  run_v4 run -p "$prompt" -n 30 --temp 0 --session "$WORK/s.v4s"
  expect_rc 0 "v4 run --session (second)"
  [[ "$out" == "$plain" ]] || { show_diff "$plain" "$out"; die "resumed --session run differs"; }
  [[ "$err" =~ session:\ ([0-9]+)\ of\ ([0-9]+)\ prompt\ tokens\ restored ]] || die "nothing restored: $err"
  (( BASH_REMATCH[1] + 1 == BASH_REMATCH[2] )) || die "not all but the last prompt token restored: $err"
  # A longer prompt reuses the saved prefix.
  run_v4 run -p "$prompt who" -n 10 --temp 0 --session "$WORK/s.v4s"
  expect_rc 0 "v4 run --session with a longer prompt"
  [[ "$err" == *"restored"* ]] || die "the prefix was not reused: $err"
  # A damaged session is ignored with a warning; the output is still right.
  printf 'garbage' >"$WORK/bad.v4s"
  run_v4 run -p "$prompt" -n 30 --temp 0 --session "$WORK/bad.v4s"
  expect_rc 0 "v4 run --session with a damaged file"
  [[ "$out" == "$plain" ]] || die "output differs after a damaged session"
  [[ "$err" == *"ignoring session"* ]] || die "no warning for a damaged session: $err"
  ls "$WORK" | grep -q '\.tmp-' && die "temporary session files left: $(ls "$WORK")"
  return 0
}

cli_kv_tiers_16k() {
  # Issue 7: on a v4 mkmodel model at 16K tokens of context, greedy text and every logits row
  # are identical with most KV pages on disk (device and host budgets of two pages per layer).
  run_v4 mkmodel --shape tiny,ctx=16384 --type f32 --seed 1 -o tiny16k.gguf
  expect_rc 0 "v4 mkmodel tiny,ctx=16384"
  local args=(run -m tiny16k.gguf -n 16000 --temp 0 --ctx 16384 --kv-type f16 --kv-page 128)
  run_v4 "${args[@]}" --logits-out ram.bin
  expect_rc 0 "16K tokens all in RAM"
  local ram=$out
  mkdir -p kv
  # tiny: 2 layers, K+V rows of 32 f16 values -> a 128-token block is 16 KiB.
  run_v4 "${args[@]}" --kv-vram 64K --kv-ram 64K --kv-disk kv --stats --logits-out disk.bin
  expect_rc 0 "16K tokens mostly on disk"
  [[ "$out" == "$ram" ]] || die "greedy text differs with KV on disk"
  cmp -s ram.bin disk.bin || die "logits differ with KV on disk"
  [[ "$err" =~ kv\ disk\ +([0-9]+)\ blocks ]] && (( BASH_REMATCH[1] > 200 )) || die "KV was not mostly on disk: $err"
  echo "$err" | grep "^kv"
}

cli_session_kill() {
  # Issue 7: kill -9 while a session is being written never leaves a half-written file under
  # the final name: after every kill the file is absent or loads.
  run_v4 mkmodel --shape tiny,ctx=16384 --type f32 --seed 1 -o tiny.gguf
  expect_rc 0 "v4 mkmodel"
  local args=(run -m tiny.gguf -f "$REPO/tests/data/tinystories-sample.txt" -n 1 --temp 0
              --ctx 16384 --kv-type f16)
  # An uninterrupted save always resumes (so this test can fail); its time sets the kill times.
  local t0 t1
  t0=$(date +%s.%N)
  run_v4 "${args[@]}" --session s.v4s
  t1=$(date +%s.%N)
  expect_rc 0 "save without a kill"
  run_v4 "${args[@]}" --session s.v4s
  [[ "$err" == *"restored"* ]] || die "an uninterrupted session was not restored: $err"
  local resumed=0
  for f in 0.5 0.8 0.9 0.95 1.0 1.02 1.05 1.1; do
    rm -f s.v4s
    "$V4" "${args[@]}" --session s.v4s >/dev/null 2>&1 &
    local pid=$!
    sleep "$(awk -v a="$t0" -v b="$t1" -v f="$f" 'BEGIN { print (b - a) * f }')"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [[ -e s.v4s ]]; then
      run_v4 "${args[@]}" --session s.v4s
      expect_rc 0 "resume after kill -9 at ${f} x the run time"
      [[ "$err" != *"ignoring session"* ]] || die "a damaged session under the final name after kill -9: $err"
      [[ "$err" == *"restored"* ]] || die "the session was not restored: $err"
      (( ++resumed ))
    fi
  done
  echo "sessions present and resumed after kill -9: $resumed of 8"
}

cli_kv_disk_full() {
  # Issue 7: a full disk under the disk tier (a 256 KiB tmpfs) is a clear error, not a crash
  # or wrong output, and leaves no file behind. Skipped where mounting is not allowed.
  mkdir -p small
  if ! mount -t tmpfs -o size=256k tmpfs small 2>/dev/null; then
    echo "SKIP: cannot mount a size-limited tmpfs here (needs root)"
    exit 77
  fi
  trap 'umount "$WORK/small" 2>/dev/null' EXIT
  run_v4 run -n 400 --temp 0 --kv-page 16 --kv-vram 4K --kv-ram 4K --kv-disk small
  local left
  left=$(ls -A small)
  umount small || die "cannot unmount the test tmpfs"
  [[ -z "$left" ]] || die "files left on the full disk: $left"
  trap - EXIT
  expect_rc 1 "v4 run with a full disk tier"
  [[ "$err" == *"small"* && ( "$err" == *"space"* || "$err" == *"ENOSPC"* ) ]] ||
    die "no clear message for a full disk: $err"
  [[ "$err" != *"Segmentation"* && "$err" != *"Aborted"* ]] || die "crashed: $err"
  echo "$err" | tail -1
}

cli_kv_disk_signal() {
  # Issue 7: SIGTERM or SIGINT while decoding with a disk tier stops the run cleanly and
  # removes the tier's file.
  run_v4 mkmodel --shape tiny,ctx=16384 --type f32 --seed 1 -o tiny.gguf
  expect_rc 0 "v4 mkmodel"
  mkdir -p kv
  for sig in TERM INT; do
    "$V4" run -m tiny.gguf -n 16000 --temp 0 --ctx 16384 --kv-page 128 --kv-vram 64K --kv-ram 64K \
      --kv-disk kv >/dev/null 2>"$WORK/stderr" &
    local pid=$!
    for _ in $(seq 50); do [[ -n "$(ls -A kv)" ]] && break; sleep 0.1; done
    [[ -n "$(ls -A kv)" ]] || die "the disk tier's file never appeared"
    sleep 0.3
    kill -s "$sig" "$pid"
    wait "$pid"
    rc=$?
    [[ $rc == 130 ]] || die "SIG$sig: expected exit 130, got $rc: $(cat "$WORK/stderr")"
    grep -q "interrupted" "$WORK/stderr" || die "SIG$sig: no message: $(cat "$WORK/stderr")"
    [[ -z "$(ls -A kv)" ]] || die "SIG$sig left files behind: $(ls kv)"
  done
}

cli_kv_fp8_perplexity() {
  # Issue 7: FP8 KV pages keep perplexity within 2 % of f32 pages (512-token windows), and the
  # most likely next token agrees with f32 pages at >= 90 % of positions (teacher forcing).
  run_v4 perplexity -f "$REPO/tests/data/tinystories-sample.txt" --ctx 512 --kv-type fp8 \
    --kv-compare f32 --json
  expect_rc 0 "v4 perplexity --kv-type fp8 --kv-compare f32"
  need_python
  python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin.read().splitlines() if l.strip()][-1]
assert r["test"] == "kv_compare", r
ratio = r["perplexity"] / r["compare_perplexity"]
print("fp8 %.4f vs f32 %.4f (x%.4f), top-1 agreement %.4f" % (r["perplexity"], r["compare_perplexity"], ratio, r["top1_agreement"]))
sys.exit(0 if abs(ratio - 1) < 0.02 and r["top1_agreement"] >= 0.90 else 1)
' <<<"$out" || die "FP8 KV pages not within 2 % / 90 %: $out"
}

cli_kv_fp8_tinyllama() {
  # Issue 7: top-1 agreement of FP8 with f32 pages on a tinyllama-1.1b-shaped model (random
  # weights, so only agreement is meaningful), teacher forcing on the sample text.
  run_v4 mkmodel --shape tinyllama-1.1b --type q4_0 --vocab-from "$REPO/tests/data/ggml-vocab-llama-spm.gguf" \
    --seed 1 -o tl.gguf
  expect_rc 0 "v4 mkmodel tinyllama-1.1b"
  run_v4 perplexity -m tl.gguf -f "$REPO/tests/data/tinystories-sample.txt" --ctx 512 --chunks 3 \
    --kv-type fp8 --kv-compare f32 --json
  expect_rc 0 "v4 perplexity on the tinyllama shape"
  python3 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin.read().splitlines() if l.strip()][-1]
print("top-1 agreement %.4f" % r["top1_agreement"])
sys.exit(0 if r["top1_agreement"] >= 0.90 else 1)
' <<<"$out" || die "FP8 top-1 agreement below 90 %: $out"
}

cli_backend_cuda() {
  # Issue 6: with a CUDA device, --backend cuda prints the CPU's text; without one (or in a
  # build without CUDA) it exits 1 with a clear message, and --backend auto still runs on the
  # CPU and prints the right text.
  run_v4 info --devices
  expect_rc 0 "v4 info --devices"
  local devices=$out
  run_v4 run --backend cuda -n 200 --temp 0
  if [[ "$devices" == *"cuda:"$'\n'"  0: "* ]]; then
    expect_rc 0 "v4 run --backend cuda on a CUDA device"
    [[ "$out" == "$expected" ]] || { show_diff "$expected" "$out"; die "CUDA text differs from the CPU's"; }
  else
    expect_rc 1 "v4 run --backend cuda without a CUDA device"
    [[ "$err" == *"no CUDA device"* || "$err" == *"not compiled"* ]] || die "no clear message: $err"
  fi
  run_v4 run --backend auto -n 200 --temp 0
  expect_rc 0 "v4 run --backend auto"
  [[ "$out" == "$expected" ]] || { show_diff "$expected" "$out"; die "--backend auto text differs"; }
}

cli_run_prefix() {
  run_v4 run -p "Once upon a time" -n 40 --temp 0
  expect_rc 0 "v4 run -p 'Once upon a time' -n 40 --temp 0"
  [[ "$out" == "Once upon a time"?* ]] || die "stdout does not start with the prompt: $out"
  if [[ "$expected" != "$out"* ]]; then
    show_diff "$expected" "$out"
    die "stdout is not a prefix of the expected text"
  fi
}

cli_run_prompt_ids() {
  # --prompt-ids 1 (BOS alone) is the empty prompt.
  run_v4 run -n 20 --temp 0
  expect_rc 0 "v4 run -n 20 --temp 0"
  local plain=$out
  run_v4 run --prompt-ids 1 -n 20 --temp 0
  expect_rc 0 "v4 run --prompt-ids 1"
  [[ "$out" == "$plain" ]] || { show_diff "$plain" "$out"; die "--prompt-ids 1 differs from no prompt"; }
  # The ids of a text prompt (from v4 tokenize) give the same output as the text.
  run_v4 tokenize -m "$MODEL" -p "Once upon a time" --ids
  expect_rc 0 "v4 tokenize --ids"
  local ids=${out// /,}
  [[ "$ids" == 1,* ]] || die "tokenize --ids does not start with BOS (1): $out"
  run_v4 run -p "Once upon a time" -n 20 --temp 0
  expect_rc 0 "v4 run -p 'Once upon a time'"
  local from_text=$out
  run_v4 run --prompt-ids "$ids" -n 20 --temp 0
  expect_rc 0 "v4 run --prompt-ids $ids"
  [[ "$out" == "$from_text" ]] || { show_diff "$from_text" "$out"; die "--prompt-ids $ids differs from the text prompt"; }
  # Out-of-range ids and malformed lists are usage errors.
  run_v4 run --prompt-ids 1,999999 -n 1
  expect_rc 2 "v4 run --prompt-ids 1,999999"
  run_v4 run --prompt-ids 1,x -n 1
  expect_rc 2 "v4 run --prompt-ids 1,x"
}

cli_logits_out() {
  local check=$1
  rm -f "$WORK/logits.bin"
  run_v4 run -n 5 --temp 0 --logits-out "$WORK/logits.bin"
  expect_rc 0 "v4 run -n 5 --temp 0 --logits-out"
  local size
  size=$(stat -c %s "$WORK/logits.bin") || die "no logits file"
  [[ $size == $((5 * 512 * 4)) ]] || die "logits file has $size bytes, expected $((5 * 512 * 4))"
  "$check" "$MODEL" "$WORK/logits.bin" "$WORK/stdout" 5 || die "check_logits failed"
}

cli_seed() {
  run_v4 run -p "Once upon a time" -n 60 --temp 1 --seed 42
  expect_rc 0 "v4 run --seed 42"
  local a=$out
  [[ "$err" != *"seed:"* ]] || die "a given seed must not be announced: $err"
  run_v4 run -p "Once upon a time" -n 60 --temp 1 --seed 42
  local b=$out
  [[ "$a" == "$b" ]] || { show_diff "$a" "$b"; die "same seed, different text"; }
  run_v4 run -p "Once upon a time" -n 60 --temp 1 --seed 43
  [[ "$out" != "$a" ]] || die "seeds 42 and 43 gave the same text: $out"
  run_v4 run -p "Once upon a time" -n 5 --temp 1
  expect_rc 0 "v4 run without --seed"
  [[ "$err" == *"seed: "* ]] || die "a random seed must be printed on stderr: $err"
}

cli_errors() {
  local version=$1
  # Missing model file: runtime error, message on stderr, nothing on stdout.
  run_v4 run -m "$WORK/no-such-model.gguf" -p hello
  expect_rc 1 "v4 run -m missing"
  [[ -z "$out" ]] || die "stdout not empty on error: $out"
  [[ "$err" == *"v4: error:"*"no-such-model.gguf"* ]] || die "unclear message: $err"
  # $V4_MODEL pointing nowhere is reported with a hint.
  V4_MODEL="$WORK/nowhere.gguf" run_v4 run -n 1
  expect_rc 1 "V4_MODEL=missing v4 run"
  [[ "$err" == *"nowhere.gguf"* ]] || die "unclear message: $err"
  # Usage errors: exit 2, nothing on stdout.
  local args
  for args in "run --bogus" "bogus" "" "info" "run -n notanumber" "run -p a -f b" \
              "tokenize -p x"; do
    # shellcheck disable=SC2086
    run_v4 $args
    expect_rc 2 "v4 $args"
    [[ -z "$out" ]] || die "stdout not empty on usage error (v4 $args): $out"
    [[ -n "$err" ]] || die "no message on usage error (v4 $args)"
  done
  # A truncated model file.
  head -c 5000 "$MODEL" >"$WORK/truncated.gguf"
  run_v4 info -m "$WORK/truncated.gguf"
  expect_rc 1 "v4 info -m truncated.gguf"
  [[ -z "$out" ]] || die "stdout not empty on error: $out"
  [[ "$err" == *"v4: error:"* ]] || die "unclear message: $err"
  run_v4 run -m "$WORK/truncated.gguf" -n 1
  expect_rc 1 "v4 run -m truncated.gguf"
  # Help and version.
  local sub
  for sub in "" run chat info tokenize; do
    # shellcheck disable=SC2086
    run_v4 $sub --help
    expect_rc 0 "v4 $sub --help"
    [[ "$out" == *"Usage"* || "$out" == *"usage"* ]] || die "no usage text for v4 $sub --help"
  done
  run_v4 --version
  expect_rc 0 "v4 --version"
  [[ "$out" == *"$version"* ]] || die "--version printed '$out', expected $version"
}

cli_chat_pipe() {
  "$V4" chat -n 20 --temp 0 <<<$'Once upon a time\nThe cat' >"$WORK/stdout" 2>"$WORK/stderr"
  rc=$?
  out=$(cat "$WORK/stdout")
  err=$(cat "$WORK/stderr")
  expect_rc 0 "v4 chat (piped)"
  local lines
  lines=$(wc -l <"$WORK/stdout")
  [[ $lines == 2 ]] || die "expected 2 lines, got $lines: $out"
  [[ -n "$(sed -n 1p "$WORK/stdout")" && -n "$(sed -n 2p "$WORK/stdout")" ]] || die "empty reply: $out"
  [[ "$err" == *"template: none (plain continuation)"* ]] || die "no template line on stderr: $err"
  [[ "$out" != *"> "* ]] || die "prompt printed on stdout in pipe mode"
  # The first reply is the continuation v4 run gives for the same prompt.
  local first
  first=$(sed -n 1p "$WORK/stdout")
  run_v4 run -p "Once upon a time" -n 20 --temp 0
  [[ "$out" == "Once upon a time$first" ]] || die "chat reply '$first' differs from run: '$out'"
  # /reset forgets the conversation: the same line then gives the same reply; /quit ends.
  "$V4" chat -n 20 --temp 0 <<<$'Once upon a time\n/reset\nOnce upon a time\n/quit\nThe cat' \
    >"$WORK/stdout" 2>"$WORK/stderr" || die "chat with /reset failed: $(cat "$WORK/stderr")"
  lines=$(wc -l <"$WORK/stdout")
  [[ $lines == 2 ]] || die "expected 2 lines with /reset and /quit, got $lines: $(cat "$WORK/stdout")"
  [[ "$(sed -n 1p "$WORK/stdout")" == "$(sed -n 2p "$WORK/stdout")" ]] ||
    die "replies differ after /reset: $(cat "$WORK/stdout")"
}

cli_chat_template() {
  # The bundled model has no template; give it ChatML: the tool must render each turn with
  # it (the reply then follows "<|im_start|>assistant\n") and say which family it is.
  "$V4" chat -n 12 --temp 0 --chat-template "$REPO/tests/data/chat_templates/chatml.jinja" \
    <<<$'Once upon a time\nThe cat' >"$WORK/stdout" 2>"$WORK/stderr"
  rc=$?
  out=$(cat "$WORK/stdout")
  err=$(cat "$WORK/stderr")
  expect_rc 0 "v4 chat --chat-template chatml.jinja"
  [[ "$err" == *"template: chatml"* ]] || die "no 'template: chatml' on stderr: $err"
  [[ -n "$out" ]] || die "no reply"
  # A template is really applied: the replies differ from plain continuation.
  "$V4" chat -n 12 --temp 0 <<<$'Once upon a time\nThe cat' >"$WORK/plain" 2>/dev/null
  [[ "$out" != "$(cat "$WORK/plain")" ]] || die "templated replies equal the plain continuation"
}

cli_tokenize_bpe() {
  # GPT-2's byte-level BPE: "Hello world" is 15496 995 in every GPT-2 tokenizer.
  run_v4 tokenize -m "$REPO/tests/data/ggml-vocab-gpt-2.gguf" --ids --no-bos -p "Hello world"
  expect_rc 0 "v4 tokenize gpt-2"
  [[ "$out" == "15496 995" ]] || die "gpt-2 ids: '$out'"
}

cli_tokenize_vectors() {
  # Every case of every vocabulary's test vectors through the CLI, as a user would run it:
  # v4 tokenize --ids --no-bos -f CASE.
  local n=0 vocab inp
  for inp in "$REPO"/tests/data/ggml-vocab-*.gguf.inp; do
    vocab=${inp%.inp}
    python3 - "$inp" "$WORK/case" <<'PY' || die "cannot split $inp"
import sys, os
inp, prefix = sys.argv[1], sys.argv[2]
cases = open(inp, encoding="utf-8", newline="").read().split("\n__ggml_vocab_test__\n")[:-1]
for i, c in enumerate(cases):
    with open(f"{prefix}.{i}", "w", encoding="utf-8", newline="") as f:
        f.write(c)
PY
    local i=0
    while IFS= read -r want || [[ -n "$want" ]]; do
      "$V4" tokenize -m "$vocab" --ids --no-bos -f "$WORK/case.$i" >"$WORK/stdout" 2>"$WORK/stderr" ||
        die "$(basename "$vocab") case $i: exit $? $(cat "$WORK/stderr")"
      got=$(tr -s ' \n' ' ' <"$WORK/stdout" | sed 's/ *$//; s/^ *//')
      want=$(sed 's/ *$//; s/^ *//' <<<"$want")
      [[ "$got" == "$want" ]] || die "$(basename "$vocab") case $i: got '$got', want '$want'"
      i=$((i + 1))
      n=$((n + 1))
    done <"$vocab.out"
    rm -f "$WORK"/case.*
  done
  ((n >= 200)) || die "only $n cases found"
  echo "$n cases passed"
}

cli_info() {
  run_v4 info -m "$MODEL"
  expect_rc 0 "v4 info"
  [[ "$out" == *"blk.0.attn_q.weight"* ]] || die "no blk.0.attn_q.weight in: $out"
  [[ "$out" == *"llama"* ]] || die "no 'llama' in: $out"
  [[ "$out" == *"general.architecture"* ]] || die "no metadata in: $out"
  run_v4 info -m "$MODEL" --plan
  expect_rc 0 "v4 info --plan"
  local plan=${out#*$'\nplan:\n'}
  [[ "$out" == *$'\nplan:\n'* && -n "$plan" ]] || die "empty plan: $out"
  run_v4 info -m "$MODEL" --check
  expect_rc 0 "v4 info --check"
  [[ "$out" == *"check: ok"* ]] || die "no 'check: ok' in: $out"
}

cli_tokenize() {
  run_v4 tokenize -m "$MODEL" -p "Once upon a time" --ids
  expect_rc 0 "v4 tokenize --ids"
  [[ "$out" =~ ^1( [0-9]+)+$ ]] || die "unexpected ids: $out"
  local with_bos=$out
  run_v4 tokenize -m "$MODEL" -p "Once upon a time" --ids --no-bos
  [[ "1 $out" == "$with_bos" ]] || die "--no-bos gave '$out', with BOS '$with_bos'"
  run_v4 tokenize -m "$MODEL" -p "Once upon a time"
  expect_rc 0 "v4 tokenize"
  [[ "$(sed -n 1p "$WORK/stdout")" == $'1\t\'<s>\'' ]] || die "first line is not BOS: $out"
  [[ $(wc -l <"$WORK/stdout") == $(wc -w <<<"$with_bos") ]] || die "one line per token expected: $out"
  printf 'Once upon a time' | "$V4" tokenize -m "$MODEL" --ids >"$WORK/stdin_ids" ||
    die "tokenize from stdin failed"
  [[ "$(cat "$WORK/stdin_ids")" == "$with_bos" ]] || die "stdin gave $(cat "$WORK/stdin_ids")"
}

example_simple() {
  local simple=$V4  # the example binary is passed in place of the tool
  "$simple" >"$WORK/stdout" 2>"$WORK/stderr"
  rc=$?
  out=$(cat "$WORK/stdout")
  err=$(cat "$WORK/stderr")
  expect_rc 0 "examples/simple"
  [[ -n "$out" ]] || die "no output"
  [[ "$expected" == "$out"* ]] || { show_diff "$expected" "$out"; die "greedy text is not a prefix of the expected text"; }
  "$simple" "$WORK/no-such-model.gguf" >"$WORK/stdout" 2>"$WORK/stderr"
  rc=$?
  [[ $rc == 1 ]] || die "a missing model must exit 1, got $rc"
  [[ -s "$WORK/stderr" ]] || die "no message for a missing model"
}

shared_lib_exports() {
  local lib=$V4  # the shared library is passed in place of the tool
  local syms bad
  syms=$(nm -D --defined-only "$lib") || die "nm failed on $lib"
  # Every defined dynamic symbol except the version node must be v4_*.
  bad=$(awk '$2 != "A" && $3 !~ /^v4_/ {print}' <<<"$syms")
  [[ -z "$bad" ]] || die "symbols outside the v4_ namespace are exported:
$bad"
  [[ $(awk '$2 == "T" && $3 ~ /^v4_/' <<<"$syms" | wc -l) -gt 20 ]] ||
    die "too few v4_ functions exported: $syms"
  grep -Eq ' T v4_generate(@@V4ENGINE_0)?$' <<<"$syms" || die "v4_generate is not exported"
  # Every exported function carries the ABI's symbol version.
  bad=$(awk '$2 == "T" && $3 !~ /@@V4ENGINE_0$/ {print}' <<<"$syms")
  [[ -z "$bad" ]] || die "unversioned exports (lib/api/v4engine.map):
$bad"
  local soname
  soname=$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')
  [[ "$soname" == "libv4engine.so.0" ]] || die "SONAME is '$soname', expected libv4engine.so.0"
}

declare -F "$test_name" >/dev/null || die "no such test"
"$test_name" "$@"
echo "PASS ($test_name)"
