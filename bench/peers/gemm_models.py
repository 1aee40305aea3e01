#!/usr/bin/python3
"""Writes the ONNX models of the int8 GEMM peer comparison (issue-6 shapes) into DIR:
gemm_matmulinteger_MxNxK.onnx  MatMulInteger: A uint8 [M,K] input (zero point 3) x constant B int8 [K,N] -> int32 [M,N]
gemm_qlinearmatmul_MxNxK.onnx  QLinearMatMul: same operands, output requantized to uint8 [M,N]
for M,N,K in 1024,1024,1024 and 64,4096,4096 (opset 13). B is a constant initializer, so ONNX Runtime packs it
once at session creation, like QuantSharp's packed weights. Needs the onnx and numpy packages; prints a skip
message and exits 0 without them."""

import os
import sys

SHAPES = [(1024, 1024, 1024), (64, 4096, 4096)]


def main():
    out = sys.argv[1]
    try:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as e:
        print(f"gemm_models: skipped: onnx/numpy not available ({e})", flush=True)
        return 0
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(3)
    for m, n, k in SHAPES:
        b = numpy_helper.from_array(rng.integers(-128, 128, size=(k, n), dtype=np.int8), "B")
        a_zp = numpy_helper.from_array(np.array(3, dtype=np.uint8), "a_zero_point")
        a = helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])
        graphs = {
            "matmulinteger": helper.make_graph(
                [helper.make_node("MatMulInteger", ["A", "B", "a_zero_point"], ["Y"])],
                "gemm", [a], [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])], [b, a_zp]),
            "qlinearmatmul": helper.make_graph(
                [helper.make_node("QLinearMatMul", ["A", "a_scale", "a_zero_point", "B", "b_scale", "b_zero_point",
                                                    "y_scale", "y_zero_point"], ["Y"])],
                "gemm", [a], [helper.make_tensor_value_info("Y", TensorProto.UINT8, [m, n])],
                [b, a_zp,
                 numpy_helper.from_array(np.array(0.02, dtype=np.float32), "a_scale"),
                 numpy_helper.from_array(np.array(0.01, dtype=np.float32), "b_scale"),
                 numpy_helper.from_array(np.array(0, dtype=np.int8), "b_zero_point"),
                 numpy_helper.from_array(np.array(2.0, dtype=np.float32), "y_scale"),
                 numpy_helper.from_array(np.array(128, dtype=np.uint8), "y_zero_point")]),
        }
        for op, graph in graphs.items():
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
            model.ir_version = 7
            onnx.checker.check_model(model)
            onnx.save(model, os.path.join(out, f"gemm_{op}_{m}x{n}x{k}.onnx"))
    print(f"gemm_models: wrote {2 * len(SHAPES)} models to {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
