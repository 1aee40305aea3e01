using QuantSharp.Quantization.Math;
using QuantSharp.Runtime.Operators;
using QuantSharp.Runtime.Operators.Quantization;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// DequantizeLinear → LayerNormalization → QuantizeLinear as one node on 8-bit codes. Inputs: x (u8/s8), x_scale,
/// x_zero_point, scale (float constant with the normalised size's length), bias (float constant or absent),
/// y_scale, y_zero_point; attributes axis and epsilon as in LayerNormalization. For each row over the axes
/// [axis, rank): v = (x − z_x)·s_x in float (the DequantizeLinear kernel's vector formula, <see cref="Kernels.Simd.Int8Dequantize"/>),
/// then the float LayerNormalization kernel's row formula (<see cref="LayerNormalizationKernel.NormalizeRow"/>),
/// then the QuantizeLinear kernel's per-tensor formula. The operations are the unlowered graph's own, so the codes
/// equal it exactly; what disappears is two nodes and the two float tensors between them.
/// </summary>
[OnnxOperator("LayerNormalization", 1, Domain = IntegerLowering.Domain)]
public sealed class IntLayerNormKernel : OpKernel
{
    private float[] _scaleConst = null!, _biasConst = [];
    private float[] _scale = [], _bias = [];
    private float _eps, _yScale, _xScale;
    private int _yZero, _qmin, _qmax, _xZero;
    private DataType _outType;
    private bool _signedIn;

    public override void Initialize(KernelInitContext ctx)
    {
        float xs = IntOps.Scalar(ctx.Constant(1), "x_scale");
        var xzT = ctx.Constant(2);
        int xz = IntOps.ZeroPoint(xzT, "x_zero_point");
        _signedIn = IntOps.TypeOf(xzT) == DataType.Int8;
        _xScale = xs;
        _xZero = xz;
        _scaleConst = QuantTensorOps.ToFloats(ctx.Constant(3) ?? throw new QuantSharpException("scale must be a constant"), "scale");
        if (Node.Input(4) is not null)
            _biasConst = QuantTensorOps.ToFloats(ctx.Constant(4) ?? throw new QuantSharpException("bias must be a constant"), "bias");
        _yScale = IntOps.Scalar(ctx.Constant(5), "y_scale");
        var yzT = ctx.Constant(6);
        _yZero = IntOps.ZeroPoint(yzT, "y_zero_point");
        _outType = IntOps.TypeOf(yzT);
        (_qmin, _qmax) = QuantMath.Range(_outType);
        _eps = Node.GetFloat("epsilon", 1e-5f);
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        if (x is not (Tensor<byte> or Tensor<sbyte>)) throw new QuantSharpException($"x must be uint8 or int8, got {x}");
        if ((x is Tensor<sbyte>) != _signedIn) throw new QuantSharpException($"x {x} does not match the type of x_zero_point");
        int axis = ShapeUtil.NormalizeAxis(Node.GetInt("axis", -1), x.Rank, "LayerNormalization axis");
        int size = ShapeUtil.Product(x.Shape.AsSpan(axis)), rows = ShapeUtil.Product(x.Shape.AsSpan(0, axis));
        if (_scale.Length != size) _scale = Expand(_scaleConst, size, "scale");
        if (_biasConst.Length != 0 && _bias.Length != size) _bias = Expand(_biasConst, size, "bias");
        var y = ctx.Output(0, _outType, (int[])x.Shape.Clone());
        if (y.Length == 0) return;
        // Rows are independent; each chunk uses its own two float rows of scratch.
        ctx.ParallelFor(rows, Math.Max(1, 16384 / Math.Max(1, size)), (r0, r1) =>
        {
            var buf = ctx.RentScratch<float>(2 * size);
            try
            {
                var xb = IntOps.Bytes(x);
                var yb = IntOps.Bytes(y);
                for (int r = r0; r < r1; r++)
                    NormalizeCodes(xb.Slice(r * size, size), yb.Slice(r * size, size), buf.AsSpan(0, size), buf.AsSpan(size, size));
            }
            finally { ctx.ReturnScratch(buf); }
        });
    }

    /// <summary>One row: codes → floats (DequantizeLinear) → LayerNormalization row formula → codes (QuantizeLinear).</summary>
    private void NormalizeCodes(ReadOnlySpan<byte> x, Span<byte> y, Span<float> v, Span<float> w)
    {
        Kernels.Simd.Int8Dequantize.Dequantize(x, _signedIn, _xScale, _xZero, v);
        LayerNormalizationKernel.NormalizeRow(v, w, _eps, _scale, _bias, out _, out _);
        QuantizeLinearKernel.QuantizeToBytes(w, _yScale, _yZero, _qmin, _qmax, y);
    }

    /// <summary>A constant of the row's length, or one value repeated (what the float kernel's broadcast gives).</summary>
    private static float[] Expand(float[] c, int size, string what)
    {
        if (c.Length == size) return c;
        if (c.Length != 1) throw new QuantSharpException($"{what} has {c.Length} elements, expected {size}");
        var r = new float[size];
        Array.Fill(r, c[0]);
        return r;
    }
}
