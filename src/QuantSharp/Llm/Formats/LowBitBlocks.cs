using System.Runtime.InteropServices;

namespace QuantSharp.Llm.Formats;

/// <summary>
/// Group-wise asymmetric INT3/INT2 with an integer zero point, the low-bit siblings of the INT4 groups:
/// maxq = 2^bits − 1, the range [min(0, x_min), max(0, x_max)] (it always contains 0, so 0 — the padding of a partial
/// group — is exact), scale = (max − min)/maxq stored as fp16, z = clamp(round(−min/scale), 0, maxq),
/// q = clamp(round(x/scale) + z, 0, maxq), value = scale·(q − z).
/// Codes are a little-endian bit stream: code i occupies bits [bits·i, bits·i + bits) of Qs (bit 0 = LSB of byte 0).
/// </summary>
public static unsafe class LowBitGroup
{
    /// <summary>The code of <paramref name="x"/> on the grid (scale, zero) with codes 0..maxq.</summary>
    public static int Code(float x, float scale, int zero, int maxq)
    {
        float inv = scale != 0 ? 1f / scale : 0f;
        return Math.Clamp((int)MathF.Round(x * inv, MidpointRounding.AwayFromZero) + zero, 0, maxq);
    }

    /// <summary>(scale, zero) of the min/max rule for <paramref name="v"/>.</summary>
    public static (Half Scale, byte Zero) Params(ReadOnlySpan<float> v, int maxq)
    {
        float min = 0, max = 0;
        foreach (float x in v)
        {
            min = Math.Min(min, x);
            max = Math.Max(max, x);
        }
        var scale = (Half)((max - min) / maxq);
        float s = (float)scale;
        byte zero = (byte)Math.Clamp(s != 0 ? MathF.Round(-min / s, MidpointRounding.AwayFromZero) : 0, 0, maxq);
        return (scale, zero);
    }

    public static int Get(byte* qs, int bits, int i)
    {
        int bit = bits * i;
        // A code spans at most two bytes (bits ≤ 8); read 16 bits when the second byte is part of it.
        int word = qs[bit >> 3] | ((bit & 7) + bits > 8 ? qs[(bit >> 3) + 1] << 8 : 0);
        return (word >> (bit & 7)) & ((1 << bits) - 1);
    }

    public static void Set(byte* qs, int bits, int i, int code)
    {
        int bit = bits * i, mask = (1 << bits) - 1;
        int lo = bit >> 3, sh = bit & 7;
        qs[lo] = (byte)((qs[lo] & ~(mask << sh)) | (code << sh));
        if (sh + bits > 8)
        {
            int hiShift = 8 - sh;
            qs[lo + 1] = (byte)((qs[lo + 1] & ~(mask >> hiShift)) | (code >> hiShift));
        }
    }

    /// <summary>Quantizes n ≤ group values; the slots past n get the zero code.</summary>
    public static void Quantize(ReadOnlySpan<float> v, int bits, int group, out Half scale, out byte zero, byte* qs)
    {
        int maxq = (1 << bits) - 1;
        (scale, zero) = Params(v, maxq);
        float s = (float)scale;
        for (int i = 0; i < group; i++) Set(qs, bits, i, i < v.Length ? Code(v[i], s, zero, maxq) : zero);
    }

    public static void Dequantize(Half scale, byte zero, byte* qs, int bits, int group, Span<float> dst)
    {
        float s = (float)scale;
        for (int i = 0; i < group; i++) dst[i] = s * (Get(qs, bits, i) - zero);
    }

    /// <summary>Re-rounds slot <paramref name="i"/> to <paramref name="x"/> on the block's existing grid; returns the stored value.</summary>
    public static float SetCode(Half scale, byte zero, byte* qs, int bits, int i, float x)
    {
        float s = (float)scale;
        int q = Code(x, s, zero, (1 << bits) - 1);
        Set(qs, bits, i, q);
        return s * (q - zero);
    }
}

/// <summary>INT3 asymmetric, group 32: fp16 scale, uint8 zero, 12 bytes of 3-bit codes = 15 bytes (3.75 bits per weight).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockInt3G32 : IWeightBlock<BlockInt3G32>
{
    public Half Scale;
    public byte Zero;
    public fixed byte Qs[12];

    public static int Count => 32;
    public static string TypeName => "int3-g32";
    public static BlockInt3G32 Quantize(ReadOnlySpan<float> v)
    {
        var b = new BlockInt3G32();
        LowBitGroup.Quantize(v, 3, 32, out b.Scale, out b.Zero, b.Qs);
        return b;
    }
    public static void Dequantize(in BlockInt3G32 b, Span<float> dst)
    {
        fixed (byte* q = b.Qs) LowBitGroup.Dequantize(b.Scale, b.Zero, q, 3, 32, dst);
    }
    public static float SetCode(ref BlockInt3G32 b, int i, float x)
    {
        fixed (byte* q = b.Qs) return LowBitGroup.SetCode(b.Scale, b.Zero, q, 3, i, x);
    }
}

/// <summary>INT3 asymmetric, group 64: 27 bytes (3.375 bits per weight).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockInt3G64 : IWeightBlock<BlockInt3G64>
{
    public Half Scale;
    public byte Zero;
    public fixed byte Qs[24];

    public static int Count => 64;
    public static string TypeName => "int3-g64";
    public static BlockInt3G64 Quantize(ReadOnlySpan<float> v)
    {
        var b = new BlockInt3G64();
        LowBitGroup.Quantize(v, 3, 64, out b.Scale, out b.Zero, b.Qs);
        return b;
    }
    public static void Dequantize(in BlockInt3G64 b, Span<float> dst)
    {
        fixed (byte* q = b.Qs) LowBitGroup.Dequantize(b.Scale, b.Zero, q, 3, 64, dst);
    }
    public static float SetCode(ref BlockInt3G64 b, int i, float x)
    {
        fixed (byte* q = b.Qs) return LowBitGroup.SetCode(b.Scale, b.Zero, q, 3, i, x);
    }
}

/// <summary>INT3 asymmetric, group 128: 51 bytes (3.1875 bits per weight).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockInt3G128 : IWeightBlock<BlockInt3G128>
{
    public Half Scale;
    public byte Zero;
    public fixed byte Qs[48];

    public static int Count => 128;
    public static string TypeName => "int3-g128";
    public static BlockInt3G128 Quantize(ReadOnlySpan<float> v)
    {
        var b = new BlockInt3G128();
        LowBitGroup.Quantize(v, 3, 128, out b.Scale, out b.Zero, b.Qs);
        return b;
    }
    public static void Dequantize(in BlockInt3G128 b, Span<float> dst)
    {
        fixed (byte* q = b.Qs) LowBitGroup.Dequantize(b.Scale, b.Zero, q, 3, 128, dst);
    }
    public static float SetCode(ref BlockInt3G128 b, int i, float x)
    {
        fixed (byte* q = b.Qs) return LowBitGroup.SetCode(b.Scale, b.Zero, q, 3, i, x);
    }
}

/// <summary>INT2 asymmetric, group 32: fp16 scale, uint8 zero, 8 bytes of 2-bit codes = 11 bytes (2.75 bits per weight).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockInt2G32 : IWeightBlock<BlockInt2G32>
{
    public Half Scale;
    public byte Zero;
    public fixed byte Qs[8];

    public static int Count => 32;
    public static string TypeName => "int2-g32";
    public static BlockInt2G32 Quantize(ReadOnlySpan<float> v)
    {
        var b = new BlockInt2G32();
        LowBitGroup.Quantize(v, 2, 32, out b.Scale, out b.Zero, b.Qs);
        return b;
    }
    public static void Dequantize(in BlockInt2G32 b, Span<float> dst)
    {
        fixed (byte* q = b.Qs) LowBitGroup.Dequantize(b.Scale, b.Zero, q, 2, 32, dst);
    }
    public static float SetCode(ref BlockInt2G32 b, int i, float x)
    {
        fixed (byte* q = b.Qs) return LowBitGroup.SetCode(b.Scale, b.Zero, q, 2, i, x);
    }
}

/// <summary>INT2 asymmetric, group 64: 19 bytes (2.375 bits per weight).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockInt2G64 : IWeightBlock<BlockInt2G64>
{
    public Half Scale;
    public byte Zero;
    public fixed byte Qs[16];

    public static int Count => 64;
    public static string TypeName => "int2-g64";
    public static BlockInt2G64 Quantize(ReadOnlySpan<float> v)
    {
        var b = new BlockInt2G64();
        LowBitGroup.Quantize(v, 2, 64, out b.Scale, out b.Zero, b.Qs);
        return b;
    }
    public static void Dequantize(in BlockInt2G64 b, Span<float> dst)
    {
        fixed (byte* q = b.Qs) LowBitGroup.Dequantize(b.Scale, b.Zero, q, 2, 64, dst);
    }
    public static float SetCode(ref BlockInt2G64 b, int i, float x)
    {
        fixed (byte* q = b.Qs) return LowBitGroup.SetCode(b.Scale, b.Zero, q, 2, i, x);
    }
}

/// <summary>INT2 asymmetric, group 128: 35 bytes (2.1875 bits per weight).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockInt2G128 : IWeightBlock<BlockInt2G128>
{
    public Half Scale;
    public byte Zero;
    public fixed byte Qs[32];

    public static int Count => 128;
    public static string TypeName => "int2-g128";
    public static BlockInt2G128 Quantize(ReadOnlySpan<float> v)
    {
        var b = new BlockInt2G128();
        LowBitGroup.Quantize(v, 2, 128, out b.Scale, out b.Zero, b.Qs);
        return b;
    }
    public static void Dequantize(in BlockInt2G128 b, Span<float> dst)
    {
        fixed (byte* q = b.Qs) LowBitGroup.Dequantize(b.Scale, b.Zero, q, 2, 128, dst);
    }
    public static float SetCode(ref BlockInt2G128 b, int i, float x)
    {
        fixed (byte* q = b.Qs) return LowBitGroup.SetCode(b.Scale, b.Zero, q, 2, i, x);
    }
}
