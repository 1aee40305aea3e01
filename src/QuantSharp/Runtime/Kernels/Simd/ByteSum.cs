using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>
/// Exact sum of a run of 8-bit codes (the quantized GlobalAveragePool's plane sums). vpsadbw against zero adds
/// eight bytes into each 64-bit lane, so no partial sum can overflow; the tail is added in scalar code.
/// Matches <see cref="Reference.ByteSumReference.Sum"/> exactly.
/// </summary>
public static unsafe class ByteSum
{
    /// <summary>Σ_i (x[i] xor flip) over <paramref name="length"/> bytes.</summary>
    public static long Sum(byte* x, int length, byte flip)
    {
        int i = 0;
        ulong total = 0;
        if (Avx512BW.IsSupported && length >= 64)
        {
            var f = Vector512.Create(flip);
            var acc = Vector512<ulong>.Zero;
            for (; i <= length - 64; i += 64) acc += Avx512BW.SumAbsoluteDifferences(Vector512.Load(x + i) ^ f, Vector512<byte>.Zero).AsUInt64();
            total += Vector512.Sum(acc);
        }
        if (Avx2.IsSupported && length - i >= 32)
        {
            var f = Vector256.Create(flip);
            var acc = Vector256<ulong>.Zero;
            for (; i <= length - 32; i += 32) acc += Avx2.SumAbsoluteDifferences(Vector256.Load(x + i) ^ f, Vector256<byte>.Zero).AsUInt64();
            total += Vector256.Sum(acc);
        }
        if (Sse2.IsSupported && length - i >= 16)
        {
            var f = Vector128.Create(flip);
            var acc = Vector128<ulong>.Zero;
            for (; i <= length - 16; i += 16) acc += Sse2.SumAbsoluteDifferences(Vector128.Load(x + i) ^ f, Vector128<byte>.Zero).AsUInt64();
            total += Vector128.Sum(acc);
        }
        for (; i < length; i++) total += (byte)(x[i] ^ flip);
        return (long)total;
    }
}
