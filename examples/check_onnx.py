#!/usr/bin/python3
"""Independent check of the exported example models.

onnx 1.12 has no onnx.reference evaluator and onnxruntime is not installed,
so this file carries a minimal NumPy interpreter for exactly the operators the
example models use (float32, opset 17 semantics). For each model it loads and
checks the ONNX file, runs it on the 2,000-image evaluation subset and
compares the logits with PyTorch's (examples/data/pytorch_predictions_eval_2000.npz).

Run:  /usr/bin/python3 examples/check_onnx.py
"""

import math
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
MEAN = 0.2860
STD = 0.3530


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def pads_2d(a, k):
    p = list(a.get("pads", [0, 0, 0, 0]))
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError("auto_pad not supported by this checker")
    return p


def conv(x, w, b, a):
    """Y[n,m,oh,ow] = sum_{c,kh,kw} X[n, g*Cg+c, oh*s+kh*d-pad, ...] * W[m,c,kh,kw] + B[m]."""
    n, cin, h, wd = x.shape
    m, cg, kh, kw = w.shape
    g = a.get("group", 1)
    sh, sw = a.get("strides", [1, 1])
    dh, dw = a.get("dilations", [1, 1])
    pt, pl, pb, pr = pads_2d(a, (kh, kw))
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    # cols[n, c, kh, kw, oh, ow]
    cols = np.empty((n, cin, kh, kw, oh, ow), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh: i * dh + sh * oh: sh, j * dw: j * dw + sw * ow: sw]
    mg = m // g
    out = np.empty((n, m, oh, ow), dtype=np.float32)
    for gi in range(g):
        c = cols[:, gi * cg:(gi + 1) * cg].reshape(n, cg * kh * kw, oh * ow)
        wg = w[gi * mg:(gi + 1) * mg].reshape(mg, cg * kh * kw)
        out[:, gi * mg:(gi + 1) * mg] = np.einsum("mk,nkp->nmp", wg, c).reshape(n, mg, oh, ow)
    if b is not None:
        out += b.reshape(1, m, 1, 1)
    return out


def maxpool(x, a):
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = pads_2d(a, (kh, kw))
    if a.get("ceil_mode", 0):
        raise ValueError("ceil_mode not supported by this checker")
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=-np.inf)
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    out = np.full((n, c, oh, ow), -np.inf, dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            out = np.maximum(out, xp[:, :, i: i + sh * oh: sh, j: j + sw * ow: sw])
    return out


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layernorm(x, scale, bias, a):
    axis = a.get("axis", -1)
    eps = a.get("epsilon", 1e-5)
    axes = tuple(range(axis % x.ndim, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    y = y * scale
    return y + bias if bias is not None else y


def run_node(node, ins):
    a = attrs(node)
    op = node.op_type
    x = ins[0] if ins else None
    if op == "Conv":
        return [conv(x, ins[1], ins[2] if len(ins) > 2 else None, a)]
    if op == "Relu":
        return [np.maximum(x, 0)]
    if op == "MaxPool":
        return [maxpool(x, a)]
    if op == "Flatten":
        ax = a.get("axis", 1)
        return [x.reshape(int(np.prod(x.shape[:ax])), -1)]
    if op == "Gemm":
        av = x.T if a.get("transA", 0) else x
        bv = ins[1].T if a.get("transB", 0) else ins[1]
        y = a.get("alpha", 1.0) * (av @ bv)
        if len(ins) > 2 and ins[2] is not None:
            y = y + a.get("beta", 1.0) * ins[2]
        return [y.astype(np.float32)]
    if op == "MatMul":
        return [np.matmul(x, ins[1])]
    if op == "BatchNormalization":
        scale, bias, mean, var = ins[1:5]
        eps = a.get("epsilon", 1e-5)
        sh = (1, -1) + (1,) * (x.ndim - 2)
        return [((x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + eps)) * scale.reshape(sh) + bias.reshape(sh)]
    if op == "Clip":
        lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
        hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
        return [np.clip(x, lo, hi)]
    if op == "HardSwish":
        return [x * np.clip(x / 6.0 + 0.5, 0, 1)]
    if op == "GlobalAveragePool":
        return [x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)]
    if op == "Add":
        return [x + ins[1]]
    if op == "Sub":
        return [x - ins[1]]
    if op == "Mul":
        return [x * ins[1]]
    if op == "Div":
        return [x / ins[1]]
    if op == "Pow":
        return [np.power(x, ins[1])]
    if op == "Sqrt":
        return [np.sqrt(x)]
    if op == "Erf":
        return [np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype)]
    if op == "Softmax":
        return [softmax(x, a.get("axis", -1))]
    if op == "LayerNormalization":
        return [layernorm(x, ins[1], ins[2] if len(ins) > 2 else None, a)]
    if op == "ReduceMean":
        axes = a.get("axes")
        keep = a.get("keepdims", 1)
        return [x.mean(axis=tuple(axes) if axes is not None else None, keepdims=bool(keep))]
    if op == "Transpose":
        return [np.transpose(x, a.get("perm"))]
    if op == "Reshape":
        shape = [int(s) for s in ins[1]]
        shape = [x.shape[i] if s == 0 and not a.get("allowzero", 0) else s for i, s in enumerate(shape)]
        return [x.reshape(shape)]
    if op == "Constant":
        return [numpy_helper.to_array(a["value"])]
    if op == "Shape":
        return [np.array(x.shape, dtype=np.int64)]
    if op == "Gather":
        return [np.take(x, ins[1], axis=a.get("axis", 0))]
    if op == "Unsqueeze":
        y = x
        for ax in sorted(int(v) % (x.ndim + len(ins[1])) for v in ins[1]):
            y = np.expand_dims(y, ax)
        return [y]
    if op == "Concat":
        return [np.concatenate(ins, axis=a["axis"])]
    raise ValueError(f"operator {op} not supported by this checker")


def run_model(model, x):
    env = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    env[model.graph.input[0].name] = x
    for node in model.graph.node:
        ins = [env[n] if n else None for n in node.input]
        outs = run_node(node, ins)
        for name, val in zip(node.output, outs):
            env[name] = val
    return env[model.graph.output[0].name]


def main():
    data = np.load(os.path.join(HERE, "data", "fmnist_eval_2000.npz"))
    ref = np.load(os.path.join(HERE, "data", "pytorch_predictions_eval_2000.npz"))
    x = ((data["x"].astype(np.float32) / np.float32(255.0)) - np.float32(MEAN)) / np.float32(STD)
    y = data["y"]
    ok = True
    for key in sorted(ref.files):
        name = key[:-len("_logits")]
        path = os.path.join(HERE, "models", f"{name}.onnx")
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        got = np.concatenate([run_model(model, x[i:i + 250]) for i in range(0, len(x), 250)])
        want = ref[key]
        diff = float(np.abs(got - want).max())
        same_pred = int((got.argmax(1) == want.argmax(1)).sum())
        acc = float((got.argmax(1) == y).mean())
        good = diff < 1e-3 and same_pred == len(x)
        ok &= good
        print(f"{name}: max |onnx - torch| = {diff:.2e}, same argmax {same_pred}/{len(x)}, "
              f"accuracy on eval subset {acc:.4f} -> {'OK' if good else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
