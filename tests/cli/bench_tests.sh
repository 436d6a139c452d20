#!/usr/bin/env bash
# End-to-end tests of `v4 mkmodel`, `v4 bench` and `v4 perplexity`. Usage (from ctest, see
# bench.cmake):
#   bench_tests.sh TEST V4_BINARY REPO_DIR WORK_DIR
# Each test is a function below; it exits 0 on success, 1 with a message on failure, 77 when
# something it needs (python3, for checking JSON) is missing.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
TEXT="$REPO/tests/data/tinystories-sample.txt"
SPM_VOCAB="$REPO/tests/data/ggml-vocab-llama-spm.gguf"

# mkmodel --shape tiny: same seed => same bytes (whatever the thread count), another seed =>
# other bytes; the file passes `info --check` and `run` generates from it.
mkmodel_tiny() {
  run_v4 mkmodel --shape tiny --seed 7 -o a.gguf
  expect_rc 0 "mkmodel tiny"
  run_v4 mkmodel --shape tiny --seed 7 --threads 1 -o b.gguf
  expect_rc 0 "mkmodel tiny, 1 thread"
  run_v4 mkmodel --shape tiny --seed 8 -o c.gguf
  expect_rc 0 "mkmodel tiny, seed 8"
  cmp -s a.gguf b.gguf || die "same seed, different bytes"
  ! cmp -s a.gguf c.gguf || die "different seeds, same bytes"
  [[ -z "$(ls ./*.tmp.* 2>/dev/null)" ]] || die "temporary files left behind"

  run_v4 info -m a.gguf --check
  expect_rc 0 "info --check"
  [[ "$out" == *"check: ok"* ]] || die "info --check did not say ok: $out"
  [[ "$out" == *"n_embd:      64"* && "$out" == *"n_layer:     2"* ]] || die "wrong shape: $out"
  [[ "$out" == *"llama.attention.head_count_kv"*"= 2"* ]] || die "kv heads not 2: $out"
  [[ "$out" == *"general.file_type"*"= 1"* ]] || die "F16 file_type missing: $out"
  [[ "$err" != *"warning"* ]] || die "loading warned: $err"

  run_v4 run -m a.gguf -n 16 --temp 0 -p "Once upon a time"
  expect_rc 0 "run on the generated model"
  [[ "$err" == *"generated:    16 tokens"* ]] || die "did not generate 16 tokens: $err"

  # Quantised types, a custom shape and the vocabulary padded to the shape's size.
  for t in q8_0 q4_0; do
    run_v4 mkmodel --shape tiny --type $t --seed 1 -o $t.gguf
    expect_rc 0 "mkmodel --type $t"
    run_v4 info -m $t.gguf --check
    expect_rc 0 "info --check of $t"
    [[ "$out" == *"token_embd.weight"*"${t^^}"* ]] || die "token_embd is not ${t^^}: $out"
  done
  run_v4 mkmodel --shape embd=96,layers=1,heads=3,kv_heads=1,ff=64,vocab=600,ctx=64 --type q8_0 \
    -o custom.gguf
  expect_rc 0 "custom shape"
  run_v4 run -m custom.gguf -n 8 --temp 0 -p "Hi"
  expect_rc 0 "run on the custom shape"
  run_v4 info -m custom.gguf
  [[ "$out" == *"n_vocab:     600"* ]] || die "vocabulary not padded to 600: $out"

  # A 32000-token shape takes the Llama 2 vocabulary; Q4_0 keeps token_embd at Q4_0 and makes
  # output.weight Q6_K.
  if [[ -f "$SPM_VOCAB" ]]; then
    run_v4 mkmodel --shape tinyllama-1.1b,embd=256,layers=1,heads=4,kv_heads=2,ff=256 \
      --type q4_0 -o small-tl.gguf
    expect_rc 0 "reduced tinyllama shape"
    run_v4 info -m small-tl.gguf --check
    expect_rc 0 "info --check of the reduced tinyllama shape"
    [[ "$out" == *"n_vocab:     32000"* ]] || die "not the 32000-token vocabulary: $out"
    [[ "$out" =~ token_embd.weight\ +Q4_0 ]] || die "token_embd is not Q4_0: $out"
    [[ "$out" =~ output.weight\ +Q6_K ]] || die "output.weight is not Q6_K: $out"
    run_v4 tokenize -m small-tl.gguf -p "Hello world" --ids
    [[ "$out" == "1 15043 3186" ]] || die "not Llama 2's tokenizer: $out"
  fi
}

# The read load mode regroups Q4_0 / Q8_0 matrices for the CPU kernels: rows of whole
# 512-value super-groups into the X16 layouts, rows of 128-value groups into R4. mmap keeps the
# file's blocks. Both must compute the same logits up to summation order: the float sums
# differ in order, which now and then flips an activation's 8-bit rounding in a later layer
# (measured: < 1e-6 where none flips, up to 0.041 on logits of size ~4 where one does; a
# wrong layout is off by whole units). The kernels alone are compared tightly in
# unit_tests [repack].
regrouped_layouts() {
  need_python
  for t in q4_0 q8_0; do
    for shape in embd=512,ff=1536 embd=384,ff=640; do
      run_v4 mkmodel --shape "$shape,layers=2,heads=8,kv_heads=2,vocab=600,ctx=128" --type $t \
        --seed 3 -o m.gguf
      expect_rc 0 "mkmodel $t $shape"
      # The plan names the layout each matmul computes with: X16 for 512-value super-groups,
      # R4 for 128-value groups, where the CPU has the AVX-512 VNNI kernels.
      run_v4 info -m m.gguf --plan
      expect_rc 0 "info --plan ($t $shape)"
      if [[ "$out" == *"avx512-vnni"* ]]; then
        layout=$([[ "$shape" == embd=512* ]] && echo X16 || echo R4)
        [[ "$out" == *"kernel ${t^^}_$layout: matvec avx512-vnni"* ]] ||
          die "$t $shape: the plan does not use ${t^^}_$layout: $out"
      fi
      run_v4 run -m m.gguf -n 8 --temp 0 -p "Hi" --load read -v --logits-out read.bin
      expect_rc 0 "run --load read ($t $shape)"
      [[ "$err" =~ 1[4-6]\ weight\ tensors\ regrouped ]] || die "$t $shape: not regrouped: $err"
      run_v4 run -m m.gguf -n 8 --temp 0 -p "Hi" --load mmap --logits-out mmap.bin
      expect_rc 0 "run --load mmap ($t $shape)"
      logits_close read.bin mmap.bin 0.1 || die "$t $shape: regrouped logits differ"
    done
  done
}

mkmodel_errors() {
  run_v4 mkmodel --shape nosuch -o x.gguf
  expect_rc 2 "unknown preset"
  [[ "$err" == *"unknown shape preset 'nosuch'"*"tiny"*"tinyllama-1.1b"*"llama-8b"* ]] ||
    die "no list of presets: $err"
  run_v4 mkmodel --shape tiny,wings=2 -o x.gguf
  expect_rc 2 "unknown shape key"
  [[ "$err" == *"wings"*"kv_heads"* ]] || die "no list of keys: $err"
  run_v4 mkmodel --shape tiny,heads=3 -o x.gguf
  expect_rc 2 "heads not dividing embd"
  run_v4 mkmodel --shape tiny --type q3_x -o x.gguf
  expect_rc 2 "unknown type"
  run_v4 mkmodel --shape tiny -o
  expect_rc 2 "missing output"
  run_v4 mkmodel --shape embd=64 -o x.gguf
  expect_rc 2 "custom shape without layers"
  if [[ -f "$SPM_VOCAB" ]]; then
    run_v4 mkmodel --shape tiny,vocab=512 --vocab-from "$SPM_VOCAB" -o x.gguf
    expect_rc 2 "vocabulary size mismatch"
    [[ "$err" == *"32000 tokens"*"vocab=512"* ]] || die "mismatch not explained: $err"
  fi
  run_v4 mkmodel --shape tiny --vocab-from missing.gguf -o x.gguf
  expect_rc 1 "missing vocabulary"
  run_v4 mkmodel --shape tiny -o no-such-dir/x.gguf
  expect_rc 1 "output directory missing"
  [[ ! -e x.gguf ]] || die "a failed run left x.gguf"
  run_v4 mkmodel --arch gpt9 --shape tiny -o x.gguf
  expect_rc 2 "unknown arch"
}

# Checks every JSON line of stdout: pp/tg records have the required keys and positive speed.
check_bench_json() {
  need_python
  printf '%s\n' "$out" | python3 -c '
import json, math, sys
tests = []
for line in sys.stdin:
    if not line.strip():
        continue
    r = json.loads(line)
    tests.append(r["test"])
    if r["test"] == "membw":
        assert r["membw_gbs"] > 0 and r["threads"] >= 1, r
        continue
    for k in ("test", "model", "type", "threads", "tokens_per_s", "stddev",
              "weight_bytes_per_token", "membw_gbs", "load_mode"):
        assert k in r, (k, r)
    assert r["tokens_per_s"] > 0 and math.isfinite(r["tokens_per_s"]), r
    assert r["stddev"] >= 0, r
    assert r["weight_bytes_per_token"] > 0, r
    assert r["type"] == "F32", r
    assert r["load_mode"] in ("read", "mmap", "mlock"), r
    if r["test"].startswith("tg"):
        assert r["roofline_fraction"] > 0, r
expected = sys.argv[1].split(",")
assert tests == expected, (tests, expected)
' "$1" || die "bad JSON output:
$out"
}

# The real benchmark on the bundled model (label bench).
bench_json() {
  run_v4 bench -m "$MODEL" -p 32 -n 16 -r 2 --threads 2 --json
  expect_rc 0 "bench --json"
  check_bench_json membw,pp32,tg16
  run_v4 bench -m "$MODEL" -p 32 -n 16 -r 2 --threads 1 --depth 64 --json
  expect_rc 0 "bench --depth --json"
  check_bench_json membw,pp32@d64,tg16@d64
  run_v4 bench -m "$MODEL" -p 16 -n 8 -r 1
  expect_rc 0 "bench, human table"
  [[ "$out" == *"membw:"*"GB/s"* && "$out" == *"| pp16 "* && "$out" == *"| tg8 "* ]] ||
    die "no table: $out"
  run_v4 bench --membw --threads 1 --json
  expect_rc 0 "bench --membw"
  check_bench_json membw
}

bench_tokenize() {
  [[ -f "$SPM_VOCAB" ]] || { echo "SKIP: $SPM_VOCAB missing"; exit 77; }
  run_v4 bench --tokenize -m "$SPM_VOCAB" -f "$TEXT" -r 1 --json
  expect_rc 0 "bench --tokenize"
  need_python
  printf '%s\n' "$out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
assert r["test"] == "tokenize" and r["bytes"] == 1 << 20 and r["tokens"] > 1000, r
assert r["mb_per_s"] > 0 and r["seconds"] > 0, r
' || die "bad tokenize JSON: $out"
}

bench_kv_disk() {
  # Issue 7: `v4 bench --kv-disk DIR` measures the disk tier's reads and leaves nothing behind.
  mkdir -p kv
  run_v4 bench --kv-disk kv --kv-disk-mib 16 --kv-disk-block 64K --json
  expect_rc 0 "v4 bench --kv-disk"
  need_python
  python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin.read().splitlines() if l.strip()]
r = [l for l in lines if l["test"] == "kv_disk_read"]
assert len(r) == 1, lines
r = r[0]
assert r["bytes"] == 16 << 20 and r["block_bytes"] == 65536 and r["read_gbs"] > 0, r
assert r["io"] in ("direct", "buffered"), r
' <<<"$out" || die "bad kv_disk_read line: $out"
  [[ -z "$(ls -A kv)" ]] || die "files left in the directory: $(ls kv)"
  run_v4 bench --kv-disk "$WORK/missing"
  expect_rc 1 "--kv-disk on a missing directory"
  [[ "$err" == *"missing"* ]] || die "the error does not name the directory: $err"
}

bench_errors() {
  run_v4 bench -p 8 -n 8
  expect_rc 2 "bench without -m"
  [[ "$err" == *"-m MODEL"* ]] || die "no message about -m: $err"
  run_v4 bench -m "$MODEL" -r 0
  expect_rc 2 "-r 0"
  run_v4 bench -m "$MODEL" -p 0 -n 0
  expect_rc 2 "nothing to measure"
  run_v4 bench --tokenize
  expect_rc 2 "--tokenize without -m"
  run_v4 bench -m missing.gguf -p 8 -n 8 --membw-mib 16
  expect_rc 1 "missing model"
  [[ "$err" == *"missing.gguf"* ]] || die "the message does not name the file: $err"
}

perplexity_bundled() {
  run_v4 perplexity -m "$MODEL" -f "$TEXT" --threads 1
  expect_rc 0 "perplexity, 1 thread"
  local one=$out
  [[ "$err" == *"chunk 1/"* ]] || die "no progress on stderr: $err"
  run_v4 perplexity -m "$MODEL" -f "$TEXT" --threads 2
  expect_rc 0 "perplexity, 2 threads"
  [[ "$out" == "$one" ]] || die "1 and 2 threads differ: '$one' vs '$out'"
  [[ "$one" =~ ^perplexity:\ ([0-9.]+)\ \(\+/-\ ([0-9.]+)\)$ ]] || die "unexpected output: $one"
  local ppl=${BASH_REMATCH[1]}
  # stories260K wrote this text: its perplexity on it is 3.03 (ctx 512).
  awk -v p="$ppl" 'BEGIN { exit !(p > 1.0 && p < 4.0) }' || die "perplexity $ppl not in (1, 4)"
  run_v4 perplexity -m "$MODEL" -f "$TEXT" --ctx 128 --chunks 3 --json
  expect_rc 0 "perplexity --json"
  need_python
  printf '%s\n' "$out" | python3 -c '
import json, math, sys
r = json.loads(sys.stdin.read())
assert r["chunks"] == 3 and r["ctx"] == 128 and r["scored"] == 3 * 63, r
assert math.isfinite(r["perplexity"]) and r["perplexity"] > 1, r
' || die "bad perplexity JSON: $out"
}

perplexity_errors() {
  printf 'Once upon a time.\n' >short.txt
  run_v4 perplexity -m "$MODEL" -f short.txt
  expect_rc 1 "text too short"
  [[ "$err" == *"needs at least 1024"* ]] || die "no explanation: $err"
  run_v4 perplexity -m "$MODEL"
  expect_rc 2 "missing -f"
  run_v4 perplexity -m "$MODEL" -f missing.txt
  expect_rc 1 "missing text"
  run_v4 perplexity -m "$MODEL" -f "$TEXT" --ctx 2
  expect_rc 2 "--ctx too small"
}

"$test_name"
