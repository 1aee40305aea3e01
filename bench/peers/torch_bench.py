#!/usr/bin/python3
"""Times the example models in PyTorch: FP32 and PyTorch's own static int8 model.

The modules are the definitions of examples/make_models.py; the trained weights are read back from the committed
ONNX files (make_models.py does not commit its state dicts): initializers named like the state-dict keys are copied,
and the Linear weights the exporter stored transposed under generated names (MatMul inputs) are mapped back through
the MatMul node's scope name. The recreated FP32 model is checked against PyTorch's committed logits
(examples/data/pytorch_predictions_eval_2000.npz) before anything is timed.

The int8 model is PyTorch's FX graph-mode post-training static quantization on the onednn engine, calibrated on the
first 512 images of examples/data/fmnist_calib_1000.npz (the flow and calibration of make_models.py).

Timing: per (model, threads, batch) FP32 and int8 run alternately on the same random normal input (torch.randn),
3 warm-up calls each, then at least MIN_ITERS and at most MAX_ITERS timed calls each until BUDGET seconds have
passed; p50 and min of the per-call wall times are written (milliseconds).

With --gemm, also times (with --gemm-only, only) quantized::linear (onednn; u8 activations × s8 weights, int32 accumulation, requantized u8
output) at 1024x1024x1024 and 64x4096x4096 on one thread, as GOPS = 2·M·N·K / best time.

Writes one JSON object to --out. If torch, onnx or numpy cannot be imported, writes {"skipped": reason} and exits 0.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EXAMPLES = os.path.join(ROOT, "examples")
MODELS = ["fmnist_cnn", "fmnist_mobilenet", "fmnist_vit"]


def write(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def module_key(node_name):
    """'/blocks/blocks.0/attn/q/MatMul' -> 'blocks.0.attn.q': the exporter repeats the parent's path in a child's
    scope name ('blocks' then 'blocks.0'), so a part that extends the path so far replaces it."""
    key = ""
    for part in node_name.strip("/").split("/")[:-1]:
        key = part if key and part.startswith(key + ".") else (f"{key}.{part}" if key else part)
    return key


def load_onnx_weights(module, path, onnx, numpy_helper, torch):
    proto = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    wanted = module.state_dict()
    state = {k: torch.from_numpy(inits[k].copy()) for k in wanted if k in inits}
    for node in proto.graph.node:
        if node.op_type == "MatMul" and len(node.input) == 2 and node.input[1] in inits and node.input[1] not in wanted:
            key = module_key(node.name) + ".weight"
            if key not in wanted:
                raise RuntimeError(f"{path}: MatMul node {node.name} maps to {key}, which the module does not have")
            state[key] = torch.from_numpy(inits[node.input[1]].T.copy())
    missing = [k for k in wanted if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise RuntimeError(f"{path}: no weights for {missing}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(wanted[k].shape):
            raise RuntimeError(f"{path}: {k} has shape {tuple(v.shape)}, the module wants {tuple(wanted[k].shape)}")
    module.load_state_dict(state, strict=False)
    return module.eval()


def time_pair(torch, fns, x, budget, min_iters, max_iters):
    """Alternates the callables on x; returns {name: [ms, ...]}."""
    times = {name: [] for name in fns}
    with torch.inference_mode():
        for _ in range(3):
            for fn in fns.values():
                fn(x)
        start = time.perf_counter()
        i = 0
        while i < max_iters and (i < min_iters or time.perf_counter() - start < budget):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn(x)
                times[name].append((time.perf_counter() - t0) * 1000.0)
            i += 1
    return times


def stats(ms):
    s = sorted(ms)
    return {"p50_ms": round(s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2]), 4),
            "min_ms": round(s[0], 4), "iterations": len(s)}


def gemm(torch, reps):
    rows = []
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(5)
    for m, n, k in [(1024, 1024, 1024), (64, 4096, 4096)]:
        xq = torch.quantize_per_tensor(torch.randn(m, k, generator=gen), 0.05, 128, torch.quint8)
        wq = torch.quantize_per_tensor(torch.randn(n, k, generator=gen), 0.05, 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(wq, None)
        torch.ops.quantized.linear(xq, packed, 1.0, 128)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.ops.quantized.linear(xq, packed, 1.0, 128)
            best = min(best, time.perf_counter() - t0)
        rows.append({"impl": f"PyTorch quantized::linear ({torch.backends.quantized.engine}) u8*s8 -> u8",
                     "m": m, "n": n, "k": k, "best_ms": round(best * 1e3, 4), "gops": round(2.0 * m * n * k / best / 1e9, 1)})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--budget", type=float, default=1.5, help="seconds of timed calls per configuration")
    ap.add_argument("--min-iters", type=int, default=5)
    ap.add_argument("--max-iters", type=int, default=300)
    ap.add_argument("--gemm", action="store_true")
    ap.add_argument("--gemm-reps", type=int, default=10)
    ap.add_argument("--gemm-only", action="store_true", help="time only the GEMM shapes (with --gemm)")
    args = ap.parse_args()

    try:
        import numpy as np
        import onnx
        from onnx import numpy_helper
        import torch
    except ImportError as e:
        reason = f"PyTorch peer not available ({e}); install with: apt-get install python3-torch python3-onnx"
        print(f"torch_bench: skipped: {reason}", flush=True)
        write(args.out, {"peer": "pytorch", "skipped": reason})
        return 0

    engine = "onednn"
    if engine not in torch.backends.quantized.supported_engines:
        reason = f"PyTorch {torch.__version__} has no {engine} quantized engine ({torch.backends.quantized.supported_engines})"
        print(f"torch_bench: skipped: {reason}", flush=True)
        write(args.out, {"peer": "pytorch", "skipped": reason})
        return 0
    torch.backends.quantized.engine = engine
    sys.path.insert(0, EXAMPLES)
    import make_models as mm

    calib_u8 = np.load(os.path.join(EXAMPLES, "data", "fmnist_calib_1000.npz"))["x"][:mm.CALIB_IMAGES]
    calib = mm.normalise(calib_u8)
    eval_npz = np.load(os.path.join(EXAMPLES, "data", "fmnist_eval_2000.npz"))
    eval_x, eval_y = mm.normalise(eval_npz["x"]), torch.from_numpy(eval_npz["y"])
    reference = np.load(os.path.join(EXAMPLES, "data", "pytorch_predictions_eval_2000.npz"))

    config = torch.__config__.show()
    build = "; ".join(part for part in (
        next((l.strip(" -") for l in config.splitlines() if "CPU capability usage" in l), ""),
        next((w.rstrip(",") for w in config.split() if w.startswith("BLAS_INFO=")), ""),
        next((l.strip(" -") for l in config.splitlines() if "MKL-DNN" in l or "oneDNN" in l), "")) if part)
    result = {"peer": "pytorch", "version": torch.__version__, "engine": engine, "build": build,
              "int8": "FX graph mode static PTQ (get_default_qconfig_mapping('onednn')), 512 calibration images",
              "timing": f"alternating FP32/int8 calls, >= {args.min_iters} each, until {args.budget} s or {args.max_iters} calls",
              "models": {}, "results": []}
    threads = [int(t) for t in args.threads.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(1)
    for name in [] if args.gemm_only else MODELS:
        ctor = mm.MODELS[name][0]
        torch.manual_seed(mm.SEED)
        fp32 = load_onnx_weights(ctor(), os.path.join(EXAMPLES, "models", f"{name}.onnx"), onnx, numpy_helper, torch)
        with torch.inference_mode():
            logits = mm.predict(fp32, eval_x)
        diff = float(np.abs(logits.numpy() - reference[f"{name}_logits"]).max())
        if diff > 1e-3:
            raise RuntimeError(f"{name}: recreated FP32 model differs from PyTorch's committed logits by {diff}")
        int8 = mm.quantize_static_fx(fp32, engine, calib, eval_x[:64])
        with torch.inference_mode():
            int8_acc = mm.accuracy(mm.predict(int8, eval_x), eval_y)
        result["models"][name] = {"fp32_max_abs_diff_vs_committed_logits": diff,
                                  "fp32_accuracy_eval2000": round(mm.accuracy(logits, eval_y), 4),
                                  "int8_accuracy_eval2000": round(int8_acc, 4)}
        print(f"torch_bench: {name}: FP32 matches committed logits (max |diff| {diff:.2e}); "
              f"int8 accuracy on eval_2000 {int8_acc:.4f}", flush=True)
        for t in threads:
            torch.set_num_threads(t)
            for b in batches:
                x = torch.randn(b, 1, 28, 28, generator=torch.Generator().manual_seed(1234))
                times = time_pair(torch, {"fp32": fp32, "int8": int8}, x, args.budget, args.min_iters, args.max_iters)
                row = {"model": name, "threads": t, "batch": b}
                for variant, ms in times.items():
                    row[variant] = stats(ms)
                result["results"].append(row)
                print(f"torch_bench: {name} threads={t} batch={b}: fp32 p50 {row['fp32']['p50_ms']:.3f} ms, "
                      f"int8 p50 {row['int8']['p50_ms']:.3f} ms", flush=True)
    if args.gemm:
        result["gemm"] = gemm(torch, args.gemm_reps)
        for r in result["gemm"]:
            print(f"torch_bench: gemm {r['m']}x{r['n']}x{r['k']}: {r['gops']} GOPS", flush=True)
    write(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
