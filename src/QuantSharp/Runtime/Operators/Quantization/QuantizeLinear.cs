using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators.Quantization;

/// <summary>
/// QuantizeLinear (opsets 10, 13, 19, 21, 23, 24, 25): y = saturate(round_half_even(x / y_scale) + y_zero_point).
/// <list type="bullet">
/// <item>Granularity from y_scale's shape: scalar → per-tensor; 1-D → per-axis along <c>axis</c> (default 1);
/// with <c>block_size</c> &gt; 0 → blocked (scale has x's rank, ceil(D/block_size) along the axis).</item>
/// <item>Output type: y_zero_point's type, else the <c>output_dtype</c> attribute, else uint8. Integer outputs only
/// (int8, uint8, int16, uint16, int4, uint4); float8/float4 outputs are refused.</item>
/// <item>x: float, float16, bfloat16 or int32. The division is carried out in the precision of y_scale's type
/// (or of the <c>precision</c> attribute when set): x and y_scale are rounded to that type, and so is the quotient,
/// before rounding to an integer.</item>
/// </list>
/// </summary>
[OnnxOperator("QuantizeLinear", 10)]
public sealed class QuantizeLinearKernel : OpKernel
{
    private long _axis = 1;
    private long _blockSize;
    private DataType? _outputDtype;
    private DataType? _precision;

    public override void Initialize(KernelInitContext ctx)
    {
        var n = ctx.Node;
        _axis = n.GetInt("axis", 1);
        _blockSize = n.GetInt("block_size", 0);
        if (_blockSize < 0) throw new QuantSharpException($"block_size {_blockSize} must not be negative");
        _outputDtype = QuantTensorOps.QuantizedDtypeAttribute(n);
        if (_outputDtype is { } od && !QuantMath.IsQuantizedInteger(od))
            throw new QuantSharpException($"output_dtype {DataTypes.Name(od)} is not an integer quantization type");
        long p = n.GetInt("precision", 0);
        if (p != 0)
        {
            var pt = (DataType)p;
            if (pt is not (DataType.Float or DataType.Float16 or DataType.BFloat16 or DataType.Double))
                throw new QuantSharpException($"precision {p} must be float, float16, bfloat16 or double");
            _precision = pt;
        }
        if (n.Input(2)?.Type is { ElementType: var zt } && zt != DataType.Undefined)
        {
            QuantTensorOps.RefuseFloat8(zt, "y_zero_point");
            if (_outputDtype is { } o && o != zt)
                throw new QuantSharpException($"output_dtype {DataTypes.Name(o)} differs from y_zero_point's type {DataTypes.Name(zt)}");
        }
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var scale = ctx.Input(1);
        var zp = ctx.OptionalInput(2);
        var outType = zp?.DataType ?? _outputDtype ?? DataType.UInt8;
        if (_outputDtype is { } od && od != outType)
            throw new QuantSharpException($"output_dtype {DataTypes.Name(od)} differs from y_zero_point's type {DataTypes.Name(outType)}");
        if (!QuantMath.IsQuantizedInteger(outType))
            throw new QuantSharpException($"cannot quantize to {DataTypes.Name(outType)}");
        var layout = QuantParamLayout.Resolve(x.Shape, scale.Shape, _axis, _blockSize, "y_scale");
        if (zp is not null && !ShapeUtil.SameShape(zp.Shape, scale.Shape) && !(zp.Length == 1 && scale.Length == 1))
            throw new QuantSharpException($"y_zero_point shape {ShapeUtil.Format(zp.Shape)} differs from y_scale shape {ShapeUtil.Format(scale.Shape)}");
        var scales = QuantTensorOps.ToDoubles(scale, "y_scale");
        var zps = zp is null ? new int[scales.Length] : QuantTensorOps.ToInts(zp, "y_zero_point");
        var precision = _precision ?? scale.DataType;
        for (int i = 0; i < scales.Length; i++) scales[i] = QuantMath.RoundToPrecision(scales[i], precision);
        var (qmin, qmax) = QuantMath.Range(outType);
        var y = ctx.Output(0, outType, (int[])x.Shape.Clone());
        switch (x)
        {
            case Tensor<float> xf: Dispatch(ctx, xf.Data, scales, zps, layout, precision, qmin, qmax, y); break;
            case Tensor<Half> xh: Dispatch(ctx, xh.Data, scales, zps, layout, precision, qmin, qmax, y); break;
            case Tensor<int> xi: Dispatch(ctx, xi.Data, scales, zps, layout, precision, qmin, qmax, y); break;
            case Tensor<BFloat16>: Dispatch(ctx, QuantTensorOps.ToFloats(x, "x"), scales, zps, layout, precision, qmin, qmax, y); break;
            default: throw new QuantSharpException($"x must be float, float16, bfloat16 or int32, got {DataTypes.Name(x.DataType)}");
        }
    }

    private static void Dispatch<TIn>(KernelContext ctx, TIn[] x, double[] scales, int[] zps, QuantParamLayout l,
        DataType precision, int qmin, int qmax, Tensor y) where TIn : unmanaged, INumberBase<TIn>
    {
        switch (y)
        {
            case Tensor<byte> t: Run(ctx, x, scales, zps, l, precision, qmin, qmax, t.Data); break;
            case Tensor<sbyte> t: Run(ctx, x, scales, zps, l, precision, qmin, qmax, t.Data); break;
            case Tensor<short> t: Run(ctx, x, scales, zps, l, precision, qmin, qmax, t.Data); break;
            case Tensor<ushort> t: Run(ctx, x, scales, zps, l, precision, qmin, qmax, t.Data); break;
            default: throw new QuantSharpException($"cannot quantize to {DataTypes.Name(y.DataType)}");
        }
    }

    private static void Run<TIn, TOut>(KernelContext ctx, TIn[] x, double[] scales, int[] zps, QuantParamLayout l,
        DataType precision, int qmin, int qmax, TOut[] y)
        where TIn : unmanaged, INumberBase<TIn> where TOut : unmanaged, IBinaryInteger<TOut>
    {
        int inner = l.Inner, stride = l.ParamInnerStride;
        if (l.Rows == 0 || inner == 0) return;
        int minRows = Math.Max(1, 16384 / inner);
        // Per-tensor layouts are one long row; split it so the work still spreads over threads.
        if (l.Granularity == QuantGranularity.PerTensor)
        {
            if (typeof(TIn) == typeof(float) && precision == DataType.Float && (typeof(TOut) == typeof(byte) || typeof(TOut) == typeof(sbyte)))
            {
                var xf = (float[])(object)x;
                float sf = (float)scales[0];
                int z = zps[0];
                ctx.ParallelFor(x.Length, 16384, (start, end) =>
                {
                    var dst = System.Runtime.InteropServices.MemoryMarshal.AsBytes(y.AsSpan(start, end - start));
                    QuantizeToBytes(xf.AsSpan(start, end - start), sf, z, qmin, qmax, dst);
                });
                return;
            }
            ctx.ParallelFor(x.Length, 16384, (start, end) =>
            {
                for (int i = start; i < end; i++)
                    y[i] = TOut.CreateTruncating(QuantizeOne(double.CreateTruncating(x[i]), scales[0], zps[0], precision, qmin, qmax));
            });
            return;
        }
        ctx.ParallelFor(l.Rows, minRows, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int pBase = l.RowParamBase(r), off = r * inner;
                for (int i = 0; i < inner; i++)
                {
                    int p = pBase + i * stride;
                    y[off + i] = TOut.CreateTruncating(QuantizeOne(double.CreateTruncating(x[off + i]), scales[p], zps[p], precision, qmin, qmax));
                }
            }
        });
    }

    /// <summary>
    /// Per-tensor float → 8-bit codes, 16 lanes at a time: q = x / s in float (the float quotient equals the double
    /// quotient rounded to float, as <see cref="QuantizeOne"/> computes it), rounded half to even, NaN mapped to 0,
    /// clamped to [qmin − zp, qmax − zp] while still float (so ±∞ saturate), then zp added and narrowed to bytes
    /// (s8 codes as two's complement). The tail uses <see cref="QuantizeOne"/>.
    /// </summary>
    internal static void QuantizeToBytes(ReadOnlySpan<float> x, float s, int zp, int qmin, int qmax, Span<byte> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vs = Vector512.Create(s);
            var lo = Vector512.Create((float)(qmin - zp));
            var hi = Vector512.Create((float)(qmax - zp));
            var vz = Vector512.Create(zp);
            for (; i <= x.Length - 16; i += 16)
            {
                var q = Vector512.Round(Vector512.Create(x.Slice(i, 16)) / vs);
                q = Vector512.ConditionalSelect(Vector512.Equals(q, q), q, Vector512<float>.Zero);
                if (Avx512F.IsSupported)
                {
                    // q is a finite integer now, so vmaxps/vminps, vcvtps2dq and the truncating vpmovdb (the code's
                    // low byte, what the portable narrowing keeps) are exact without the portable forms' fix-ups.
                    var vi = Avx512F.Add(Avx512F.ConvertToVector512Int32(Avx512F.Min(Avx512F.Max(q, lo), hi)), vz);
                    Avx512F.ConvertToVector128Byte(vi).CopyTo(y.Slice(i, 16));
                    continue;
                }
                var v = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(q, lo), hi)) + vz;
                var n16 = Vector256.Narrow(v.GetLower(), v.GetUpper());
                Vector128.Narrow(n16.GetLower(), n16.GetUpper()).AsByte().CopyTo(y.Slice(i, 16));
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(s);
            var lo = Vector256.Create((float)(qmin - zp));
            var hi = Vector256.Create((float)(qmax - zp));
            var vz = Vector256.Create(zp);
            Span<byte> tmp = stackalloc byte[16];
            for (; i <= x.Length - 8; i += 8)
            {
                var q = Vector256.Round(Vector256.Create(x.Slice(i, 8)) / vs);
                q = Vector256.ConditionalSelect(Vector256.Equals(q, q), q, Vector256<float>.Zero);
                var v = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(q, lo), hi)) + vz;
                var n16 = Vector128.Narrow(v.GetLower(), v.GetUpper());
                Vector128.Narrow(n16, n16).AsByte().CopyTo(tmp);
                tmp[..8].CopyTo(y.Slice(i, 8));
            }
        }
        for (; i < x.Length; i++) y[i] = (byte)QuantizeOne(x[i], s, zp, DataType.Float, qmin, qmax);
    }

    /// <summary>
    /// saturate(round_half_even(x ⊘ s) + zp) where ⊘ is division in <paramref name="precision"/>: x is rounded to
    /// that type, divided by s (already in that type) and the quotient rounded to it. A NaN quotient has no code;
    /// it maps to the zero point (the code of 0.0).
    /// </summary>
    internal static int QuantizeOne(double x, double s, int zp, DataType precision, int qmin, int qmax)
    {
        double q = QuantMath.RoundToPrecision(QuantMath.RoundToPrecision(x, precision) / s, precision);
        if (double.IsNaN(q)) return QuantMath.Saturate((long)zp, qmin, qmax);
        return QuantMath.Saturate(QuantMath.RoundHalfToEven(q) + zp, qmin, qmax);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var x = ctx.InputType(0);
        var zt = QuantTensorOps.InputDtype(ctx, 2);
        var outType = zt != DataType.Undefined ? zt
            : ctx.Node.GetInt("output_dtype", 0) is var od and not 0 ? (DataType)od : DataType.UInt8;
        ctx.SetOutputType(0, new TensorTypeInfo(outType, x?.Shape));
    }
}
