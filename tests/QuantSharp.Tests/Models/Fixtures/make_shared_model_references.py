#!/usr/bin/python3
"""Independent NumPy references for the shared models whose reference_results.json inputs are not shipped.

reference_results.json gives the CIFAR-10 CNN's logits for CIFAR test images, which ../shared does not ship (no
licence), and has no entry for the iris MLP. So this script feeds both models deterministic inputs (a smooth
synthetic RGB pattern for CIFAR, the first rows of Iris.csv for iris), runs them with the NumPy interpreter of
examples/check_onnx.py (independent of QuantSharp's C# runtime) and stores inputs and outputs as .npz for
RealModelTests.

Run:  /usr/bin/python3 tests/QuantSharp.Tests/Models/Fixtures/make_shared_model_references.py
"""
import csv
import os
import sys

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
SHARED = os.path.join(REPO, "..", "shared", "models", "onnx")
sys.path.insert(0, os.path.join(REPO, "examples"))
from check_onnx import run_model  # noqa: E402


def cifar_inputs():
    # Five 32x32 RGB "images": sums of sinusoids with per-image phases, pixel values 0..255, then (p/255-0.5)/0.5.
    n, h, w = 5, 32, 32
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    imgs = np.zeros((n, 3, h, w), dtype=np.float32)
    for i in range(n):
        for c in range(3):
            p = 127.5 + 120 * np.sin(0.21 * (c + 1) * xx + 0.37 * i) * np.cos(0.17 * (i + 1) * yy + 0.5 * c)
            imgs[i, c] = np.round(p)
    return ((imgs / np.float32(255.0)) - np.float32(0.5)) / np.float32(0.5)


def iris_inputs():
    with open(os.path.join(SHARED, "Iris.csv")) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    cols = [i for i, name in enumerate(header) if name.lower().endswith("cm")]
    picked = body[::30]
    return np.array([[float(r[i]) for i in cols] for r in picked], dtype=np.float32)


def main():
    out = {}
    for name, x in (("cifar10_winml_tutorial_cnn", cifar_inputs()), ("iris_mlp_opset11", iris_inputs())):
        model = onnx.load(os.path.join(SHARED, name + ".onnx"))
        y = run_model(model, x)
        out[name + "_input"] = x.astype(np.float32)
        out[name + "_output"] = np.asarray(y, dtype=np.float32)
        print(name, x.shape, "->", np.asarray(y).shape)
    np.savez(os.path.join(HERE, "shared_model_references.npz"), **out)


if __name__ == "__main__":
    main()
