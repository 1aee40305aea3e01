#!/usr/bin/python3
"""Build QuantSharp's example models on Fashion-MNIST.

Trains three small models (plain CNN, MobileNetV2-style net, small patch
transformer) with a fixed seed on one CPU thread, exports them to ONNX
(opset 17, dynamic batch, BatchNorm kept as separate nodes), measures
PyTorch's own int8 post-training quantization as a reference, and writes the
calibration/evaluation subsets and PyTorch's FP32 logits used by QuantSharp's
tests.

Run from anywhere:  /usr/bin/python3 examples/make_models.py
Options: --reuse  load trained weights from examples/.cache instead of
training again (the cache is not committed).
"""

import argparse
import gzip
import io
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS_DIR = os.path.join(HERE, "models")
DATA_DIR = os.path.join(HERE, "data")
CACHE_DIR = os.path.join(HERE, ".cache")
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"

# Dataset statistics of Fashion-MNIST training pixels scaled to [0, 1].
MEAN = 0.2860
STD = 0.3530
SEED = 0
BATCH = 64
CALIB_IMAGES = 512
OPSET = 17


# ---------------------------------------------------------------- data

def read_idx(path):
    """IDX format: big-endian magic (0x00 0x00 dtype ndim), ndim big-endian
    uint32 sizes, then the raw data (dtype 0x08 = uint8)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an uint8 IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def load_split(split):
    images = read_idx(os.path.join(FMNIST_DIR, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(FMNIST_DIR, f"{split}-labels-idx1-ubyte.gz"))
    return images.reshape(-1, 1, 28, 28).copy(), labels.astype(np.int64)


def normalise(u8):
    """x = (pixel/255 - mean)/std, float32 [N,1,28,28]."""
    x = u8.astype(np.float32) / np.float32(255.0)
    return torch.from_numpy((x - np.float32(MEAN)) / np.float32(STD))


# ---------------------------------------------------------------- models

class FmnistCnn(nn.Module):
    """Conv-ReLU-MaxPool x3, Flatten, Linear-ReLU, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)          # 28 -> 14
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)          # 14 -> 7
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.pool3 = nn.MaxPool2d(2)          # 7 -> 3 (floor)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64 * 3 * 3, 128)
        self.relu4 = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.pool3(self.relu3(self.conv3(x)))
        x = self.flatten(x)
        x = self.relu4(self.fc1(x))
        return self.fc2(x)


class ConvBnAct(nn.Sequential):
    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU6())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand + BN + ReLU6, 3x3 depthwise + BN + ReLU6,
    1x1 project + BN (linear bottleneck), residual Add when shapes match."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            ConvBnAct(cin, hidden, 1),
            ConvBnAct(hidden, hidden, 3, stride, groups=hidden),
            ConvBnAct(hidden, cout, 1, act=False),
        )

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_residual else y


class FmnistMobileNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = ConvBnAct(1, 16, 3)                     # 28x28x16
        self.blocks = nn.Sequential(
            InvertedResidual(16, 24, 2, 2),                 # 14x14x24
            InvertedResidual(24, 24, 1, 3),                 # residual
            InvertedResidual(24, 32, 2, 3),                 # 7x7x32
            InvertedResidual(32, 32, 1, 3),                 # residual
        )
        self.head_conv = nn.Conv2d(32, 128, 1, bias=False)
        self.head_bn = nn.BatchNorm2d(128)
        self.head_act = nn.Hardswish()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(128, 10)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = self.head_act(self.head_bn(self.head_conv(x)))
        return self.classifier(self.flatten(self.pool(x)))


class Attention(nn.Module):
    """Multi-head self-attention with explicit MatMul/Softmax:
    softmax(Q K^T / sqrt(d)) V per head, then an output projection."""

    def __init__(self, dim, heads, tokens):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.tokens = tokens
        self.dim = dim
        self.scale = self.head_dim ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def split_heads(self, t):
        # [B, N, C] -> [B, H, N, D]; -1 keeps the batch dimension dynamic.
        return t.reshape(-1, self.tokens, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x):
        q = self.split_heads(self.q(x))
        k = self.split_heads(self.k(x))
        v = self.split_heads(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        attn = torch.softmax(scores, dim=-1)
        out = torch.matmul(attn, v).permute(0, 2, 1, 3).reshape(-1, self.tokens, self.dim)
        return self.proj(out)


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), x + MLP(LN(x)), GELU MLP."""

    def __init__(self, dim, heads, tokens, mlp):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, tokens)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.gelu = nn.GELU()
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.gelu(self.fc1(self.norm2(x))))


class FmnistVit(nn.Module):
    def __init__(self, patch=7, dim=64, heads=4, mlp=128, depth=2):
        super().__init__()
        self.tokens = (28 // patch) ** 2
        self.dim = dim
        self.patch_embed = nn.Conv2d(1, dim, patch, stride=patch)   # [B, dim, 4, 4]
        self.pos_embed = nn.Parameter(torch.zeros(1, self.tokens, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, self.tokens, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.patch_embed(x)
        x = x.reshape(-1, self.dim, self.tokens).permute(0, 2, 1)   # [B, N, dim]
        x = x + self.pos_embed
        x = self.blocks(x)
        x = self.norm(x).mean(dim=1)                                # mean-pool tokens
        return self.head(x)


MODELS = {
    # name: (constructor, epochs, peak learning rate)
    "fmnist_cnn": (FmnistCnn, 5, 2e-3),
    "fmnist_mobilenet": (FmnistMobileNet, 3, 3e-3),
    "fmnist_vit": (FmnistVit, 5, 2e-3),
}

DESCRIPTIONS = {
    "fmnist_cnn": "Plain CNN: (Conv3x3-ReLU-MaxPool2) x3 (16/32/64 ch), Flatten, Linear 576->128, ReLU, Linear 128->10",
    "fmnist_mobilenet": "MobileNetV2-style: Conv3x3+BN+ReLU6 stem (16 ch), 4 inverted residual blocks "
                        "(expand 1x1+BN+ReLU6, depthwise 3x3+BN+ReLU6, project 1x1+BN, residual Add on 2 of them), "
                        "1x1 conv 32->128 + BN + HardSwish head, global average pool, Linear 128->10",
    "fmnist_vit": "Patch transformer: Conv 7x7/stride 7 patch embedding (16 tokens, dim 64), learned position embedding, "
                  "2 pre-norm encoder blocks (LayerNorm, 4-head self-attention with explicit MatMul/Softmax, "
                  "GELU MLP 64->128->64, residual Adds), final LayerNorm, mean-pool, Linear 64->10",
}


# ---------------------------------------------------------------- training / eval

def train(model, x, y, epochs, lr, log):
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (len(x) + BATCH - 1) // BATCH
    total = epochs * steps_per_epoch
    # One warm-up epoch fraction then cosine decay to zero.
    warm = steps_per_epoch // 4

    def lr_at(step):
        if step < warm:
            return lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return lr * 0.5 * (1.0 + np.cos(np.pi * t))

    step = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        run_loss, seen = 0.0, 0
        for i in range(0, len(x), BATCH):
            idx = perm[i:i + BATCH]
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            run_loss += loss.item() * len(idx)
            seen += len(idx)
            step += 1
        log(f"  epoch {epoch + 1}/{epochs}: loss {run_loss / seen:.4f}, "
            f"{time.perf_counter() - start:.0f} s")
    model.eval()
    return time.perf_counter() - start


@torch.no_grad()
def predict(model, x, batch=500):
    model.eval()
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def accuracy(logits, y):
    return float((logits.argmax(1) == y).float().mean())


def state_dict_bytes(model):
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


@torch.no_grad()
def latency_ms(model, x64, iters=30):
    """Median wall time of one batch-64 forward pass (1 thread)."""
    model.eval()
    for _ in range(3):
        model(x64)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        model(x64)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)


# ---------------------------------------------------------------- quantization

def pick_engine():
    supported = torch.backends.quantized.supported_engines
    for engine in ("onednn", "x86", "fbgemm"):
        if engine in supported:
            torch.backends.quantized.engine = engine
            return engine
    raise RuntimeError(f"no server quantization engine in {supported}")


def quantize_static_fx(model, engine, calib, example):
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    import copy
    m = copy.deepcopy(model).eval()
    prepared = prepare_fx(m, get_default_qconfig_mapping(engine), example_inputs=(example,))
    with torch.no_grad():
        for i in range(0, len(calib), BATCH):
            prepared(calib[i:i + BATCH])
    return convert_fx(prepared)


def quantize_dynamic_linear(model):
    import copy
    from torch.ao.quantization import quantize_dynamic
    return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


# ---------------------------------------------------------------- export

def export_onnx(model, name):
    import onnx
    path = os.path.join(MODELS_DIR, f"{name}.onnx")
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # TrainingMode.PRESERVE with the model in eval mode exports inference
        # semantics but skips the exporter's eval peephole pass, which would fold
        # BatchNorm into the preceding Conv; QuantSharp's quantizer does the folding.
        torch.onnx.export(
            model, dummy, path,
            opset_version=OPSET,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    proto.doc_string = f"QuantSharp example model {name}: {DESCRIPTIONS[name]}"
    onnx.save(proto, path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    ops = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return path, ops


# ---------------------------------------------------------------- README

def write_readme(results):
    """examples/README.md, regenerated with the figures of this run."""
    r = results
    lines = [
        "# QuantSharp example models",
        "",
        "Three small Fashion-MNIST classifiers used as QuantSharp's built-in demo and as the reference",
        "for PyTorch-vs-QuantSharp comparisons. Everything in this folder is produced by `make_models.py`",
        "(fixed seed, one CPU thread):",
        "",
        "    /usr/bin/python3 examples/make_models.py      # trains, exports, quantizes in PyTorch, writes README",
        "    /usr/bin/python3 examples/check_onnx.py       # re-runs the ONNX files with a NumPy interpreter",
        "",
        "`make_models.py --reuse` skips training when `examples/.cache/<name>.pt` (not committed) exists.",
        "Retraining on another machine or PyTorch build can change the weights slightly; the committed",
        "files are the reference.",
        "",
        "## Inputs",
        "",
        f"Input `input`: float32 `[N,1,28,28]`, `{r['dataset']['normalisation']}`; output `logits`: float32 `[N,10]`.",
        "ONNX opset 17, dynamic batch dimension, exported in eval mode with BatchNorm left as",
        "separate `BatchNormalization` nodes (QuantSharp's quantizer folds them).",
        "",
        "## Models",
        "",
    ]
    for name, m in r["models"].items():
        ops = ", ".join(f"{k} x{v}" for k, v in m["onnx_ops"].items())
        lines += [f"- `models/{name}.onnx`: {m['description']}.", f"  ONNX operators: {ops}."]
    lines += [
        "",
        "## Figures (from `models/pytorch_results.json`)",
        "",
        f"Accuracy on the full 10,000-image test set. PyTorch int8 = `torch.ao.quantization` post-training",
        f"quantization, engine `{r['quantization']['engine']}`, {r['quantization']['qconfig']},",
        f"calibration on the {r['quantization']['calibration']}. Static = FX graph mode static int8",
        "(weights and activations); dynamic = `quantize_dynamic` on `nn.Linear` (int8 weights, activations",
        "quantized per batch at run time).",
        "",
        "| model | params | ONNX bytes | epochs | train s | FP32 acc | int8 mode | int8 acc | FP32 state_dict bytes | int8 state_dict bytes | FP32 ms/batch64 | int8 ms/batch64 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in r["models"].items():
        for mode, q in m["int8"].items():
            if "error" in q:
                lines.append(f"| {name} | {m['parameters']} | {m['onnx_bytes']} | {m['train_epochs']} | "
                             f"{m['train_seconds']} | {m['fp32_test_accuracy']:.4f} | {mode} | "
                             f"not supported: {q['error']} | | | | |")
                continue
            lines.append(f"| {name} | {m['parameters']} | {m['onnx_bytes']} | {m['train_epochs']} | "
                         f"{m['train_seconds']} | {m['fp32_test_accuracy']:.4f} | {mode} | "
                         f"{q['test_accuracy']:.4f} | {m['fp32_state_dict_bytes']} | {q['state_dict_bytes']} | "
                         f"{m['fp32_latency_ms_batch64']} | {q['latency_ms_batch64']} |")
    lines += [
        "",
        f"Latencies: {r['latency_note']} (torch {r['environment']['torch']}).",
        "Training seconds are wall time on one thread of a 2-core machine shared with other jobs, so they",
        "vary several-fold between runs (unloaded, the CNN needs ~16 s/epoch, the MobileNet ~60 s/epoch,",
        "the transformer ~75-120 s/epoch).",
        "For the transformer, PyTorch's FX static int8 quantizes Conv, Linear, LayerNorm, the attention",
        "MatMuls, Mul and Add, but runs Softmax and GELU in float between dequantize/quantize (primary",
        "figure); the dynamic mode (int8 Linear weights only) is given for comparison.",
        "",
        "## Data",
        "",
        "- `data/fmnist_calib_1000.npz`: first 1,000 training images, `x` uint8 `[1000,1,28,28]`, `y` int64.",
        "- `data/fmnist_eval_2000.npz`: first 2,000 test images, `x` uint8 `[2000,1,28,28]`, `y` int64.",
        "- `data/pytorch_predictions_eval_2000.npz`: `<model>_logits`, float32 `[2000,10]`, PyTorch FP32 logits",
        "  on the evaluation subset (normalise `x` as above first).",
        "",
    ]
    with open(os.path.join(HERE, "README.md"), "w") as f:
        f.write("\n".join(lines))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reuse", action="store_true", help="reuse weights cached in examples/.cache")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    os.makedirs(MODELS_DIR, exist_ok=True)
    os.makedirs(DATA_DIR, exist_ok=True)
    os.makedirs(CACHE_DIR, exist_ok=True)

    def log(msg):
        print(msg, flush=True)

    train_u8, train_y = load_split("train")
    test_u8, test_y = load_split("t10k")
    log(f"train {train_u8.shape}, test {test_u8.shape}")
    x_train, y_train = normalise(train_u8), torch.from_numpy(train_y)
    x_test, y_test = normalise(test_u8), torch.from_numpy(test_y)

    np.savez_compressed(os.path.join(DATA_DIR, "fmnist_calib_1000.npz"),
                        x=train_u8[:1000], y=train_y[:1000])
    np.savez_compressed(os.path.join(DATA_DIR, "fmnist_eval_2000.npz"),
                        x=test_u8[:2000], y=test_y[:2000])

    engine = pick_engine()
    log(f"quantized engine: {engine}")
    calib = x_train[:CALIB_IMAGES]
    x64 = x_test[:64]

    results = {
        "generated_by": "examples/make_models.py",
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu_threads": torch.get_num_threads(),
            "machine": platform.machine(),
        },
        "dataset": {
            "name": "Fashion-MNIST",
            "normalisation": f"x = (pixel/255 - {MEAN})/{STD}",
            "input_shape": "[N,1,28,28] float32",
            "test_images": int(len(test_y)),
        },
        "quantization": {
            "framework": "torch.ao.quantization",
            "engine": engine,
            "qconfig": f"default for engine (get_default_qconfig_mapping('{engine}'))",
            "calibration": f"first {CALIB_IMAGES} training images",
        },
        "latency_note": "median wall time per batch-64 forward pass in PyTorch on 1 CPU thread, "
                        "measured by this script on a shared machine; rough figures only",
        "models": {},
    }
    eval_logits = {}

    for name, (ctor, epochs, lr) in MODELS.items():
        log(f"== {name}")
        torch.manual_seed(SEED)
        model = ctor()
        cache = os.path.join(CACHE_DIR, f"{name}.pt")
        train_s = None
        if args.reuse and os.path.exists(cache):
            model.load_state_dict(torch.load(cache))
            log("  loaded cached weights")
            prev = os.path.join(MODELS_DIR, "pytorch_results.json")
            if os.path.exists(prev):
                with open(prev) as f:
                    train_s = json.load(f)["models"].get(name, {}).get("train_seconds")
        else:
            train_s = train(model, x_train, y_train, epochs, lr, log)
            torch.save(model.state_dict(), cache)
        model.eval()

        fp32_logits = predict(model, x_test)
        fp32_acc = accuracy(fp32_logits, y_test)
        n_params = sum(p.numel() for p in model.parameters())
        log(f"  fp32 accuracy {fp32_acc:.4f}, {n_params} parameters")

        path, ops = export_onnx(model, name)
        onnx_bytes = os.path.getsize(path)
        log(f"  onnx {onnx_bytes} bytes, ops {ops}")
        eval_logits[f"{name}_logits"] = fp32_logits[:2000].numpy().astype(np.float32)

        entry = {
            "description": DESCRIPTIONS[name],
            "onnx_file": f"models/{name}.onnx",
            "onnx_ops": ops,
            "train_epochs": epochs,
            "train_seconds": None if train_s is None else round(train_s, 1),
            "parameters": int(n_params),
            "onnx_bytes": int(onnx_bytes),
            "fp32_state_dict_bytes": state_dict_bytes(model),
            "fp32_test_accuracy": round(fp32_acc, 4),
            "fp32_latency_ms_batch64": round(latency_ms(model, x64), 2),
        }

        attempts = []
        if name == "fmnist_vit":
            # PyTorch's FX static int8 quantizes Conv, Linear, LayerNorm, MatMul, Mul
            # and Add here but runs Softmax and GELU in float between
            # dequantize/quantize; dynamic int8 of the Linear layers is recorded too.
            attempts = [("static_fx", lambda: quantize_static_fx(model, engine, calib, x64)),
                        ("dynamic_linear", lambda: quantize_dynamic_linear(model))]
        else:
            attempts = [("static_fx", lambda: quantize_static_fx(model, engine, calib, x64))]

        entry["int8"] = {}
        for mode, make in attempts:
            try:
                t0 = time.perf_counter()
                qmodel = make()
                qtime = time.perf_counter() - t0
                q_acc = accuracy(predict(qmodel, x_test), y_test)
                entry["int8"][mode] = {
                    "test_accuracy": round(q_acc, 4),
                    "state_dict_bytes": state_dict_bytes(qmodel),
                    "latency_ms_batch64": round(latency_ms(qmodel, x64), 2),
                    "quantize_seconds": round(qtime, 1),
                }
                log(f"  int8 {mode}: accuracy {q_acc:.4f}")
            except Exception as e:  # record why PyTorch could not quantize this way
                entry["int8"][mode] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
                log(f"  int8 {mode} failed: {e}")
        entry["int8_primary_mode"] = attempts[0][0]
        results["models"][name] = entry

    np.savez_compressed(os.path.join(DATA_DIR, "pytorch_predictions_eval_2000.npz"), **eval_logits)
    with open(os.path.join(MODELS_DIR, "pytorch_results.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    write_readme(results)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
