using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace QuantSharp.Llm.Kernels;

/// <summary>
/// How a kernel reads the codes of one packed tile (see <see cref="PackedQ8Weights"/>). Implemented by structs so the
/// JIT specializes and inlines each kernel per format.
/// </summary>
internal unsafe interface IQTile
{
    /// <summary>Signed code = stored code − Offset.</summary>
    static abstract int Offset { get; }
    /// <summary>Q4_1: the block adds m·dx·Σq.</summary>
    static abstract bool HasMin { get; }
    /// <summary>Quads h and h + 4 (h = 0..3) of the tile as unsigned codes, 8 rows × 4 codes each.</summary>
    static abstract void Load256(byte* tile, int h, out Vector256<byte> lo, out Vector256<byte> hi);
    /// <summary>Quads (2p, 2p+1) and (2p+4, 2p+5) (p = 0, 1) as unsigned codes.</summary>
    static abstract void Load512(byte* tile, int p, out Vector512<byte> lo, out Vector512<byte> hi);
    /// <summary>Σ over 4-code groups of u·x into int32 lanes with AVX-512BW (no VNNI): exact, no int16 saturation.</summary>
    static abstract Vector512<int> Dot512(Vector512<byte> u, Vector512<sbyte> x);
}

internal unsafe struct Q8_0Tile : IQTile
{
    public static int Offset => 128;
    public static bool HasMin => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load256(byte* tile, int h, out Vector256<byte> lo, out Vector256<byte> hi)
    {
        lo = Vector256.LoadAligned(tile + 32 * h);
        hi = Vector256.LoadAligned(tile + 128 + 32 * h);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load512(byte* tile, int p, out Vector512<byte> lo, out Vector512<byte> hi)
    {
        lo = Vector512.LoadAligned(tile + 64 * p);
        hi = Vector512.LoadAligned(tile + 128 + 64 * p);
    }

    /// <summary>
    /// u ≤ 255 and |x| ≤ 127: vpmaddubsw would saturate (2·255·127 &gt; 32767), so u is split into u &amp; 0x7F and
    /// u &amp; 0x80; each pair sum stays within ±2·128·127 = 32512, and vpmaddwd with ones widens to int32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Dot512(Vector512<byte> u, Vector512<sbyte> x)
    {
        var ones = Vector512.Create((short)1);
        var a = Avx512BW.MultiplyAddAdjacent(u & Vector512.Create((byte)0x7F), x);
        var b = Avx512BW.MultiplyAddAdjacent(u & Vector512.Create((byte)0x80), x);
        return Avx512BW.MultiplyAddAdjacent(a, ones) + Avx512BW.MultiplyAddAdjacent(b, ones);
    }
}

internal unsafe struct Q4_0Tile : IQTile
{
    public static int Offset => 8;
    public static bool HasMin => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load256(byte* tile, int h, out Vector256<byte> lo, out Vector256<byte> hi) => Nibbles.Load256(tile, h, out lo, out hi);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load512(byte* tile, int p, out Vector512<byte> lo, out Vector512<byte> hi) => Nibbles.Load512(tile, p, out lo, out hi);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Dot512(Vector512<byte> u, Vector512<sbyte> x) => Nibbles.Dot512(u, x);
}

internal unsafe struct Q4_1Tile : IQTile
{
    public static int Offset => 0;
    public static bool HasMin => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load256(byte* tile, int h, out Vector256<byte> lo, out Vector256<byte> hi) => Nibbles.Load256(tile, h, out lo, out hi);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load512(byte* tile, int p, out Vector512<byte> lo, out Vector512<byte> hi) => Nibbles.Load512(tile, p, out lo, out hi);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Dot512(Vector512<byte> u, Vector512<sbyte> x) => Nibbles.Dot512(u, x);
}

internal static unsafe class Nibbles
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load256(byte* tile, int h, out Vector256<byte> lo, out Vector256<byte> hi)
    {
        var v = Vector256.LoadAligned(tile + 32 * h);
        var mask = Vector256.Create((byte)0x0F);
        lo = v & mask;
        hi = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load512(byte* tile, int p, out Vector512<byte> lo, out Vector512<byte> hi)
    {
        var v = Vector512.LoadAligned(tile + 64 * p);
        var mask = Vector512.Create((byte)0x0F);
        lo = v & mask;
        hi = Vector512.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask;
    }

    /// <summary>u ≤ 15: vpmaddubsw pair sums are within ±2·15·127, no saturation; vpmaddwd with ones widens to int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> Dot512(Vector512<byte> u, Vector512<sbyte> x) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, x), Vector512.Create((short)1));
}

/// <summary>fp16 → fp32 for the 8 scales of a tile, exact for every finite half (packing rejects Inf/NaN scales).</summary>
internal static class HalfVector
{
    private static readonly float TwoPow112 = BitConverter.Int32BitsToSingle((127 + 112) << 23);

    /// <summary>
    /// Bits (h &amp; 0x7FFF) &lt;&lt; 13 read as a float are the half's exponent and mantissa with the float bias 127
    /// instead of 15; multiplying by 2^112 re-biases exactly (subnormal halves become normal floats). The sign is OR-ed back.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToSingle(Vector128<ushort> h)
    {
        var w = Vector256.WidenLower(h.ToVector256Unsafe()).AsUInt32();
        var mag = Vector256.ShiftLeft(w & Vector256.Create(0x7FFFu), 13).AsSingle() * Vector256.Create(TwoPow112);
        return (mag.AsUInt32() | Vector256.ShiftLeft(w & Vector256.Create(0x8000u), 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> ToSingle128(Vector128<uint> w)
    {
        var mag = Vector128.ShiftLeft(w & Vector128.Create(0x7FFFu), 13).AsSingle() * Vector128.Create(TwoPow112);
        return (mag.AsUInt32() | Vector128.ShiftLeft(w & Vector128.Create(0x8000u), 16)).AsSingle();
    }
}
