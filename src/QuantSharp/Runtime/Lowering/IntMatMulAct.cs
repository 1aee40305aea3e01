using QuantSharp.Quantization.Math;
using QuantSharp.Runtime.Operators;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// Quantized MatMul of two computed 8-bit tensors (attention's Q·Kᵀ and P·V), ranks and batch axes as in MatMul.
/// Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point. y = sat(round(s_a·s_b/s_y ·
/// Σ_p (a − z_a)(b − z_b)) + z_y), the sum exact in int32; batches split over threads (each output written once,
/// so results do not depend on the thread count).
/// </summary>
[OnnxOperator("MatMulAct", 1, Domain = IntegerLowering.Domain)]
public sealed class IntMatMulActKernel : OpKernel
{
    private float _mult;
    private int _za, _zb, _zy, _min, _max;
    private DataType _outType;

    public override void Initialize(KernelInitContext ctx)
    {
        float sa = IntOps.Scalar(ctx.Constant(1), "a_scale"), sb = IntOps.Scalar(ctx.Constant(4), "b_scale");
        float sy = IntOps.Scalar(ctx.Constant(6), "y_scale");
        _za = IntOps.ZeroPoint(ctx.Constant(2), "a_zero_point");
        _zb = IntOps.ZeroPoint(ctx.Constant(5), "b_zero_point");
        var zyT = ctx.Constant(7);
        _zy = IntOps.ZeroPoint(zyT, "y_zero_point");
        _outType = IntOps.TypeOf(zyT);
        (_min, _max) = QuantMath.Range(_outType);
        _mult = (float)((double)sa * sb / sy);
    }

    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(3);
        if (a is not (Tensor<byte> or Tensor<sbyte>) || b is not (Tensor<byte> or Tensor<sbyte>))
            throw new QuantSharpException($"inputs must be uint8 or int8, got {a} and {b}");
        var plan = MatMulKernel.Plan(a.Shape, b.Shape);
        int m = plan.M, n = plan.N, k = plan.K;
        var y = ctx.Output(0, _outType, plan.OutputShape);
        if (y.Length == 0) return;
        var batch = plan.Batch;
        int count = ShapeUtil.Product(batch);
        var aStr = MatMulKernel.BroadcastStrides(plan.ABatch, batch, m * k);
        var bStr = MatMulKernel.BroadcastStrides(plan.BBatch, batch, k * n);
        bool aSigned = a is Tensor<sbyte>, bSigned = b is Tensor<sbyte>;
        ctx.ParallelFor(count, Math.Max(1, 4096 / Math.Max(1, m * n * k / 64)), (t0, t1) =>
        {
            var ab = IntOps.Bytes(a);
            var bb = IntOps.Bytes(b);
            var yb = IntOps.Bytes(y);
            for (int t = t0; t < t1; t++)
            {
                long ao = 0, bo = 0;
                int rem = t;
                for (int d = batch.Length - 1; d >= 0; d--)
                {
                    int i = rem % batch[d];
                    rem /= batch[d];
                    ao += (long)i * aStr[d];
                    bo += (long)i * bStr[d];
                }
                Kernels.Simd.Int8MatMulAct.Multiply(ab.Slice((int)ao, m * k), aSigned, bb.Slice((int)bo, k * n), bSigned,
                    yb.Slice(t * m * n, m * n), m, n, k, _mult, _za, _zb, _zy, _min, _max);
            }
        });
    }
}
