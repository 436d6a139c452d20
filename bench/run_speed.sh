#!/usr/bin/env bash
# Prompt and decode speed of `v4 run` on a model, one JSON object per run on stdout.
#   bench/run_speed.sh [V4_BINARY] [MODEL] [THREADS...]
# The prompt is the first 1000 bytes of tests/data/tinystories-sample.txt (441 tokens with the
# stories260K vocabulary); 3 runs per thread count, greedy, 200 tokens at most.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
v4="${1:-$root/build/tools/v4/v4}"
model="${2:-$root/models/stories260K-f32.gguf}"
shift $(( $# > 2 ? 2 : $# ))
threads=("${@:-1 2}")
prompt="$(head -c 1000 "$root/tests/data/tinystories-sample.txt")"
for t in ${threads[@]}; do
  for rep in 1 2 3; do
    err="$("$v4" run -m "$model" -p "$prompt" -n 200 --temp 0 --threads "$t" 2>&1 >/dev/null)"
    read -r pn ps < <(sed -n 's/^prompt: *\([0-9]*\) tokens in *\([0-9.]*\) s.*/\1 \2/p' <<<"$err")
    read -r gn gs < <(sed -n 's/^generated: *\([0-9]*\) tokens in *\([0-9.]*\) s.*/\1 \2/p' <<<"$err")
    python3 -c "import json,sys; pn,ps,gn,gs=map(float,sys.argv[1:5]); print(json.dumps({'bench':'run_speed','model':sys.argv[5],'threads':int(sys.argv[6]),'rep':int(sys.argv[7]),'prompt_tokens':int(pn),'prompt_tok_s':round(pn/ps,1),'gen_tokens':int(gn),'gen_tok_s':round(gn/gs,1)}))" "$pn" "$ps" "$gn" "$gs" "$(basename "$model")" "$t" "$rep"
  done
done
