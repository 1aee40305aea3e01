using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>Instruction-set path of <see cref="Int4Gemv"/> (Scalar runs <see cref="Int4GemvReference"/>).</summary>
public enum Int4GemvIsa { Scalar, V256, V512 }

/// <summary>
/// 4-bit weight-only GEMV/GEMM, Y = A · dequant(B)ᵀ, with B packed as com.microsoft MatMulNBits stores it and the
/// nibbles unpacked in registers: for each 16 codes, 8 packed bytes are loaded, split into low nibbles (b &amp; 0xF)
/// and high nibbles ((b &gt;&gt; 4) &amp; 0xF), interleaved low/high (punpcklbw) so the bytes are codes in k order,
/// zero-extended to int32 (vpmovzxbd), converted to float, the zero point subtracted, and fused-multiplied with A.
/// The float order is the one defined by <see cref="Int4GemvReference"/> (32 lanes, per-block lane sums, scale
/// fused per block, fixed lane-sum tree), so every path gives the same floats as the reference.
/// Vector512 holds the 32 lanes in two registers (two FMA chains, 16 packed bytes per step: punpcklbw gives codes
/// 0–15, punpckhbw codes 16–31); Vector256 holds them in four. A block of 16·odd codes ends with a half step (8
/// bytes) that only touches lanes 0–15. Requires block_size to be a multiple of 16 (no step crosses a block blob)
/// and rows of A zero-padded to k_blocks · block_size.
/// </summary>
public static unsafe class Int4Gemv
{
    /// <summary>The widest path this CPU runs.</summary>
    public static Int4GemvIsa Best => IsSupported(Int4GemvIsa.V512) ? Int4GemvIsa.V512
        : IsSupported(Int4GemvIsa.V256) ? Int4GemvIsa.V256 : Int4GemvIsa.Scalar;

    public static bool IsSupported(Int4GemvIsa isa) => isa switch
    {
        Int4GemvIsa.V512 => Avx512F.IsSupported,
        Int4GemvIsa.V256 => Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };

    /// <summary>Whether a block size can use this kernel (a multiple of 16 codes).</summary>
    public static bool SupportsBlockSize(int blockSize) => blockSize > 0 && blockSize % 16 == 0;

    /// <summary>
    /// y[m·ldy + j] = Σ_k a[m·lda + k] · (code[j, k] − zero_point[j, k / block_size]) · scale[j, k / block_size]
    /// for m &lt; rows and j in [n0, n1), in the float order of <see cref="Int4GemvReference"/>.
    /// b: [N, k_blocks, block_size / 2] packed bytes; scales and zeroPoints: [N · k_blocks].
    /// </summary>
    public static void Multiply(ReadOnlySpan<float> a, int lda, int rows, ReadOnlySpan<byte> b,
        ReadOnlySpan<float> scales, ReadOnlySpan<float> zeroPoints, int kBlocks, int blockSize,
        int n0, int n1, Span<float> y, int ldy, Int4GemvIsa isa)
    {
        if (!SupportsBlockSize(blockSize)) throw new ArgumentException($"block_size {blockSize} is not a multiple of 16", nameof(blockSize));
        if (!IsSupported(isa)) throw new ArgumentException($"{isa} is not supported on this CPU", nameof(isa));
        int kp = kBlocks * blockSize, blob = blockSize / 2;
        if (rows <= 0 || n1 <= n0) return;
        if (lda < kp || a.Length < (rows - 1) * lda + kp) throw new ArgumentException("A is smaller than rows · lda with lda ≥ k_blocks · block_size", nameof(a));
        if (b.Length < n1 * kBlocks * blob) throw new ArgumentException("B is smaller than N · k_blocks · block_size / 2", nameof(b));
        if (scales.Length < n1 * kBlocks || zeroPoints.Length < n1 * kBlocks) throw new ArgumentException("scales or zero points are smaller than N · k_blocks");
        if (y.Length < (rows - 1) * ldy + n1) throw new ArgumentException("Y is smaller than rows · ldy", nameof(y));
        if (isa == Int4GemvIsa.Scalar)
        {
            Int4GemvReference.Multiply(a, lda, rows, b, scales, zeroPoints, kBlocks, blockSize, n0, n1, y, ldy);
            return;
        }
        fixed (float* pa = a) fixed (byte* pb = b) fixed (float* ps = scales) fixed (float* pz = zeroPoints) fixed (float* py = y)
        {
            for (int j = n0; j < n1; j++)
            {
                byte* row = pb + (long)j * kBlocks * blob;
                float* sj = ps + j * kBlocks, zj = pz + j * kBlocks;
                int m = 0;
                // With Vector512, four rows of A share one unpacking of the weight row (4 × 4 accumulators fit in the
                // 32 zmm registers; with 16 ymm registers the Vector256 path goes one row at a time).
                if (isa == Int4GemvIsa.V512)
                    for (; m + 4 <= rows; m += 4)
                        Rows4V512(pa + (long)m * lda, lda, row, sj, zj, kBlocks, blockSize, py + (long)m * ldy + j, ldy);
                for (; m < rows; m++)
                {
                    float* a0 = pa + (long)m * lda;
                    py[(long)m * ldy + j] = isa == Int4GemvIsa.V512
                        ? Row1V512(a0, row, sj, zj, kBlocks, blockSize)
                        : Row1V256(a0, row, sj, zj, kBlocks, blockSize);
                }
            }
        }
    }

    /// <summary>16 codes from 8 packed bytes, in k order: byte i of the result is nibble i (low nibble of byte i/2 first).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Nibbles8(byte* p)
    {
        var v = Vector128.CreateScalar(Unsafe.ReadUnaligned<ulong>(p)).AsByte();
        var mask = Vector128.Create((byte)0x0F);
        return Sse2.UnpackLow(Sse2.And(v, mask), Sse2.And(Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte(), mask));
    }

    /// <summary>32 codes from 16 packed bytes, in k order: codes 0–15 in <paramref name="lo"/>, 16–31 in <paramref name="hi"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Nibbles16(byte* p, out Vector128<byte> lo, out Vector128<byte> hi)
    {
        var v = Sse2.LoadVector128(p);
        var mask = Vector128.Create((byte)0x0F);
        var l = Sse2.And(v, mask);
        // No byte shift on x86: shift 16-bit words right by 4, then mask off the bits that crossed from the next byte.
        var h = Sse2.And(Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte(), mask);
        lo = Sse2.UnpackLow(l, h);
        hi = Sse2.UnpackHigh(l, h);
    }

    /// <summary>float(code) − z for 16 codes (vpmovzxbd, vcvtdq2ps, vsubps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ToFloat512(Vector128<byte> c, Vector512<float> z)
        => Avx512F.Subtract(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(c)), z);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ToFloat256(Vector128<byte> c, Vector256<float> z, out Vector256<float> lo, out Vector256<float> hi)
    {
        lo = Avx.Subtract(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(c)), z);
        hi = Avx.Subtract(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(c, 8))), z);
    }

    /// <summary>
    /// The lane-sum tree of <see cref="Int4GemvReference.ReduceLanes"/> from its second level: lo = lanes 0–7 and
    /// hi = lanes 8–15 of v (v[i] = acc[i] + acc[i+16] already formed).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduce(Vector256<float> lo, Vector256<float> hi)
    {
        var w = Avx.Add(lo, hi);
        var x = Sse.Add(w.GetLower(), w.GetUpper());
        return (x.GetElement(0) + x.GetElement(2)) + (x.GetElement(1) + x.GetElement(3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduce512(Vector512<float> accA, Vector512<float> accB)
    {
        var v = Avx512F.Add(accA, accB);
        return Reduce(v.GetLower(), v.GetUpper());
    }

    private static float Row1V512(float* a, byte* row, float* scales, float* zps, int kBlocks, int blockSize)
    {
        Vector512<float> accA = default, accB = default;
        int blob = blockSize / 2, full = blockSize & ~31;
        for (int blk = 0; blk < kBlocks; blk++)
        {
            var z = Vector512.Create(zps[blk]);
            Vector512<float> sA = default, sB = default;
            byte* q = row + blk * blob;
            float* ab = a + blk * blockSize;
            int t = 0;
            for (; t < full; t += 32)
            {
                Nibbles16(q + (t >> 1), out var cl, out var ch);
                sA = Avx512F.FusedMultiplyAdd(ToFloat512(cl, z), Avx512F.LoadVector512(ab + t), sA);
                sB = Avx512F.FusedMultiplyAdd(ToFloat512(ch, z), Avx512F.LoadVector512(ab + t + 16), sB);
            }
            if (t < blockSize)
                sA = Avx512F.FusedMultiplyAdd(ToFloat512(Nibbles8(q + (t >> 1)), z), Avx512F.LoadVector512(ab + t), sA);
            var sc = Vector512.Create(scales[blk]);
            accA = Avx512F.FusedMultiplyAdd(sc, sA, accA);
            accB = Avx512F.FusedMultiplyAdd(sc, sB, accB);
        }
        return Reduce512(accA, accB);
    }

    private static void Rows4V512(float* a, int lda, byte* row, float* scales, float* zps, int kBlocks, int blockSize, float* y, int ldy)
    {
        Vector512<float> a0A = default, a0B = default, a1A = default, a1B = default, a2A = default, a2B = default, a3A = default, a3B = default;
        int blob = blockSize / 2, full = blockSize & ~31;
        for (int blk = 0; blk < kBlocks; blk++)
        {
            var z = Vector512.Create(zps[blk]);
            Vector512<float> s0A = default, s0B = default, s1A = default, s1B = default, s2A = default, s2B = default, s3A = default, s3B = default;
            byte* q = row + blk * blob;
            float* ab = a + blk * blockSize;
            int t = 0;
            for (; t < full; t += 32)
            {
                Nibbles16(q + (t >> 1), out var cl, out var ch);
                var dA = ToFloat512(cl, z);
                var dB = ToFloat512(ch, z);
                float* p = ab + t;
                s0A = Avx512F.FusedMultiplyAdd(dA, Avx512F.LoadVector512(p), s0A);
                s0B = Avx512F.FusedMultiplyAdd(dB, Avx512F.LoadVector512(p + 16), s0B);
                s1A = Avx512F.FusedMultiplyAdd(dA, Avx512F.LoadVector512(p + lda), s1A);
                s1B = Avx512F.FusedMultiplyAdd(dB, Avx512F.LoadVector512(p + lda + 16), s1B);
                s2A = Avx512F.FusedMultiplyAdd(dA, Avx512F.LoadVector512(p + 2 * lda), s2A);
                s2B = Avx512F.FusedMultiplyAdd(dB, Avx512F.LoadVector512(p + 2 * lda + 16), s2B);
                s3A = Avx512F.FusedMultiplyAdd(dA, Avx512F.LoadVector512(p + 3 * lda), s3A);
                s3B = Avx512F.FusedMultiplyAdd(dB, Avx512F.LoadVector512(p + 3 * lda + 16), s3B);
            }
            if (t < blockSize)
            {
                var dA = ToFloat512(Nibbles8(q + (t >> 1)), z);
                float* p = ab + t;
                s0A = Avx512F.FusedMultiplyAdd(dA, Avx512F.LoadVector512(p), s0A);
                s1A = Avx512F.FusedMultiplyAdd(dA, Avx512F.LoadVector512(p + lda), s1A);
                s2A = Avx512F.FusedMultiplyAdd(dA, Avx512F.LoadVector512(p + 2 * lda), s2A);
                s3A = Avx512F.FusedMultiplyAdd(dA, Avx512F.LoadVector512(p + 3 * lda), s3A);
            }
            var sc = Vector512.Create(scales[blk]);
            a0A = Avx512F.FusedMultiplyAdd(sc, s0A, a0A); a0B = Avx512F.FusedMultiplyAdd(sc, s0B, a0B);
            a1A = Avx512F.FusedMultiplyAdd(sc, s1A, a1A); a1B = Avx512F.FusedMultiplyAdd(sc, s1B, a1B);
            a2A = Avx512F.FusedMultiplyAdd(sc, s2A, a2A); a2B = Avx512F.FusedMultiplyAdd(sc, s2B, a2B);
            a3A = Avx512F.FusedMultiplyAdd(sc, s3A, a3A); a3B = Avx512F.FusedMultiplyAdd(sc, s3B, a3B);
        }
        y[0] = Reduce512(a0A, a0B);
        y[ldy] = Reduce512(a1A, a1B);
        y[2 * ldy] = Reduce512(a2A, a2B);
        y[3 * ldy] = Reduce512(a3A, a3B);
    }

    /// <summary>One row with Vector256: lanes 0–7, 8–15, 16–23, 24–31 in s0..s3 (and acc0..acc3).</summary>
    private static float Row1V256(float* a, byte* row, float* scales, float* zps, int kBlocks, int blockSize)
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        int blob = blockSize / 2, full = blockSize & ~31;
        for (int blk = 0; blk < kBlocks; blk++)
        {
            var z = Vector256.Create(zps[blk]);
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            byte* q = row + blk * blob;
            float* ab = a + blk * blockSize;
            int t = 0;
            for (; t < full; t += 32)
            {
                Nibbles16(q + (t >> 1), out var cl, out var ch);
                ToFloat256(cl, z, out var d0, out var d1);
                ToFloat256(ch, z, out var d2, out var d3);
                s0 = Fma.MultiplyAdd(d0, Avx.LoadVector256(ab + t), s0);
                s1 = Fma.MultiplyAdd(d1, Avx.LoadVector256(ab + t + 8), s1);
                s2 = Fma.MultiplyAdd(d2, Avx.LoadVector256(ab + t + 16), s2);
                s3 = Fma.MultiplyAdd(d3, Avx.LoadVector256(ab + t + 24), s3);
            }
            if (t < blockSize)
            {
                ToFloat256(Nibbles8(q + (t >> 1)), z, out var d0, out var d1);
                s0 = Fma.MultiplyAdd(d0, Avx.LoadVector256(ab + t), s0);
                s1 = Fma.MultiplyAdd(d1, Avx.LoadVector256(ab + t + 8), s1);
            }
            var sc = Vector256.Create(scales[blk]);
            acc0 = Fma.MultiplyAdd(sc, s0, acc0);
            acc1 = Fma.MultiplyAdd(sc, s1, acc1);
            acc2 = Fma.MultiplyAdd(sc, s2, acc2);
            acc3 = Fma.MultiplyAdd(sc, s3, acc3);
        }
        return Reduce(Avx.Add(acc0, acc2), Avx.Add(acc1, acc3));
    }
}
