#!/usr/bin/env bash
# Every weight format × method on stories260K through the CLI: quantize to GGUF, then perplexity / KL divergence /
# same-top-token rate against the FP32 checkpoint on the first N windows of the reference protocol.
# Calibration text: the last 120,000 characters of tinystories_valid_head.txt (disjoint from the evaluated windows).
# Usage: bench/llm-quant-table.sh [WINDOWS=32]   (run from the repository root after `dotnet build src/QuantSharp.Cli -c Release`)
# The same table, faster (FP32 distributions computed once, calibration once):
#   QUANTSHARP_LLM_FULL=1 QUANTSHARP_LLM_TABLE=table.md dotnet test tests/QuantSharp.Tests -c Release --filter FullyQualifiedName~QuantTableTests.FullTable
set -euo pipefail
WINDOWS=${1:-32}
SHARED=${QUANTSHARP_SHARED:-../shared}
MODEL=$SHARED/models/stories260K/stories260K.bin
TOK=$SHARED/models/stories260K/tok512.bin
TEXT=$SHARED/data/tinystories/tinystories_valid_head.txt
CLI=src/QuantSharp.Cli/bin/Release/net10.0/QuantSharp.Cli
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 -c "import sys; t=open(sys.argv[1], encoding='utf-8').read(); open(sys.argv[2], 'w', encoding='utf-8').write(t[-120000:])" "$TEXT" "$WORK/calib.txt"
echo "| format | method | perplexity | FP32 | KL (nats/token) | same top token | bits/weight | bytes |"
echo "|---|---|---|---|---|---|---|---|"
for type in q8_0 q4_0 q4_1 q4_k int8-channel int4-g32 int4-g64 int4-g128 int3-g32 int3-g64 int3-g128 int2-g32 int2-g64 int2-g128 u8-tensor; do
  for method in rtn gptq awq imatrix; do
    calib=()
    [ "$method" != rtn ] && calib=(--calib "$WORK/calib.txt" --calib-windows 32)
    "$CLI" llm quantize "$MODEL" --tokenizer "$TOK" -o "$WORK/m.gguf" --type "$type" --method "$method" "${calib[@]}" --json > "$WORK/q.json"
    "$CLI" llm perplexity "$WORK/m.gguf" --text "$TEXT" --windows "$WINDOWS" --reference "$MODEL" --json > "$WORK/p.json"
    python3 - "$type" "$method" "$WORK/p.json" <<'PY'
import json, sys
t, m, p = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
print(f"| {t} | {m} | {p['ppl']:.4f} | {p['fp32_ppl']:.4f} | {p['kl']:.5f} | {100*p['same_top']:.2f} % | {p['bits_per_weight']:.3f} | {p['bytes']:,} |")
PY
  done
done
