using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Math;

/// <summary>
/// Quantize, dequantize and fake-quantize (quantize then dequantize) of float data under a <see cref="QuantParams"/>.
/// Uniform codes: q = clamp(round_half_even(x / scale), qmin − zp, qmax − zp) + zp, with the division and the
/// rounding in float32 (as the ONNX reference does); x' = (q − zp) · scale in float32. NaN maps to the zero
/// point (it dequantizes to 0); ±∞ saturate. Binary: q = x ≥ 0 ? +1 : −1 (NaN → +1). Ternary: q = +1 when
/// x &gt; t·scale, −1 when x &lt; −t·scale, else 0 (NaN → 0). Codes are returned as int32; see
/// <see cref="ToStorage"/> and <see cref="CodePacking"/> for narrower storage.
/// </summary>
public static class QuantOps
{
    /// <summary>Scalar reference of one uniform code.</summary>
    public static int QuantizeValue(float x, float scale, int zeroPoint, int qmin, int qmax)
    {
        if (float.IsNaN(x)) return zeroPoint;
        float r = MathF.Round(x / scale, MidpointRounding.ToEven);
        float lo = qmin - zeroPoint, hi = qmax - zeroPoint;
        r = r < lo ? lo : r > hi ? hi : r;
        return (int)r + zeroPoint;
    }

    /// <summary>(q − zeroPoint) · scale in float32.</summary>
    public static float DequantizeValue(int q, float scale, int zeroPoint) => (q - zeroPoint) * scale;

    /// <summary>Code of one value under any code kind (per-group parameters already selected).</summary>
    public static int QuantizeValue(float x, float scale, int zeroPoint, QuantScheme scheme) => scheme.Code switch
    {
        QuantCode.Binary => x >= 0 || float.IsNaN(x) ? 1 : -1,
        QuantCode.Ternary => x > scheme.TernaryThreshold * scale ? 1 : x < -scheme.TernaryThreshold * scale ? -1 : 0,
        _ => QuantizeValue(x, scale, zeroPoint, scheme.QMin, scheme.QMax),
    };

    /// <summary>Scalar reference per-tensor quantization loop (the vectorised path must match it bit for bit).</summary>
    public static void QuantizeScalar(ReadOnlySpan<float> x, Span<int> q, float scale, int zeroPoint, int qmin, int qmax)
    {
        CheckLengths(x.Length, q.Length);
        for (int i = 0; i < x.Length; i++) q[i] = QuantizeValue(x[i], scale, zeroPoint, qmin, qmax);
    }

    /// <summary>Scalar reference per-tensor dequantization loop.</summary>
    public static void DequantizeScalar(ReadOnlySpan<int> q, Span<float> y, float scale, int zeroPoint)
    {
        CheckLengths(q.Length, y.Length);
        for (int i = 0; i < q.Length; i++) y[i] = DequantizeValue(q[i], scale, zeroPoint);
    }

    /// <summary>
    /// Per-tensor uniform quantization, vectorised with Vector512/Vector256 where the hardware has them. Each step
    /// (IEEE division, round-to-nearest-even, clamp of an integral float, exact int conversion) is exactly the
    /// scalar step, so results are identical to <see cref="QuantizeScalar"/>.
    /// </summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<int> q, float scale, int zeroPoint, int qmin, int qmax)
    {
        CheckLengths(x.Length, q.Length);
        int i = Vector512.IsHardwareAccelerated ? Quantize512(x, q, scale, zeroPoint, qmin, qmax)
            : Vector256.IsHardwareAccelerated ? Quantize256(x, q, scale, zeroPoint, qmin, qmax) : 0;
        for (; i < x.Length; i++) q[i] = QuantizeValue(x[i], scale, zeroPoint, qmin, qmax);
    }

    /// <summary>Vector512 body of <see cref="Quantize(ReadOnlySpan{float}, Span{int}, float, int, int, int)"/>; returns how many elements it did.</summary>
    internal static int Quantize512(ReadOnlySpan<float> x, Span<int> q, float scale, int zeroPoint, int qmin, int qmax)
    {
        int i = 0;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref int qs = ref MemoryMarshal.GetReference(q);
        var vs = Vector512.Create(scale);
        var vlo = Vector512.Create((float)(qmin - zeroPoint));
        var vhi = Vector512.Create((float)(qmax - zeroPoint));
        var vz = Vector512.Create(zeroPoint);
        for (; i <= x.Length - Vector512<float>.Count; i += Vector512<float>.Count)
        {
            var v = Vector512.LoadUnsafe(ref xs, (nuint)i);
            v = Vector512.ConditionalSelect(Vector512.Equals(v, v), v, Vector512<float>.Zero); // NaN → 0 → zero point
            var r = Vector512.Round(v / vs);
            r = Vector512.Min(Vector512.Max(r, vlo), vhi);
            (Vector512.ConvertToInt32(r) + vz).StoreUnsafe(ref qs, (nuint)i);
        }
        return i;
    }

    /// <summary>Vector256 body of the per-tensor quantization; returns how many elements it did.</summary>
    internal static int Quantize256(ReadOnlySpan<float> x, Span<int> q, float scale, int zeroPoint, int qmin, int qmax)
    {
        int i = 0;
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref int qs = ref MemoryMarshal.GetReference(q);
        var vs = Vector256.Create(scale);
        var vlo = Vector256.Create((float)(qmin - zeroPoint));
        var vhi = Vector256.Create((float)(qmax - zeroPoint));
        var vz = Vector256.Create(zeroPoint);
        for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            var v = Vector256.LoadUnsafe(ref xs, (nuint)i);
            v = Vector256.ConditionalSelect(Vector256.Equals(v, v), v, Vector256<float>.Zero); // NaN → 0 → zero point
            var r = Vector256.Round(v / vs);
            r = Vector256.Min(Vector256.Max(r, vlo), vhi);
            (Vector256.ConvertToInt32(r) + vz).StoreUnsafe(ref qs, (nuint)i);
        }
        return i;
    }

    /// <summary>Per-tensor dequantization, vectorised; (q − zp) is exact in float32 for |q − zp| &lt; 2^24, so it matches the scalar loop.</summary>
    public static void Dequantize(ReadOnlySpan<int> q, Span<float> y, float scale, int zeroPoint)
    {
        CheckLengths(q.Length, y.Length);
        int i = Vector512.IsHardwareAccelerated ? Dequantize512(q, y, scale, zeroPoint)
            : Vector256.IsHardwareAccelerated ? Dequantize256(q, y, scale, zeroPoint) : 0;
        for (; i < q.Length; i++) y[i] = DequantizeValue(q[i], scale, zeroPoint);
    }

    internal static int Dequantize512(ReadOnlySpan<int> q, Span<float> y, float scale, int zeroPoint)
    {
        int i = 0;
        ref int qs = ref MemoryMarshal.GetReference(q);
        ref float ys = ref MemoryMarshal.GetReference(y);
        var vs = Vector512.Create(scale);
        var vz = Vector512.Create(zeroPoint);
        for (; i <= q.Length - Vector512<int>.Count; i += Vector512<int>.Count)
            (Vector512.ConvertToSingle(Vector512.LoadUnsafe(ref qs, (nuint)i) - vz) * vs).StoreUnsafe(ref ys, (nuint)i);
        return i;
    }

    internal static int Dequantize256(ReadOnlySpan<int> q, Span<float> y, float scale, int zeroPoint)
    {
        int i = 0;
        ref int qs = ref MemoryMarshal.GetReference(q);
        ref float ys = ref MemoryMarshal.GetReference(y);
        var vs = Vector256.Create(scale);
        var vz = Vector256.Create(zeroPoint);
        for (; i <= q.Length - Vector256<int>.Count; i += Vector256<int>.Count)
            (Vector256.ConvertToSingle(Vector256.LoadUnsafe(ref qs, (nuint)i) - vz) * vs).StoreUnsafe(ref ys, (nuint)i);
        return i;
    }

    /// <summary>Quantizes <paramref name="x"/> of <paramref name="shape"/> with parameters of any granularity and code kind.</summary>
    public static void Quantize(ReadOnlySpan<float> x, ReadOnlySpan<int> shape, QuantParams p, Span<int> q)
    {
        CheckLengths(x.Length, q.Length);
        var s = p.Scheme;
        var layout = CheckedLayout(x.Length, shape, p);
        if (layout.Granularity == QuantGranularity.PerTensor && s.Code == QuantCode.Uniform)
        {
            Quantize(x, q, p.Scale[0], p.ZeroPoint[0], s.QMin, s.QMax);
            return;
        }
        int inner = layout.Inner;
        for (int row = 0; row < layout.Rows; row++)
        {
            int pb = layout.RowParamBase(row), off = row * inner;
            if (layout.ParamInnerStride == 0 && s.Code == QuantCode.Uniform)
            {
                Quantize(x.Slice(off, inner), q.Slice(off, inner), p.Scale[pb], p.ZeroPoint[pb], s.QMin, s.QMax);
                continue;
            }
            for (int i = 0; i < inner; i++)
            {
                int pi = pb + i * layout.ParamInnerStride;
                q[off + i] = QuantizeValue(x[off + i], p.Scale[pi], p.ZeroPoint[pi], s);
            }
        }
    }

    /// <summary>Dequantizes codes of <paramref name="shape"/> with parameters of any granularity and code kind.</summary>
    public static void Dequantize(ReadOnlySpan<int> q, ReadOnlySpan<int> shape, QuantParams p, Span<float> y)
    {
        CheckLengths(q.Length, y.Length);
        var layout = CheckedLayout(q.Length, shape, p);
        int inner = layout.Inner;
        for (int row = 0; row < layout.Rows; row++)
        {
            int pb = layout.RowParamBase(row), off = row * inner;
            if (layout.ParamInnerStride == 0)
            {
                Dequantize(q.Slice(off, inner), y.Slice(off, inner), p.Scale[pb], p.ZeroPoint[pb]);
                continue;
            }
            for (int i = 0; i < inner; i++)
            {
                int pi = pb + i;
                y[off + i] = DequantizeValue(q[off + i], p.Scale[pi], p.ZeroPoint[pi]);
            }
        }
    }

    /// <summary>y = dequantize(quantize(x)): the value the quantized model sees in place of x.</summary>
    public static void FakeQuantize(ReadOnlySpan<float> x, ReadOnlySpan<int> shape, QuantParams p, Span<float> y)
    {
        var q = new int[x.Length];
        Quantize(x, shape, p, q);
        Dequantize(q, shape, p, y);
    }

    public static Tensor<int> Quantize(Tensor<float> x, QuantParams p)
    {
        var q = new Tensor<int>((int[])x.Shape.Clone());
        Quantize(x.Data, x.Shape, p, q.Data);
        return q;
    }

    public static Tensor<float> Dequantize(Tensor<int> q, QuantParams p)
    {
        var y = new Tensor<float>((int[])q.Shape.Clone());
        Dequantize(q.Data, q.Shape, p, y.Data);
        return y;
    }

    public static Tensor<float> FakeQuantize(Tensor<float> x, QuantParams p)
    {
        var y = new Tensor<float>((int[])x.Shape.Clone());
        FakeQuantize(x.Data, x.Shape, p, y.Data);
        return y;
    }

    /// <summary>
    /// Copies int32 codes into a tensor of the scheme's <see cref="QuantScheme.StorageType"/> (int8, uint8, int16,
    /// uint16, int4 held one per sbyte, uint4 one per byte), as QuantizeLinear's output would hold them.
    /// </summary>
    public static Tensor ToStorage(Tensor<int> codes, QuantScheme scheme)
    {
        var t = scheme.StorageType ?? throw new QuantSharpException(
            $"{scheme.Bits}-bit {scheme.Code} codes have no ONNX element type; pack them with CodePacking");
        var shape = (int[])codes.Shape.Clone();
        var (min, max) = QuantMath.Range(t);
        foreach (int v in codes.Data)
            if (v < min || v > max) throw new QuantSharpException($"code {v} does not fit {DataTypes.Name(t)}");
        return t switch
        {
            DataType.Int8 or DataType.Int4 => new Tensor<sbyte>(codes.Data.Select(v => (sbyte)v).ToArray(), shape, t),
            DataType.UInt8 or DataType.UInt4 => new Tensor<byte>(codes.Data.Select(v => (byte)v).ToArray(), shape, t),
            DataType.Int16 => new Tensor<short>(codes.Data.Select(v => (short)v).ToArray(), shape, t),
            _ => new Tensor<ushort>(codes.Data.Select(v => (ushort)v).ToArray(), shape, t),
        };
    }

    private static QuantParamLayout CheckedLayout(int length, ReadOnlySpan<int> shape, QuantParams p)
    {
        if (ShapeUtil.Product(shape) != length)
            throw new QuantSharpException($"{length} values do not match shape {ShapeUtil.Format(shape)}");
        var layout = p.Layout(shape);
        if (layout.ParamCount != p.Count)
            throw new QuantSharpException($"{p.Count} quantization parameters do not fit shape {ShapeUtil.Format(shape)} ({layout.ParamCount} expected)");
        return layout;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CheckLengths(int a, int b)
    {
        if (a != b) throw new QuantSharpException($"source has {a} elements but destination has {b}");
    }
}
