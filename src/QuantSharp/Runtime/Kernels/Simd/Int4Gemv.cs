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
/// The float order is the one defined by <see cref="Int4GemvReference"/> (16 lanes, per-block lane sums, scale
/// fused per block, fixed lane-sum tree), so every path gives the same floats as the reference.
/// Vector512 holds the 16 lanes in one register; Vector256 holds lanes 0–7 and 8–15 in two.
/// Requires block_size to be a multiple of 16 (each 16-code step reads 8 bytes inside one block blob) and rows of A
/// zero-padded to k_blocks · block_size.
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
    public static bool SupportsBlockSize(int blockSize) => blockSize > 0 && blockSize % Int4GemvReference.Lanes == 0;

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
                // Four rows of A share one unpacking of the weight row; the rest go one at a time.
                for (; m + 4 <= rows; m += 4)
                {
                    float* a0 = pa + (long)m * lda;
                    if (isa == Int4GemvIsa.V512) Rows4V512(a0, lda, row, sj, zj, kBlocks, blockSize, py + (long)m * ldy + j, ldy);
                    else Rows4V256(a0, lda, row, sj, zj, kBlocks, blockSize, py + (long)m * ldy + j, ldy);
                }
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
    private static Vector128<byte> Nibbles(byte* p)
    {
        var v = Vector128.CreateScalar(Unsafe.ReadUnaligned<ulong>(p)).AsByte();
        var mask = Vector128.Create((byte)0x0F);
        var lo = Sse2.And(v, mask);
        // No byte shift on x86: shift 16-bit words right by 4, then mask off the bits that crossed from the next byte.
        var hi = Sse2.And(Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte(), mask);
        return Sse2.UnpackLow(lo, hi);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Codes512(byte* p, Vector512<float> z)
        => Avx512F.Subtract(Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Nibbles(p))), z);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Codes256(byte* p, Vector256<float> z, out Vector256<float> lo, out Vector256<float> hi)
    {
        var c = Nibbles(p);
        lo = Avx.Subtract(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(c)), z);
        hi = Avx.Subtract(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(Sse2.ShiftRightLogical128BitLane(c, 8))), z);
    }

    /// <summary>The lane-sum tree of <see cref="Int4GemvReference.ReduceLanes"/> on lanes 0–7 (lo) and 8–15 (hi).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Reduce(Vector256<float> lo, Vector256<float> hi)
    {
        var w = Avx.Add(lo, hi);
        var x = Sse.Add(w.GetLower(), w.GetUpper());
        return (x.GetElement(0) + x.GetElement(2)) + (x.GetElement(1) + x.GetElement(3));
    }

    private static float Row1V512(float* a, byte* row, float* scales, float* zps, int kBlocks, int blockSize)
    {
        var acc = Vector512<float>.Zero;
        int blob = blockSize / 2;
        for (int blk = 0; blk < kBlocks; blk++)
        {
            var z = Vector512.Create(zps[blk]);
            var s = Vector512<float>.Zero;
            byte* q = row + blk * blob;
            float* ab = a + blk * blockSize;
            for (int t = 0; t < blockSize; t += 16)
                s = Avx512F.FusedMultiplyAdd(Codes512(q + (t >> 1), z), Avx512F.LoadVector512(ab + t), s);
            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(scales[blk]), s, acc);
        }
        return Reduce(acc.GetLower(), acc.GetUpper());
    }

    private static void Rows4V512(float* a, int lda, byte* row, float* scales, float* zps, int kBlocks, int blockSize, float* y, int ldy)
    {
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        int blob = blockSize / 2;
        for (int blk = 0; blk < kBlocks; blk++)
        {
            var z = Vector512.Create(zps[blk]);
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            byte* q = row + blk * blob;
            float* ab = a + blk * blockSize;
            for (int t = 0; t < blockSize; t += 16)
            {
                var d = Codes512(q + (t >> 1), z);
                s0 = Avx512F.FusedMultiplyAdd(d, Avx512F.LoadVector512(ab + t), s0);
                s1 = Avx512F.FusedMultiplyAdd(d, Avx512F.LoadVector512(ab + lda + t), s1);
                s2 = Avx512F.FusedMultiplyAdd(d, Avx512F.LoadVector512(ab + 2 * lda + t), s2);
                s3 = Avx512F.FusedMultiplyAdd(d, Avx512F.LoadVector512(ab + 3 * lda + t), s3);
            }
            var sc = Vector512.Create(scales[blk]);
            acc0 = Avx512F.FusedMultiplyAdd(sc, s0, acc0);
            acc1 = Avx512F.FusedMultiplyAdd(sc, s1, acc1);
            acc2 = Avx512F.FusedMultiplyAdd(sc, s2, acc2);
            acc3 = Avx512F.FusedMultiplyAdd(sc, s3, acc3);
        }
        y[0] = Reduce(acc0.GetLower(), acc0.GetUpper());
        y[ldy] = Reduce(acc1.GetLower(), acc1.GetUpper());
        y[2 * ldy] = Reduce(acc2.GetLower(), acc2.GetUpper());
        y[3 * ldy] = Reduce(acc3.GetLower(), acc3.GetUpper());
    }

    private static float Row1V256(float* a, byte* row, float* scales, float* zps, int kBlocks, int blockSize)
    {
        Vector256<float> accL = default, accH = default;
        int blob = blockSize / 2;
        for (int blk = 0; blk < kBlocks; blk++)
        {
            var z = Vector256.Create(zps[blk]);
            Vector256<float> sL = default, sH = default;
            byte* q = row + blk * blob;
            float* ab = a + blk * blockSize;
            for (int t = 0; t < blockSize; t += 16)
            {
                Codes256(q + (t >> 1), z, out var dL, out var dH);
                sL = Fma.MultiplyAdd(dL, Avx.LoadVector256(ab + t), sL);
                sH = Fma.MultiplyAdd(dH, Avx.LoadVector256(ab + t + 8), sH);
            }
            var sc = Vector256.Create(scales[blk]);
            accL = Fma.MultiplyAdd(sc, sL, accL);
            accH = Fma.MultiplyAdd(sc, sH, accH);
        }
        return Reduce(accL, accH);
    }

    private static void Rows4V256(float* a, int lda, byte* row, float* scales, float* zps, int kBlocks, int blockSize, float* y, int ldy)
    {
        Vector256<float> a0L = default, a0H = default, a1L = default, a1H = default, a2L = default, a2H = default, a3L = default, a3H = default;
        int blob = blockSize / 2;
        for (int blk = 0; blk < kBlocks; blk++)
        {
            var z = Vector256.Create(zps[blk]);
            Vector256<float> s0L = default, s0H = default, s1L = default, s1H = default, s2L = default, s2H = default, s3L = default, s3H = default;
            byte* q = row + blk * blob;
            float* ab = a + blk * blockSize;
            for (int t = 0; t < blockSize; t += 16)
            {
                Codes256(q + (t >> 1), z, out var dL, out var dH);
                float* p0 = ab + t;
                s0L = Fma.MultiplyAdd(dL, Avx.LoadVector256(p0), s0L);
                s0H = Fma.MultiplyAdd(dH, Avx.LoadVector256(p0 + 8), s0H);
                s1L = Fma.MultiplyAdd(dL, Avx.LoadVector256(p0 + lda), s1L);
                s1H = Fma.MultiplyAdd(dH, Avx.LoadVector256(p0 + lda + 8), s1H);
                s2L = Fma.MultiplyAdd(dL, Avx.LoadVector256(p0 + 2 * lda), s2L);
                s2H = Fma.MultiplyAdd(dH, Avx.LoadVector256(p0 + 2 * lda + 8), s2H);
                s3L = Fma.MultiplyAdd(dL, Avx.LoadVector256(p0 + 3 * lda), s3L);
                s3H = Fma.MultiplyAdd(dH, Avx.LoadVector256(p0 + 3 * lda + 8), s3H);
            }
            var sc = Vector256.Create(scales[blk]);
            a0L = Fma.MultiplyAdd(sc, s0L, a0L); a0H = Fma.MultiplyAdd(sc, s0H, a0H);
            a1L = Fma.MultiplyAdd(sc, s1L, a1L); a1H = Fma.MultiplyAdd(sc, s1H, a1H);
            a2L = Fma.MultiplyAdd(sc, s2L, a2L); a2H = Fma.MultiplyAdd(sc, s2H, a2H);
            a3L = Fma.MultiplyAdd(sc, s3L, a3L); a3H = Fma.MultiplyAdd(sc, s3H, a3H);
        }
        y[0] = Reduce(a0L, a0H);
        y[ldy] = Reduce(a1L, a1H);
        y[2 * ldy] = Reduce(a2L, a2H);
        y[3 * ldy] = Reduce(a3L, a3H);
    }
}
