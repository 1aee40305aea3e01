using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace QuantSharp.Llm.Formats;

/// <summary>
/// A fixed-size block of <see cref="Count"/> weights. Quantize reads n ≤ Count values (a row's last block may be
/// partial: the missing weights are stored as zero codes and never read back); Dequantize writes Count values.
/// IQ8DotBlock.DotQ8 is the product with a Q8 activation block: an exact integer sum of code products, then one float combination.
/// </summary>
public unsafe interface IWeightBlock<TSelf> where TSelf : unmanaged, IWeightBlock<TSelf>
{
    static abstract int Count { get; }
    static abstract string TypeName { get; }
    static abstract TSelf Quantize(ReadOnlySpan<float> values);
    static abstract void Dequantize(in TSelf block, Span<float> destination);
}

/// <summary>A block format whose product with int8-quantized activations is native (Q8_0, Q4_0, Q4_1).</summary>
public unsafe interface IQ8DotBlock<TSelf> : IWeightBlock<TSelf> where TSelf : unmanaged, IQ8DotBlock<TSelf>
{
    /// <summary>Σ w_i·x_i with x_i = dx·qx_i; <paramref name="simd"/> selects the vector path for the integer part.</summary>
    static abstract float DotQ8(in TSelf block, sbyte* qx, float dx, int sumQx, bool simd);
}

internal static unsafe class IntDot
{
    /// <summary>Σ a_i·b_i over 32 int8 pairs (|values| ≤ 127 on the activation side): the scalar reference.</summary>
    public static int Scalar32(sbyte* a, sbyte* b)
    {
        int s = 0;
        for (int i = 0; i < 32; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>
    /// The same sum with Vector256: widen int8→int16 (products |a·b| ≤ 128·127 fit in int16), multiply, widen to int32
    /// and add. Integer addition is exact in any order, so it equals <see cref="Scalar32"/> bit for bit.
    /// </summary>
    public static int Vector32(sbyte* a, sbyte* b)
    {
        if (!Vector256.IsHardwareAccelerated) return Scalar32(a, b);
        var va = Vector256.Load(a);
        var vb = Vector256.Load(b);
        var (alo, ahi) = Vector256.Widen(va);
        var (blo, bhi) = Vector256.Widen(vb);
        var plo = alo * blo;
        var phi = ahi * bhi;
        var (p0, p1) = Vector256.Widen(plo);
        var (p2, p3) = Vector256.Widen(phi);
        return Vector256.Sum(p0 + p1 + p2 + p3);
    }

    /// <summary>Unpacks llama.cpp's nibble layout: byte j holds code j (low nibble) and code j+16 (high nibble), minus <paramref name="offset"/>.</summary>
    public static void Unpack4(byte* qs, sbyte* dst, int offset)
    {
        for (int j = 0; j < 16; j++)
        {
            dst[j] = (sbyte)((qs[j] & 0x0F) - offset);
            dst[j + 16] = (sbyte)((qs[j] >> 4) - offset);
        }
    }

    /// <summary>Vector128 version of <see cref="Unpack4"/> (mask and shift of 16 bytes at once).</summary>
    public static void Unpack4Vector(byte* qs, sbyte* dst, int offset)
    {
        if (!Vector128.IsHardwareAccelerated)
        {
            Unpack4(qs, dst, offset);
            return;
        }
        var v = Vector128.Load(qs);
        var mask = Vector128.Create((byte)0x0F);
        var off = Vector128.Create((sbyte)offset);
        (Vector128.AsSByte(v & mask) - off).Store(dst);
        (Vector128.AsSByte(Vector128.ShiftRightLogical(v, 4) & mask) - off).Store(dst + 16);
    }
}

/// <summary>Q8_0: 32 weights, w = d·q with d = max|w|/127 (fp16) and q int8. 34 bytes = 8.5 bits per weight.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ8_0 : IQ8DotBlock<BlockQ8_0>
{
    public Half D;
    public fixed sbyte Qs[32];

    public static int Count => 32;
    public static string TypeName => "q8_0";

    public static BlockQ8_0 Quantize(ReadOnlySpan<float> v)
    {
        float amax = 0;
        foreach (float x in v) amax = Math.Max(amax, Math.Abs(x));
        var b = new BlockQ8_0 { D = (Half)(amax / 127f) };
        float d = (float)b.D, id = d != 0 ? 1f / d : 0f;
        for (int i = 0; i < v.Length; i++) b.Qs[i] = (sbyte)Math.Clamp(MathF.Round(v[i] * id, MidpointRounding.AwayFromZero), -127, 127);
        return b;
    }

    public static void Dequantize(in BlockQ8_0 b, Span<float> dst)
    {
        float d = (float)b.D;
        for (int i = 0; i < 32; i++) dst[i] = d * b.Qs[i];
    }

    public static float DotQ8(in BlockQ8_0 b, sbyte* qx, float dx, int sumQx, bool simd)
    {
        fixed (sbyte* q = b.Qs)
            return (float)b.D * dx * (simd ? IntDot.Vector32(q, qx) : IntDot.Scalar32(q, qx));
    }
}

/// <summary>
/// Q4_0: 32 weights, w = d·(q − 8) with q in 0..15; d = m/−8 where m is the weight of largest magnitude (sign kept),
/// so m itself maps to code 0. Nibbles in llama.cpp's order. 18 bytes = 4.5 bits per weight.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ4_0 : IQ8DotBlock<BlockQ4_0>
{
    public Half D;
    public fixed byte Qs[16];

    public static int Count => 32;
    public static string TypeName => "q4_0";

    public static BlockQ4_0 Quantize(ReadOnlySpan<float> v)
    {
        float m = 0;
        foreach (float x in v)
            if (Math.Abs(x) > Math.Abs(m)) m = x;
        var b = new BlockQ4_0 { D = (Half)(m / -8f) };
        float d = (float)b.D, id = d != 0 ? 1f / d : 0f;
        Span<byte> codes = stackalloc byte[32];
        codes.Fill(8); // padding of a partial block: code 8 = weight 0
        for (int i = 0; i < v.Length; i++) codes[i] = (byte)Math.Clamp(MathF.Round(v[i] * id, MidpointRounding.AwayFromZero) + 8, 0, 15);
        for (int j = 0; j < 16; j++) b.Qs[j] = (byte)(codes[j] | (codes[j + 16] << 4));
        return b;
    }

    public static void Dequantize(in BlockQ4_0 b, Span<float> dst)
    {
        float d = (float)b.D;
        for (int j = 0; j < 16; j++)
        {
            dst[j] = d * ((b.Qs[j] & 0x0F) - 8);
            dst[j + 16] = d * ((b.Qs[j] >> 4) - 8);
        }
    }

    public static float DotQ8(in BlockQ4_0 b, sbyte* qx, float dx, int sumQx, bool simd)
    {
        sbyte* w = stackalloc sbyte[32];
        fixed (byte* q = b.Qs)
        {
            if (simd) IntDot.Unpack4Vector(q, w, 8);
            else IntDot.Unpack4(q, w, 8);
        }
        return (float)b.D * dx * (simd ? IntDot.Vector32(w, qx) : IntDot.Scalar32(w, qx));
    }
}

/// <summary>Q4_1: 32 weights, w = d·q + m with m = min, d = (max − min)/15, q in 0..15. 20 bytes = 5 bits per weight.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ4_1 : IQ8DotBlock<BlockQ4_1>
{
    public Half D;
    public Half M;
    public fixed byte Qs[16];

    public static int Count => 32;
    public static string TypeName => "q4_1";

    public static BlockQ4_1 Quantize(ReadOnlySpan<float> v)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float x in v)
        {
            min = Math.Min(min, x);
            max = Math.Max(max, x);
        }
        var b = new BlockQ4_1 { D = (Half)((max - min) / 15f), M = (Half)min };
        float d = (float)b.D, m = (float)b.M, id = d != 0 ? 1f / d : 0f;
        Span<byte> codes = stackalloc byte[32];
        for (int i = 0; i < v.Length; i++) codes[i] = (byte)Math.Clamp(MathF.Round((v[i] - m) * id, MidpointRounding.AwayFromZero), 0, 15);
        for (int j = 0; j < 16; j++) b.Qs[j] = (byte)(codes[j] | (codes[j + 16] << 4));
        return b;
    }

    public static void Dequantize(in BlockQ4_1 b, Span<float> dst)
    {
        float d = (float)b.D, m = (float)b.M;
        for (int j = 0; j < 16; j++)
        {
            dst[j] = d * (b.Qs[j] & 0x0F) + m;
            dst[j + 16] = d * (b.Qs[j] >> 4) + m;
        }
    }

    /// <summary>Σ (d·q_i + m)·dx·qx_i = d·dx·Σ q_i·qx_i + m·dx·Σ qx_i (padding has qx = 0, so it adds nothing).</summary>
    public static float DotQ8(in BlockQ4_1 b, sbyte* qx, float dx, int sumQx, bool simd)
    {
        sbyte* w = stackalloc sbyte[32];
        fixed (byte* q = b.Qs)
        {
            if (simd) IntDot.Unpack4Vector(q, w, 0);
            else IntDot.Unpack4(q, w, 0);
        }
        int isum = simd ? IntDot.Vector32(w, qx) : IntDot.Scalar32(w, qx);
        return (float)b.D * dx * isum + (float)b.M * dx * sumQx;
    }
}

/// <summary>
/// Group-wise asymmetric INT4 with an integer zero point: scale = (max − min)/15, z = round(−min/scale) in 0..15,
/// q = clamp(round(w/scale) + z, 0, 15), w ≈ scale·(q − z). Nibbles as Q4_0. FP32 activations (no int8 product).
/// </summary>
internal static unsafe class Int4Group
{
    public static void Quantize(ReadOnlySpan<float> v, int group, out Half scale, out byte zero, byte* qs)
    {
        float min = 0, max = 0; // the range always includes 0, so 0 is exactly representable
        foreach (float x in v)
        {
            min = Math.Min(min, x);
            max = Math.Max(max, x);
        }
        scale = (Half)((max - min) / 15f);
        float s = (float)scale, id = s != 0 ? 1f / s : 0f;
        zero = (byte)Math.Clamp(MathF.Round(-min * id, MidpointRounding.AwayFromZero), 0, 15);
        int half = group / 2, zz = zero;
        for (int j = 0; j < half; j++)
        {
            int lo = j < v.Length ? Code(v[j]) : zero;
            int hi = j + half < v.Length ? Code(v[j + half]) : zero;
            qs[j] = (byte)(lo | (hi << 4));
        }
        int Code(float x) => Math.Clamp((int)MathF.Round(x * id, MidpointRounding.AwayFromZero) + zz, 0, 15);
    }

    public static void Dequantize(Half scale, byte zero, byte* qs, int group, Span<float> dst)
    {
        float s = (float)scale;
        int half = group / 2;
        for (int j = 0; j < half; j++)
        {
            dst[j] = s * ((qs[j] & 0x0F) - zero);
            dst[j + half] = s * ((qs[j] >> 4) - zero);
        }
    }
}

/// <summary>INT4 asymmetric, group 32: fp16 scale, uint8 zero point, 16 bytes of codes = 19 bytes (4.75 bits per weight).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockInt4G32 : IWeightBlock<BlockInt4G32>
{
    public Half Scale;
    public byte Zero;
    public fixed byte Qs[16];

    public static int Count => 32;
    public static string TypeName => "int4-g32";
    public static BlockInt4G32 Quantize(ReadOnlySpan<float> v)
    {
        var b = new BlockInt4G32();
        Int4Group.Quantize(v, 32, out b.Scale, out b.Zero, b.Qs);
        return b;
    }
    public static void Dequantize(in BlockInt4G32 b, Span<float> dst)
    {
        fixed (byte* q = b.Qs) Int4Group.Dequantize(b.Scale, b.Zero, q, 32, dst);
    }
}

/// <summary>INT4 asymmetric, group 64: 35 bytes (4.375 bits per weight).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockInt4G64 : IWeightBlock<BlockInt4G64>
{
    public Half Scale;
    public byte Zero;
    public fixed byte Qs[32];

    public static int Count => 64;
    public static string TypeName => "int4-g64";
    public static BlockInt4G64 Quantize(ReadOnlySpan<float> v)
    {
        var b = new BlockInt4G64();
        Int4Group.Quantize(v, 64, out b.Scale, out b.Zero, b.Qs);
        return b;
    }
    public static void Dequantize(in BlockInt4G64 b, Span<float> dst)
    {
        fixed (byte* q = b.Qs) Int4Group.Dequantize(b.Scale, b.Zero, q, 64, dst);
    }
}

/// <summary>INT4 asymmetric, group 128: 67 bytes (4.1875 bits per weight).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockInt4G128 : IWeightBlock<BlockInt4G128>
{
    public Half Scale;
    public byte Zero;
    public fixed byte Qs[64];

    public static int Count => 128;
    public static string TypeName => "int4-g128";
    public static BlockInt4G128 Quantize(ReadOnlySpan<float> v)
    {
        var b = new BlockInt4G128();
        Int4Group.Quantize(v, 128, out b.Scale, out b.Zero, b.Qs);
        return b;
    }
    public static void Dequantize(in BlockInt4G128 b, Span<float> dst)
    {
        fixed (byte* q = b.Qs) Int4Group.Dequantize(b.Scale, b.Zero, q, 128, dst);
    }
}
