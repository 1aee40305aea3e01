#!/usr/bin/env bash
# Peer comparison in one run (issue 4 item 4, issue 6 results): quantizes the example models with
# `quantsharp quantize` (static QDQ INT8, the docs/results.md command), then times FP32 and INT8 of each model at
# batch 1 and 64 on 1 and 2 threads in QuantSharp (`quantsharp bench --json`), ONNX Runtime (onnxruntime-node, CPU
# EP, same FP32 and QDQ files) and PyTorch (FP32 and its own onednn int8 model), plus int8 GEMM at 1024³ and
# 64×4096×4096 on one thread in each; writes bench/results/peers.md and peers.json.
# A peer that is not installed is skipped with a message. 2 rounds took 8.5 minutes on 2 cores at load average ~45
# (other jobs running); less on a quiet machine.
#
# usage: bench/peers/run_peers.sh
# environment: ROUNDS (default 2; each round runs all frameworks, the report keeps the best median per cell),
#              BUDGET_MS (default 1000, timed calls per configuration in ORT/PyTorch), OUT (default bench/results),
#              PEERS_NOTE (a line for the report, e.g. that the machine was busy), PYTHON (default /usr/bin/python3),
#              ORT_NODE_MODULES (a folder whose node_modules holds onnxruntime-node; default tests/tools),
#              WORK (scratch folder for quantized models and raw results, default bench/peers/.work).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
ROUNDS=${ROUNDS:-2}
BUDGET_MS=${BUDGET_MS:-1000}
OUT=${OUT:-bench/results}
PYTHON=${PYTHON:-/usr/bin/python3}
WORK=${WORK:-bench/peers/.work}
MODELS=(fmnist_cnn fmnist_mobilenet fmnist_vit)
THREADS=(1 2)
BATCHES=(1 64)

log() { echo "run_peers: $*" >&2; }

rm -rf "$WORK/raw"
mkdir -p "$WORK/raw/gemm" "$WORK/models" "$WORK/gemm"
cat /proc/loadavg > "$WORK/raw/loadavg_start" 2>/dev/null || true
date -u '+%Y-%m-%d %H:%M UTC' > "$WORK/raw/started"

log "building QuantSharp (Release)"
for project in src/QuantSharp.Cli bench/QuantSharp.Bench; do
  if ! dotnet build "$project" -c Release -nologo -v q > "$WORK/build.log" 2>&1; then
    cat "$WORK/build.log" >&2
    log "build of $project failed"
    exit 1
  fi
done
QS=(dotnet src/QuantSharp.Cli/bin/Release/net10.0/QuantSharp.Cli.dll)
QSB=(dotnet bench/QuantSharp.Bench/bin/Release/net10.0/QuantSharp.Bench.dll)

for m in "${MODELS[@]}"; do
  log "quantize $m"
  "${QS[@]}" quantize "examples/models/$m.onnx" -o "$WORK/models/${m}_int8.onnx" \
    --calib npz:examples/data/fmnist_calib_1000.npz --samples 512 --scale 1/255 --mean 0.2860 --std 0.3530 >/dev/null
done

HAVE_NODE=1
command -v node >/dev/null || HAVE_NODE=0
HAVE_PY=1
command -v "$PYTHON" >/dev/null || HAVE_PY=0
skip_json() { printf '{"peer": "%s", "skipped": "%s"}\n' "$1" "$2" > "$3"; }
ort_models=()
for m in "${MODELS[@]}"; do ort_models+=("$m=examples/models/$m.onnx,$WORK/models/${m}_int8.onnx"); done
csv() { local IFS=,; echo "$*"; }

for r in $(seq 1 "$ROUNDS"); do
  dir="$WORK/raw/round$r"
  mkdir -p "$dir"
  log "round $r/$ROUNDS: QuantSharp"
  : > "$dir/quantsharp.jsonl"
  for m in "${MODELS[@]}"; do
    for t in "${THREADS[@]}"; do
      for b in "${BATCHES[@]}"; do
        iters=$([ "$b" -eq 1 ] && echo 200 || echo 20)
        "${QS[@]}" bench "examples/models/$m.onnx" --quantized "$WORK/models/${m}_int8.onnx" \
          --batch "$b" --threads "$t" --iterations "$iters" --warmup 3 --json >> "$dir/quantsharp.jsonl"
      done
    done
  done
  log "round $r/$ROUNDS: ONNX Runtime"
  if [ "$HAVE_NODE" = 1 ]; then
    node bench/peers/ort_bench.js --out "$dir/ort.json" --threads "$(csv "${THREADS[@]}")" --batches "$(csv "${BATCHES[@]}")" \
      --budget-ms "$BUDGET_MS" "${ort_models[@]}"
  else
    log "ONNX Runtime skipped: node is not installed"
    skip_json onnxruntime "node is not installed" "$dir/ort.json"
  fi
  log "round $r/$ROUNDS: PyTorch"
  if [ "$HAVE_PY" = 1 ]; then
    "$PYTHON" -W ignore bench/peers/torch_bench.py --out "$dir/pytorch.json" --threads "$(csv "${THREADS[@]}")" \
      --batches "$(csv "${BATCHES[@]}")" --budget "$(awk "BEGIN{print $BUDGET_MS/1000}")"
  else
    log "PyTorch skipped: $PYTHON not found"
    skip_json pytorch "$PYTHON not found" "$dir/pytorch.json"
  fi
done

log "int8 GEMM, one thread"
"${QSB[@]}" gemm-json 10 > "$WORK/raw/gemm/quantsharp.json"
if [ "$HAVE_PY" = 1 ]; then "$PYTHON" bench/peers/gemm_models.py "$WORK/gemm"; fi
if [ "$HAVE_NODE" = 1 ] && ls "$WORK"/gemm/gemm_*.onnx >/dev/null 2>&1; then
  node bench/peers/ort_bench.js --out "$WORK/raw/gemm/ort.json" --gemm-dir "$WORK/gemm" --gemm-reps 10
else
  skip_json onnxruntime "node or the GEMM models (python3-onnx) missing" "$WORK/raw/gemm/ort.json"
fi
if [ "$HAVE_PY" = 1 ]; then
  "$PYTHON" -W ignore bench/peers/torch_bench.py --out "$WORK/raw/gemm/pytorch.json" --threads 1 --batches 1 \
    --budget 0 --min-iters 1 --max-iters 1 --gemm --gemm-only
else
  skip_json pytorch "$PYTHON not found" "$WORK/raw/gemm/pytorch.json"
fi

cat /proc/loadavg > "$WORK/raw/loadavg_end" 2>/dev/null || true
date -u '+%H:%M UTC' > "$WORK/raw/ended"
if command -v python3 >/dev/null; then
  python3 bench/peers/make_report.py "$WORK/raw" "$OUT"
else
  log "python3 not found: raw results are in $WORK/raw, no report written"
fi
