#!/usr/bin/python3
"""Combines the raw results of run_peers.sh into bench/results/peers.md and peers.json (standard library only).

usage: make_report.py WORK_RAW_DIR OUT_DIR
WORK_RAW_DIR holds round1/, round2/, ... each with quantsharp.jsonl (one `quantsharp bench --json` object per line),
ort.json and pytorch.json (may say "skipped"), plus gemm/{quantsharp,ort,pytorch}.json and loadavg_{start,end}.
Per model, batch and thread count the p50 latency of each variant is the lowest p50 over the rounds.
"""

import glob
import json
import os
import platform
import subprocess
import sys

MODELS = ["fmnist_cnn", "fmnist_mobilenet", "fmnist_vit"]


def read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def command_output(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine():
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "isa": []}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        for line in text.splitlines():
            if line.startswith("model name") and info["cpu"] in ("", platform.machine(), platform.processor()):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("cpu family"):
                info["cpu_family"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                info["isa"] = [f for f in ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
                                           "avx512_bf16", "amx_tile", "amx_int8"] if f in flags]
                info["amx"] = "amx_tile" in flags
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    info["dotnet"] = command_output(["dotnet", "--version"])
    info["node"] = command_output(["node", "--version"])
    info["os"] = platform.platform()
    return info


def rounds(raw):
    return sorted(glob.glob(os.path.join(raw, "round*")), key=lambda p: int(p.rsplit("round", 1)[1]))


def collect(raw):
    """{(model, batch, threads): {"qs_fp32": ms, "qs_int8": ..., "ort_fp32": ..., ...}} with the best p50 over rounds."""
    table, skipped, versions, per_round = {}, {}, {}, []

    def put(key, col, ms):
        cell = table.setdefault(key, {})
        cell[col] = ms if col not in cell else min(cell[col], ms)

    for r in rounds(raw):
        round_data = {"round": os.path.basename(r), "quantsharp": [], "onnxruntime": None, "pytorch": None}
        qs = os.path.join(r, "quantsharp.jsonl")
        if os.path.exists(qs):
            with open(qs) as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    o = json.loads(line)
                    round_data["quantsharp"].append(o)
                    name = os.path.splitext(os.path.basename(o["model"]))[0]
                    for v in o["results"]:
                        put((name, o["batch"], o["threads"]), "qs_" + v["variant"], v["p50_ms"])
        for peer, prefix in [("ort", "ort"), ("pytorch", "pt")]:
            o = read_json(os.path.join(r, f"{peer}.json"))
            round_data["onnxruntime" if peer == "ort" else "pytorch"] = o
            if o is None:
                continue
            if "skipped" in o:
                skipped[prefix] = o["skipped"]
                continue
            versions[prefix] = o.get("version")
            if o.get("build"):
                versions[prefix + "_build"] = o["build"]
            for row in o["results"]:
                for variant in ("fp32", "int8"):
                    put((row["model"], row["batch"], row["threads"]), f"{prefix}_{variant}", row[variant]["p50_ms"])
        per_round.append(round_data)
    return table, skipped, versions, per_round


def fmt(v, digits=3):
    """Fixed digits; small ratios keep three significant digits instead of rounding to 0.00."""
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if abs(v) >= 10 ** (1 - digits) or v == 0 else f"{v:.3g}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    raw, out = sys.argv[1], sys.argv[2]
    table, skipped, versions, per_round = collect(raw)
    gemm = {p: read_json(os.path.join(raw, "gemm", f"{p}.json")) for p in ("quantsharp", "ort", "pytorch")}
    load_start = open(os.path.join(raw, "loadavg_start")).read().strip() if os.path.exists(os.path.join(raw, "loadavg_start")) else ""
    load_end = open(os.path.join(raw, "loadavg_end")).read().strip() if os.path.exists(os.path.join(raw, "loadavg_end")) else ""
    started, ended = (open(os.path.join(raw, f)).read().strip() if os.path.exists(os.path.join(raw, f)) else ""
                      for f in ("started", "ended"))
    m = machine()
    note = os.environ.get("PEERS_NOTE", "")
    n_rounds = len(per_round)

    L = ["# Peer comparison: QuantSharp vs ONNX Runtime vs PyTorch (example models, int8 GEMM)", "",
         "Generated by `bench/peers/run_peers.sh` (see bench/README.md); raw data in `peers.json`.", "",
         "## Machine and run", "",
         f"- CPU: {m['cpu']}" + (f" (family {m['cpu_family']})" if "cpu_family" in m else "") +
         f", {m['cores']} logical cores, {m.get('memory_gib', '?')} GiB; ISA: {', '.join(m['isa'])}" +
         ("" if m.get("amx") else "; **no AMX**"),
         f"- .NET SDK {m['dotnet']}, Node {m['node']}, ONNX Runtime (onnxruntime-node) {versions.get('ort', 'not run')}, "
         f"PyTorch {versions.get('pt', 'not run')}" +
         (f" ({versions['pt_build']})" if "pt_build" in versions else "") + f"; {m['os']}",
         f"- Run: {started or '?'} to {ended or '?'}, {n_rounds} round(s); load average at start "
         f"`{load_start}`, at end `{load_end}`."]
    if note:
        L.append(f"- **{note}**")
    for prefix, reason in skipped.items():
        L.append(f"- {'ONNX Runtime' if prefix == 'ort' else 'PyTorch'} skipped: {reason}")
    L += ["",
          "What runs where (same FP32 ONNX files, `examples/models`; input random normal, the models' inputs being "
          "standardised pixels):", "",
          "- **QuantSharp** (`qs`): `quantsharp bench MODEL --quantized Q --batch B --threads T --json`; INT8 = the static QDQ "
          "model from `quantsharp quantize` (uint8 activations, int8 per-channel weights, MinMax on 512 calibration images, "
          "the docs/results.md command) executed in the integer domain.",
          "- **ONNX Runtime** (`ort`): the same FP32 file and the same QDQ INT8 file, CPU execution provider, all graph "
          "optimisations (QDQ fused into QLinear* kernels), intra-op threads T, spinning off.",
          "- **PyTorch** (`pt`): the modules of examples/make_models.py with the weights read back from the ONNX files "
          "(checked equal to PyTorch's committed logits); INT8 = PyTorch's own FX static PTQ model, onednn engine, "
          "calibrated on the same 512 images; `torch.set_num_threads(T)`.",
          "",
          "Each cell is the median latency of one batch in ms; FP32 and INT8 of a framework alternate call by call, and "
          f"the figure is the lowest median over the {n_rounds} round(s) (each round runs all three frameworks in turn).",
          ""]

    L += ["## Latency (ms per batch, p50)", "",
          "| model | batch | threads | qs FP32 | qs INT8 | ort FP32 | ort INT8 | pt FP32 | pt INT8 |",
          "|---|---|---|---|---|---|---|---|---|"]
    keys = sorted(table, key=lambda k: (MODELS.index(k[0]) if k[0] in MODELS else 99, k[1], k[2]))
    for k in keys:
        c = table[k]
        L.append(f"| {k[0]} | {k[1]} | {k[2]} | " + " | ".join(
            fmt(c.get(col)) for col in ["qs_fp32", "qs_int8", "ort_fp32", "ort_int8", "pt_fp32", "pt_int8"]) + " |")
    L += ["", "## Ratios", "",
          "INT8 speed-up = FP32 latency / INT8 latency of the same framework (> 1: INT8 faster). "
          "qs/peer = QuantSharp latency / the peer's latency for the same precision (> 1: QuantSharp slower).", "",
          "| model | batch | threads | qs INT8 speed-up | ort INT8 speed-up | pt INT8 speed-up | qs/ort INT8 | qs/pt INT8 | qs/ort FP32 | qs/pt FP32 |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for k in keys:
        c = table[k]
        g = c.get
        vals = [ratio(g("qs_fp32"), g("qs_int8")), ratio(g("ort_fp32"), g("ort_int8")), ratio(g("pt_fp32"), g("pt_int8")),
                ratio(g("qs_int8"), g("ort_int8")), ratio(g("qs_int8"), g("pt_int8")),
                ratio(g("qs_fp32"), g("ort_fp32")), ratio(g("qs_fp32"), g("pt_fp32"))]
        L.append(f"| {k[0]} | {k[1]} | {k[2]} | " + " | ".join(fmt(v, 2) for v in vals) + " |")

    # Issue targets that this run measures.
    def cell(model, batch, threads):
        return table.get((model, batch, threads), {})

    def target(label, value, goal, ok):
        return f"| {label} | {value} | {goal} | {'met' if ok else 'not met'} |" if value != "–" else f"| {label} | – | {goal} | not measured |"

    L += ["", "## Issue targets measured here", "", "| target | this run | goal | status |", "|---|---|---|---|"]
    c = cell("fmnist_cnn", 64, 2)
    s = ratio(c.get("qs_fp32"), c.get("qs_int8"))
    L.append(target("issue 4: CNN batch 64, 2 threads, qs INT8 throughput / qs FP32", fmt(s, 2), "≥ 1.5×", s is not None and s >= 1.5))
    c = cell("fmnist_mobilenet", 64, 2)
    s = ratio(c.get("qs_fp32"), c.get("qs_int8"))
    L.append(target("issue 4: MobileNet batch 64, 2 threads, qs INT8 / qs FP32", fmt(s, 2), "≥ 1.3×", s is not None and s >= 1.3))
    for model in MODELS:
        for threads in (1, 2):
            c = cell(model, 1, threads)
            s = ratio(c.get("qs_fp32"), c.get("qs_int8"))
            L.append(target(f"issue 4: {model} batch 1, {threads} thread(s), qs INT8 not slower than FP32 (FP32/INT8)",
                            fmt(s, 2), "≥ 1.0", s is not None and s >= 1.0))
    c = cell("fmnist_cnn", 64, 1)
    if c.get("qs_int8") is not None and c.get("pt_int8") is not None:
        L.append(target("issue 6: CNN INT8 batch 64, 1 thread, qs latency vs PyTorch onednn INT8 (ms)",
                        f"{c['qs_int8']:.3f} vs {c['pt_int8']:.3f}", "qs ≤ pt", c["qs_int8"] <= c["pt_int8"]))
    else:
        L.append("| issue 6: CNN INT8 batch 64, 1 thread, qs ≤ PyTorch onednn INT8 | – | qs ≤ pt | not measured |")

    L += ["", "## Int8 GEMM, one thread (issue-6 shapes)", "",
          "QuantSharp: `QuantSharp.Bench gemm-json`: every supported IInt8GemmKernel through the Int8Gemm driver (A panel "
          "copy, row sums and zero-point correction included; u8×s8 → int32; `Jit` is the generated 512-bit VNNI/AMX "
          "kernel), and the generated backends called directly through JitInt8Gemm (s8×s8 → int32). ONNX Runtime: a one-node MatMulInteger "
          "(→ int32) or QLinearMatMul (→ uint8) model with B a constant initializer (bench/peers/gemm_models.py), "
          "one intra-op thread, output written into a preallocated tensor. PyTorch: quantized::linear with prepacked "
          "weights (onednn, u8×s8, requantized u8 output). Best of the repetitions; GOPS = 2·M·N·K / time. "
          "Measured once, after the model rounds. ORT's MatMulInteger and QLinearMatMul rows are two ways of asking "
          "for the same product; on a busy machine the MatMulInteger one has swung between about 30 and 680 GOPS "
          "from run to run at 1024³, so read the better of the two as ONNX Runtime's figure.", "",
          "| M×N×K | implementation | best ms | GOPS |", "|---|---|---|---|"]
    gemm_rows, gemm_skips = [], []
    for p in ("quantsharp", "ort", "pytorch"):
        o = gemm.get(p)
        if o and "gemm" in o:
            gemm_rows += o["gemm"]
        elif o and "skipped" in o:
            gemm_skips.append(f"- {p}: skipped ({o['skipped']})")
        else:
            gemm_skips.append(f"- {p}: no GEMM figures in this run")
    for r in sorted(gemm_rows, key=lambda r: (-r["n"] * r["k"] // max(1, r["m"]), -r["gops"])):
        L.append(f"| {r['m']}×{r['n']}×{r['k']} | {r['impl']} | {r['best_ms']:.3f} | {r['gops']:.1f} |")
    L.append("")
    L += gemm_skips
    L.append("")
    L.append("Issue 6's GEMM targets (≥ 2,000 GOPS at 1024³, ≥ 1,600 GOPS at 64×4096×4096) assume AMX; this CPU has "
             "none, so only the 512-bit VNNI backend can be compared here." if not m.get("amx") else "")
    L.append("")

    os.makedirs(out, exist_ok=True)
    md = os.path.join(out, "peers.md")
    with open(md + ".tmp", "w") as f:
        f.write("\n".join(L).rstrip() + "\n")
    os.replace(md + ".tmp", md)
    js = os.path.join(out, "peers.json")
    combined = {"machine": m, "note": note, "load_average_start": load_start, "load_average_end": load_end,
                "best_p50_ms": [{"model": k[0], "batch": k[1], "threads": k[2], **table[k]} for k in keys],
                "gemm": gemm, "rounds": per_round}
    with open(js + ".tmp", "w") as f:
        json.dump(combined, f, indent=1)
        f.write("\n")
    os.replace(js + ".tmp", js)
    print(f"make_report: wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
