using System.Numerics;
using System.Runtime.Intrinsics;
using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// Quantized binary Add / Mul with NumPy broadcasting. Inputs: a, a_scale, a_zero_point, b, b_scale,
/// b_zero_point, y_scale, y_zero_point. Add: y = round(s_a/s_y·(a − z_a) + s_b/s_y·(b − z_b)) + z_y;
/// Mul: y = round(s_a·s_b/s_y·(a − z_a)(b − z_b)) + z_y; both saturated (and clamped by a folded activation).
/// </summary>
public abstract class IntBinaryKernel : OpKernel
{
    private float _ma, _mb;
    private int _za, _zb, _zy, _min, _max;
    private DataType _outType;
    private protected abstract bool IsMul { get; }

    public override void Initialize(KernelInitContext ctx)
    {
        float sa = IntOps.Scalar(ctx.Constant(1), "a_scale"), sb = IntOps.Scalar(ctx.Constant(4), "b_scale");
        float sy = IntOps.Scalar(ctx.Constant(6), "y_scale");
        _za = IntOps.ZeroPoint(ctx.Constant(2), "a_zero_point");
        _zb = IntOps.ZeroPoint(ctx.Constant(5), "b_zero_point");
        var zyT = ctx.Constant(7);
        _zy = IntOps.ZeroPoint(zyT, "y_zero_point");
        _outType = IntOps.TypeOf(zyT);
        (_min, _max) = IntOps.ClampRange(Node, _outType, sy, _zy);
        if (IsMul) _ma = (float)((double)sa * sb / sy);
        else
        {
            _ma = (float)((double)sa / sy);
            _mb = (float)((double)sb / sy);
        }
    }

    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(3);
        var shape = ShapeUtil.Broadcast(a.Shape, b.Shape);
        var y = ctx.Output(0, _outType, shape);
        switch (a, b, y)
        {
            case (Tensor<byte> x1, Tensor<byte> x2, Tensor<byte> o): Run(ctx, x1, x2, o); break;
            case (Tensor<sbyte> x1, Tensor<sbyte> x2, Tensor<sbyte> o): Run(ctx, x1, x2, o); break;
            case (Tensor<byte> x1, Tensor<byte> x2, Tensor<sbyte> o): Run(ctx, x1, x2, o); break;
            case (Tensor<sbyte> x1, Tensor<sbyte> x2, Tensor<byte> o): Run(ctx, x1, x2, o); break;
            case (Tensor<byte> x1, Tensor<sbyte> x2, Tensor<byte> o): Run(ctx, x1, x2, o); break;
            case (Tensor<sbyte> x1, Tensor<byte> x2, Tensor<byte> o): Run(ctx, x1, x2, o); break;
            case (Tensor<byte> x1, Tensor<sbyte> x2, Tensor<sbyte> o): Run(ctx, x1, x2, o); break;
            case (Tensor<sbyte> x1, Tensor<byte> x2, Tensor<sbyte> o): Run(ctx, x1, x2, o); break;
            default: throw new QuantSharpException($"inputs must be uint8 or int8, got {a} and {b}");
        }
    }

    private int Combine(int a, int b)
    {
        if (IsMul) return Kernels.Reference.Int8MulReference.Mul(a, b, _ma, _za, _zb, _zy, _min, _max);
        float r = _ma * (a - _za) + _mb * (b - _zb);
        r = MathF.Round(r, MidpointRounding.ToEven) + _zy;
        return r <= _min ? _min : r >= _max ? _max : (int)r;
    }

    private void Run<TA, TB, TY>(KernelContext ctx, Tensor<TA> a, Tensor<TB> b, Tensor<TY> y)
        where TA : unmanaged, IBinaryInteger<TA> where TB : unmanaged, IBinaryInteger<TB> where TY : unmanaged, IBinaryInteger<TY>
    {
        var ad = a.Data;
        var bd = b.Data;
        var yd = y.Data;
        if (ShapeUtil.SameShape(a.Shape, b.Shape))
        {
            bool mul = IsMul;
            if (!mul)
            {
                // Add: the vector kernel on the bytes (s8 as two's complement), equal to Combine.
                Array aa = ad, ba = bd, ya = yd;
                bool aSigned = typeof(TA) == typeof(sbyte), bSigned = typeof(TB) == typeof(sbyte);
                ctx.ParallelFor(yd.Length, 16384, (lo, hi) =>
                    Kernels.Simd.Int8Add.Add(Bytes(aa).Slice(lo, hi - lo), aSigned, Bytes(ba).Slice(lo, hi - lo), bSigned, Bytes(ya).Slice(lo, hi - lo),
                        _ma, _za, _mb, _zb, _zy, _min, _max));
                return;
            }
            {
                // Mul: the vector kernel on the bytes, equal to Combine (Int8MulReference is the same formula).
                Array aa = ad, ba = bd, ya = yd;
                bool aSigned = typeof(TA) == typeof(sbyte), bSigned = typeof(TB) == typeof(sbyte);
                ctx.ParallelFor(yd.Length, 16384, (lo, hi) =>
                    Kernels.Simd.Int8Mul.Mul(Bytes(aa).Slice(lo, hi - lo), aSigned, Bytes(ba).Slice(lo, hi - lo), bSigned, Bytes(ya).Slice(lo, hi - lo),
                        _ma, _za, _zb, _zy, _min, _max));
            }
            return;
        }
        var shape = y.Shape;
        int rank = shape.Length;
        var sa = BroadcastStrides(a.Shape, shape);
        var sb = BroadcastStrides(b.Shape, shape);
        var idx = new int[rank];
        int ia = 0, ib = 0;
        for (int i = 0; i < yd.Length; i++)
        {
            yd[i] = TY.CreateTruncating(Combine(int.CreateTruncating(ad[ia]), int.CreateTruncating(bd[ib])));
            for (int d = rank - 1; d >= 0; d--)
            {
                ia += sa[d];
                ib += sb[d];
                if (++idx[d] < shape[d]) break;
                ia -= sa[d] * shape[d];
                ib -= sb[d] * shape[d];
                idx[d] = 0;
            }
        }
    }

    private static Span<byte> Bytes(Array x) => x is sbyte[] s ? System.Runtime.InteropServices.MemoryMarshal.AsBytes(s.AsSpan()) : ((byte[])x).AsSpan();

    /// <summary>Element strides of an input aligned to the output's trailing axes; 0 on broadcast axes.</summary>
    private static int[] BroadcastStrides(int[] inShape, int[] outShape)
    {
        var s = new int[outShape.Length];
        var own = ShapeUtil.Strides(inShape);
        int off = outShape.Length - inShape.Length;
        for (int d = 0; d < inShape.Length; d++) s[d + off] = inShape[d] == 1 ? 0 : own[d];
        return s;
    }
}

[OnnxOperator("Add", 1, Domain = IntegerLowering.Domain)]
public sealed class IntAddKernel : IntBinaryKernel
{
    private protected override bool IsMul => false;
}

[OnnxOperator("Mul", 1, Domain = IntegerLowering.Domain)]
public sealed class IntMulKernel : IntBinaryKernel
{
    private protected override bool IsMul => true;
}

/// <summary>
/// A unary function of one quantized value as a 256-entry table: T[q] = sat(round(f((q − z_x)·s_x) / s_y) + z_y),
/// built once from the scales. Inputs: x, x_scale, x_zero_point, y_scale, y_zero_point; attribute <c>function</c>
/// (Sigmoid, Tanh, HardSwish, HardSigmoid, Gelu, Relu, LeakyRelu, Clip, Elu, Softplus, Exp) with its
/// parameters (alpha, beta, approximate, min, max).
/// </summary>
[OnnxOperator("Lut", 1, Domain = IntegerLowering.Domain)]
public sealed class IntLutKernel : OpKernel
{
    private readonly int[] _table = new int[256];
    private byte[]? _bytes;
    private DataType _inType, _outType;

    public override void Initialize(KernelInitContext ctx)
    {
        float xs = IntOps.Scalar(ctx.Constant(1), "x_scale"), ys = IntOps.Scalar(ctx.Constant(3), "y_scale");
        var xzT = ctx.Constant(2);
        var yzT = ctx.Constant(4);
        int xz = IntOps.ZeroPoint(xzT, "x_zero_point"), yz = IntOps.ZeroPoint(yzT, "y_zero_point");
        _inType = IntOps.TypeOf(xzT);
        _outType = IntOps.TypeOf(yzT);
        var (lo, hi) = QuantMath.Range(_outType);
        int inMin = QuantMath.Range(_inType).Min;
        if (Node.GetString("function", "") == "Table")
        {
            // A table computed by the lowering (an emulated chain of float ops): output codes by input index.
            var t = Node.GetInts("table");
            if (t is null || t.Length != 256) throw new QuantSharpException($"lookup table {Node.Name}: 'table' must have 256 entries");
            for (int i = 0; i < 256; i++) _table[i] = QuantMath.Saturate(t[i], lo, hi);
            return;
        }
        var f = Function(Node.GetString("function", ""));
        for (int i = 0; i < 256; i++)
        {
            int q = inMin + i;
            float v = f((q - xz) * xs);
            _table[i] = float.IsNaN(v) ? yz : QuantMath.Saturate(QuantMath.RoundHalfToEven((double)(v / ys)) + yz, lo, hi);
        }
    }

    private Func<float, float> Function(string name)
    {
        float alpha = Node.GetFloat("alpha", float.NaN), beta = Node.GetFloat("beta", float.NaN);
        return name switch
        {
            "Sigmoid" => x => 1f / (1f + MathF.Exp(-x)),
            "Tanh" => MathF.Tanh,
            "HardSigmoid" => x => Math.Max(0f, Math.Min(1f, (float.IsNaN(alpha) ? 0.2f : alpha) * x + (float.IsNaN(beta) ? 0.5f : beta))),
            "HardSwish" => x => x * Math.Max(0f, Math.Min(1f, x / 6f + 0.5f)),
            "Gelu" => Node.GetString("approximate", "none") == "tanh"
                ? x => 0.5f * x * (1f + MathF.Tanh(MathF.Sqrt(2f / MathF.PI) * (x + 0.044715f * x * x * x)))
                : x => 0.5f * x * (1f + Erf(x / MathF.Sqrt(2f))),
            "Relu" => x => Math.Max(x, 0f),
            "LeakyRelu" => x => x >= 0 ? x : (float.IsNaN(alpha) ? 0.01f : alpha) * x,
            "Elu" => x => x >= 0 ? x : (float.IsNaN(alpha) ? 1f : alpha) * (MathF.Exp(x) - 1f),
            "Softplus" => x => MathF.Log(1f + MathF.Exp(x)),
            "Exp" => MathF.Exp,
            "Clip" => x => Math.Min(Math.Max(x, Node.GetFloat("min", float.NegativeInfinity)), Node.GetFloat("max", float.PositiveInfinity)),
            _ => throw new QuantSharpException($"lookup table: unknown function '{name}'"),
        };
    }

    /// <summary>erf in double precision by its Maclaurin series (|x| ≤ 3) or the continued-fraction tail, rounded to float.</summary>
    internal static float Erf(float xf)
    {
        double x = xf, ax = Math.Abs(x);
        if (ax > 6) return Math.Sign(x);
        if (ax <= 3)
        {
            // erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1))
            double sum = 0, term = x;
            for (int n = 0; n < 200; n++)
            {
                double t = term / (2 * n + 1);
                sum += t;
                if (Math.Abs(t) < 1e-17 * Math.Abs(sum)) break;
                term *= -x * x / (n + 1);
            }
            return (float)(2 / Math.Sqrt(Math.PI) * sum);
        }
        // erfc(x) = e^(−x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))) for large x
        double f = ax;
        for (int k = 60; k >= 1; k--) f = ax + k / 2.0 / f;
        double erfc = Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / f;
        return (float)(Math.Sign(x) * (1 - erfc));
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0, _outType, x.Shape);
        int offset = -QuantMath.Range(_inType).Min;
        // Bytes in, bytes out: the table index is the byte xor 0x80 for s8 input (q + 128 for q in [−128, 127]).
        int flip = offset == 0 ? 0 : 0x80;
        var table = _bytes ??= _table.Select(v => (byte)v).ToArray();
        IntOps.Bytes(x);
        ctx.ParallelFor(y.Length, 65536, (lo, hi) =>
            Kernels.Simd.Int8Lut.Lookup(IntOps.Bytes(x).Slice(lo, hi - lo), (byte)flip, table, IntOps.Bytes(y).Slice(lo, hi - lo)));
    }
}

/// <summary>
/// Quantized Softmax over the last axis. Inputs: x, x_scale, x_zero_point, y_scale, y_zero_point. With m the
/// largest code of a row, e[d] = exp(−d · s_x) for d = m − x_j ∈ [0, 255] comes from a 256-entry table built once
/// (the softmax is invariant to the shift by m, and x's zero point cancels); S = Σ_j e[m − x_j] summed in index
/// order in float; y_j = sat(round_half_even(e[m − x_j] / (S · s_y)) + z_y). Rows are independent, so the result
/// does not depend on the thread count.
/// </summary>
[OnnxOperator("Softmax", 1, Domain = IntegerLowering.Domain)]
public sealed class IntSoftmaxKernel : OpKernel
{
    private readonly float[] _exp = new float[256];
    private DataType _inType, _outType;
    private float _ys;
    private int _yz;

    public override void Initialize(KernelInitContext ctx)
    {
        float xs = IntOps.Scalar(ctx.Constant(1), "x_scale");
        _ys = IntOps.Scalar(ctx.Constant(3), "y_scale");
        var yzT = ctx.Constant(4);
        _yz = IntOps.ZeroPoint(yzT, "y_zero_point");
        _inType = IntOps.TypeOf(ctx.Constant(2));
        _outType = IntOps.TypeOf(yzT);
        for (int d = 0; d < 256; d++) _exp[d] = (float)Math.Exp(-(double)d * xs);
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0, _outType, x.Shape);
        if (x.Length == 0) return;
        int cols = x.Rank == 0 ? 1 : x.Shape[^1];
        int rows = cols == 0 ? 0 : x.Length / cols;
        // Bytes compared in the input's order: signed codes become unsigned by xor 0x80 (order kept, differences kept).
        int flip = QuantMath.Range(_inType).Min < 0 ? 0x80 : 0;
        var (lo, hi) = QuantMath.Range(_outType);
        var exp = _exp;
        float ys = _ys;
        int yz = _yz;
        ctx.ParallelFor(rows, Math.Max(1, 4096 / Math.Max(1, cols)), (r0, r1) =>
        {
            var xb = IntOps.Bytes(x);
            var yb = IntOps.Bytes(y);
            var scratch = ctx.RentScratch<float>(cols);
            try
            {
                for (int r = r0; r < r1; r++)
                    Kernels.Simd.Int8Softmax.Row(xb.Slice(r * cols, cols), (byte)flip, exp, ys, yz, lo, hi, yb.Slice(r * cols, cols), scratch);
            }
            finally { ctx.ReturnScratch(scratch); }
        });
    }
}

/// <summary>
/// Quantized GlobalAveragePool: y[n, c] = sat(round(s_x / (s_y · S) · Σ_s (x[n, c, s] − z_x)) + z_y) over the S
/// spatial elements. Inputs: x, x_scale, x_zero_point, y_scale, y_zero_point.
/// </summary>
[OnnxOperator("GlobalAveragePool", 1, Domain = IntegerLowering.Domain)]
public sealed unsafe class IntGlobalAveragePoolKernel : OpKernel
{
    private double _ratio;
    private int _xz, _yz, _min, _max;
    private DataType _outType;

    public override void Initialize(KernelInitContext ctx)
    {
        _ratio = (double)IntOps.Scalar(ctx.Constant(1), "x_scale") / IntOps.Scalar(ctx.Constant(3), "y_scale");
        _xz = IntOps.ZeroPoint(ctx.Constant(2), "x_zero_point");
        var yzT = ctx.Constant(4);
        _yz = IntOps.ZeroPoint(yzT, "y_zero_point");
        _outType = IntOps.TypeOf(yzT);
        (_min, _max) = QuantMath.Range(_outType);
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        if (x.Rank < 3) throw new QuantSharpException($"x must be [N, C, spatial…], got {x}");
        int[] shape = [.. x.Shape[..2], .. Enumerable.Repeat(1, x.Rank - 2)];
        var y = ctx.Output(0, _outType, shape);
        int planes = x.Shape[0] * x.Shape[1], s = planes == 0 ? 0 : x.Length / planes;
        var dst = new int[planes];
        float m = (float)(_ratio / Math.Max(s, 1));
        // s8 codes are summed as code + 128 (xor 0x80), so the zero point moves by 128 too.
        (byte[] bytes, byte flip, int zero) = x switch
        {
            Tensor<byte> u => (u.Data, (byte)0, _xz),
            Tensor<sbyte> sb => ((byte[])(Array)sb.Data, (byte)0x80, _xz + 128),
            _ => throw new QuantSharpException($"x must be uint8 or int8, got {x}"),
        };
        fixed (byte* px = bytes)
        {
            for (int p = 0; p < planes; p++)
            {
                long sum = Kernels.Simd.ByteSum.Sum(px + (long)p * s, s, flip) - (long)zero * s;
                dst[p] = QuantMath.Saturate(MathF.Round(sum * m, MidpointRounding.ToEven) + _yz, _min, _max);
            }
        }
        Operators.Quantization.QuantTensorOps.StoreInts(y, dst);
    }

    internal static int[] QuantizedInts(Tensor x) => x is Tensor<byte> or Tensor<sbyte>
        ? Operators.Quantization.QuantTensorOps.ToInts(x, "x")
        : throw new QuantSharpException($"x must be uint8 or int8, got {x}");
}

/// <summary>
/// Quantized Concat: every input is requantized to the output's scale, y = sat(round(s_i/s_y·(x_i − z_i)) + z_y)
/// (a plain copy when the parameters agree). Inputs: y_scale, y_zero_point, then x_i, x_scale_i, x_zero_point_i for
/// each input; attribute axis.
/// </summary>
[OnnxOperator("Concat", 1, Domain = IntegerLowering.Domain)]
public sealed class IntConcatKernel : OpKernel
{
    private float[] _ratio = [];
    private int[] _zero = [];
    private int _yz, _min, _max;
    private DataType _outType;

    public override void Initialize(KernelInitContext ctx)
    {
        float ys = IntOps.Scalar(ctx.Constant(0), "y_scale");
        var yzT = ctx.Constant(1);
        _yz = IntOps.ZeroPoint(yzT, "y_zero_point");
        _outType = IntOps.TypeOf(yzT);
        (_min, _max) = QuantMath.Range(_outType);
        int count = (Node.Inputs.Count - 2) / 3;
        _ratio = new float[count];
        _zero = new int[count];
        for (int i = 0; i < count; i++)
        {
            _ratio[i] = (float)((double)IntOps.Scalar(ctx.Constant(3 + 3 * i), "x_scale") / ys);
            _zero[i] = IntOps.ZeroPoint(ctx.Constant(4 + 3 * i), "x_zero_point");
        }
    }

    public override void Compute(KernelContext ctx)
    {
        int count = _ratio.Length;
        var first = ctx.Input(2);
        int axis = ShapeUtil.NormalizeAxis(Node.GetInt("axis", 0), first.Rank);
        var shape = (int[])first.Shape.Clone();
        shape[axis] = 0;
        for (int i = 0; i < count; i++) shape[axis] += ctx.Input(2 + 3 * i).Shape[axis];
        var y = ctx.Output(0, _outType, shape);
        int outer = ShapeUtil.Product(shape.AsSpan(0, axis));
        int inner = ShapeUtil.Product(shape.AsSpan(axis + 1));
        int outRow = shape[axis] * inner;
        var yBytes = Bytes(y);
        bool ySigned = y is Tensor<sbyte>;
        int at = 0;
        for (int i = 0; i < count; i++)
        {
            var x = ctx.Input(2 + 3 * i);
            if (x is not (Tensor<byte> or Tensor<sbyte>)) throw new QuantSharpException($"x must be uint8 or int8, got {x}");
            var src = Bytes(x);
            bool xSigned = x is Tensor<sbyte>;
            int row = x.Shape[axis] * inner;
            // Same type, scale and zero point: the codes are copied; otherwise requantized by the vector Add kernel
            // with a zero second term (ratio·(x − z) + 0·(x − z) is exactly ratio·(x − z) in float).
            bool copy = xSigned == ySigned && _ratio[i] == 1f && _zero[i] == _yz;
            for (int o = 0; o < outer; o++)
            {
                var s = src.Slice(o * row, row);
                var d = yBytes.Slice(o * outRow + at, row);
                if (copy) s.CopyTo(d);
                else Kernels.Simd.Int8Add.Add(s, xSigned, s, xSigned, d, _ratio[i], _zero[i], 0f, _zero[i], _yz, _min, _max);
            }
            at += row;
        }
    }

    private static Span<byte> Bytes(Tensor t) => t switch
    {
        Tensor<sbyte> s => System.Runtime.InteropServices.MemoryMarshal.AsBytes(s.Data.AsSpan()),
        Tensor<byte> u => u.Data.AsSpan(),
        _ => throw new QuantSharpException($"expected a uint8 or int8 tensor, got {t}"),
    };
}
