using QuantSharp.Llm.Formats;

namespace QuantSharp.Llm.Quantization;

/// <summary>
/// Re-rounds one weight of an existing block on the grid the block already stores (its scale/zero/min stay fixed) and
/// returns the value it now represents. This is what GPTQ needs once a group's parameters are chosen, and what a
/// scale search uses to score a candidate block. Each codec applies exactly the rounding rule of the format's
/// reference quantizer, so quantizing every slot of a fresh block through the codec reproduces that quantizer's codes.
/// </summary>
public interface IBlockCodec<TBlock> where TBlock : unmanaged, IWeightBlock<TBlock>
{
    static abstract float SetCode(ref TBlock block, int index, float value);
}

/// <summary>Q8_0: q = clamp(round(x/d), −127, 127).</summary>
public readonly unsafe struct Q8_0Codec : IBlockCodec<BlockQ8_0>
{
    public static float SetCode(ref BlockQ8_0 b, int i, float x)
    {
        float d = (float)b.D, id = d != 0 ? 1f / d : 0f;
        int q = (int)Math.Clamp(MathF.Round(x * id, MidpointRounding.AwayFromZero), -127, 127);
        b.Qs[i] = (sbyte)q;
        return d * q;
    }
}

/// <summary>Q4_0: q = clamp(round(x/d) + 8, 0, 15), value d·(q − 8); slot j &lt; 16 is the low nibble of byte j, else the high nibble of byte j − 16.</summary>
public readonly unsafe struct Q4_0Codec : IBlockCodec<BlockQ4_0>
{
    public static float SetCode(ref BlockQ4_0 b, int i, float x)
    {
        float d = (float)b.D, id = d != 0 ? 1f / d : 0f;
        int q = (int)Math.Clamp(MathF.Round(x * id, MidpointRounding.AwayFromZero) + 8, 0, 15);
        Nibbles.Set(ref b.Qs[0], 16, i, q);
        return d * (q - 8);
    }
}

/// <summary>Q4_1: q = clamp(round((x − m)/d), 0, 15), value d·q + m.</summary>
public readonly unsafe struct Q4_1Codec : IBlockCodec<BlockQ4_1>
{
    public static float SetCode(ref BlockQ4_1 b, int i, float x)
    {
        float d = (float)b.D, m = (float)b.M, id = d != 0 ? 1f / d : 0f;
        int q = (int)Math.Clamp(MathF.Round((x - m) * id, MidpointRounding.AwayFromZero), 0, 15);
        Nibbles.Set(ref b.Qs[0], 16, i, q);
        return d * q + m;
    }
}

/// <summary>INT4 groups: q = clamp(round(x/scale) + z, 0, 15), value scale·(q − z); nibbles split at half the group.</summary>
public readonly unsafe struct Int4G32Codec : IBlockCodec<BlockInt4G32>
{
    public static float SetCode(ref BlockInt4G32 b, int i, float x) => Nibbles.SetInt4(b.Scale, b.Zero, ref b.Qs[0], 16, i, x);
}

public readonly unsafe struct Int4G64Codec : IBlockCodec<BlockInt4G64>
{
    public static float SetCode(ref BlockInt4G64 b, int i, float x) => Nibbles.SetInt4(b.Scale, b.Zero, ref b.Qs[0], 32, i, x);
}

public readonly unsafe struct Int4G128Codec : IBlockCodec<BlockInt4G128>
{
    public static float SetCode(ref BlockInt4G128 b, int i, float x) => Nibbles.SetInt4(b.Scale, b.Zero, ref b.Qs[0], 64, i, x);
}

public readonly struct Int3G32Codec : IBlockCodec<BlockInt3G32> { public static float SetCode(ref BlockInt3G32 b, int i, float x) => BlockInt3G32.SetCode(ref b, i, x); }
public readonly struct Int3G64Codec : IBlockCodec<BlockInt3G64> { public static float SetCode(ref BlockInt3G64 b, int i, float x) => BlockInt3G64.SetCode(ref b, i, x); }
public readonly struct Int3G128Codec : IBlockCodec<BlockInt3G128> { public static float SetCode(ref BlockInt3G128 b, int i, float x) => BlockInt3G128.SetCode(ref b, i, x); }
public readonly struct Int2G32Codec : IBlockCodec<BlockInt2G32> { public static float SetCode(ref BlockInt2G32 b, int i, float x) => BlockInt2G32.SetCode(ref b, i, x); }
public readonly struct Int2G64Codec : IBlockCodec<BlockInt2G64> { public static float SetCode(ref BlockInt2G64 b, int i, float x) => BlockInt2G64.SetCode(ref b, i, x); }
public readonly struct Int2G128Codec : IBlockCodec<BlockInt2G128> { public static float SetCode(ref BlockInt2G128 b, int i, float x) => BlockInt2G128.SetCode(ref b, i, x); }
public readonly struct Q4_KCodec : IBlockCodec<BlockQ4_K> { public static float SetCode(ref BlockQ4_K b, int i, float x) => BlockQ4_K.SetCode(ref b, i, x); }

internal static class Nibbles
{
    /// <summary>Stores a 4-bit code for slot i of a nibble array whose byte j holds slots j (low) and j + half (high).</summary>
    public static void Set(ref byte qs0, int half, int i, int q)
    {
        ref byte at = ref System.Runtime.CompilerServices.Unsafe.Add(ref qs0, i % half);
        at = i < half ? (byte)((at & 0xF0) | q) : (byte)((at & 0x0F) | (q << 4));
    }

    public static float SetInt4(Half scale, byte zero, ref byte qs0, int half, int i, float x)
    {
        float s = (float)scale, id = s != 0 ? 1f / s : 0f;
        int q = Math.Clamp((int)MathF.Round(x * id, MidpointRounding.AwayFromZero) + zero, 0, 15);
        Set(ref qs0, half, i, q);
        return s * (q - zero);
    }
}
