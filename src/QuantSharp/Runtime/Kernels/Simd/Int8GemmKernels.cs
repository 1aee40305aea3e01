using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>Shared loops of the managed int8 micro-kernels: column blocks outside, row micro-tiles inside.</summary>
internal static unsafe class Int8KernelCommon
{
    /// <summary>Columns of block <paramref name="nb"/> (and the next <paramref name="span"/>−1) below N.</summary>
    public static int Cols(PackedInt8Weights b, int nb, int span) =>
        Math.Min(b.Columns - nb * PackedInt8Weights.BlockColumns, span * PackedInt8Weights.BlockColumns);

    /// <summary>Row pointer r of a micro-tile; rows past the end alias the last real row (computed, never stored).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte* Row(byte* a, int lda, int rows, int r) => a + (long)Math.Min(r, rows - 1) * lda;

    /// <summary>Stores up to 8 lanes of <paramref name="v"/> to dst, the first <paramref name="cols"/> of them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store8(Vector256<int> v, int* dst, int cols)
    {
        if (cols >= 8) { v.Store(dst); return; }
        for (int j = 0; j < cols; j++) dst[j] = v.GetElement(j);
    }

    /// <summary>Stores up to 16 lanes of <paramref name="v"/> to dst, the first <paramref name="cols"/> of them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store16(Vector512<int> v, int* dst, int cols)
    {
        if (cols >= 16) { v.Store(dst); return; }
        if (cols <= 0) return;
        Store8(v.GetLower(), dst, cols);
        if (cols > 8) Store8(v.GetUpper(), dst + 8, cols - 8);
    }
}

/// <summary>Scalar micro-kernel over the packed layout; always supported; the other kernels must match it.</summary>
public sealed unsafe class ScalarInt8Kernel : IInt8GemmKernel
{
    public string Name => "Scalar";
    public bool IsSupported => true;

    public void Multiply(byte* a, int lda, int rows, PackedInt8Weights b, int blockStart, int blockEnd, int* c, int ldc)
    {
        byte* bp0 = b.Pointer;
        int kg = b.KGroups;
        for (int nb = blockStart; nb < blockEnd; nb++)
        {
            int cols = Int8KernelCommon.Cols(b, nb, 1);
            byte* panel = bp0 + (long)nb * b.BlockStride;
            for (int i = 0; i < rows; i++)
            {
                byte* ar = a + (long)i * lda;
                int* cr = c + (long)i * ldc + nb * PackedInt8Weights.BlockColumns;
                for (int j = 0; j < cols; j++)
                {
                    int s = 0;
                    for (int g = 0; g < kg; g++)
                    {
                        sbyte* bq = (sbyte*)panel + g * 64 + j * 4;
                        byte* aq = ar + g * 4;
                        s += aq[0] * bq[0] + aq[1] * bq[1] + aq[2] * bq[2] + aq[3] * bq[3];
                    }
                    cr[j] = s;
                }
            }
        }
    }
}

/// <summary>
/// 256-bit vpdpbusd (AvxVnni) micro-kernel: 6 rows × 16 columns, 12 ymm accumulators; per 4-deep k group two B
/// loads, six 4-byte A broadcasts and twelve vpdpbusd. vpdpbusd sums four u8·s8 products into int32 without
/// intermediate saturation, so it is exact.
/// </summary>
public sealed unsafe class AvxVnniInt8Kernel : IInt8GemmKernel
{
    public string Name => "AvxVnni";
    public bool IsSupported => AvxVnni.IsSupported;

    public void Multiply(byte* a, int lda, int rows, PackedInt8Weights b, int blockStart, int blockEnd, int* c, int ldc)
    {
        int kg = b.KGroups;
        for (int nb = blockStart; nb < blockEnd; nb++)
        {
            int cols = Int8KernelCommon.Cols(b, nb, 1);
            byte* panel = b.Pointer + (long)nb * b.BlockStride;
            int* cb = c + nb * PackedInt8Weights.BlockColumns;
            int i = 0;
            for (; i + 6 <= rows || (i < rows && rows - i > 1); i += 6)
                Tile6(a + (long)i * lda, lda, Math.Min(6, rows - i), panel, kg, cb + (long)i * ldc, ldc, cols);
            if (i < rows) Row1(a + (long)i * lda, panel, kg, cb + (long)i * ldc, cols);
        }
    }

    private static void Tile6(byte* a, int lda, int rows, byte* bp, int kg, int* c, int ldc, int cols)
    {
        byte* a0 = Int8KernelCommon.Row(a, lda, rows, 0), a1 = Int8KernelCommon.Row(a, lda, rows, 1);
        byte* a2 = Int8KernelCommon.Row(a, lda, rows, 2), a3 = Int8KernelCommon.Row(a, lda, rows, 3);
        byte* a4 = Int8KernelCommon.Row(a, lda, rows, 4), a5 = Int8KernelCommon.Row(a, lda, rows, 5);
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int g = 0; g < kg; g++, bp += 64)
        {
            var b0 = Vector256.Load((sbyte*)bp);
            var b1 = Vector256.Load((sbyte*)bp + 32);
            int o = g * 4;
            var x = Vector256.Create(*(int*)(a0 + o)).AsByte();
            c00 = AvxVnni.MultiplyWideningAndAdd(c00, x, b0); c01 = AvxVnni.MultiplyWideningAndAdd(c01, x, b1);
            x = Vector256.Create(*(int*)(a1 + o)).AsByte();
            c10 = AvxVnni.MultiplyWideningAndAdd(c10, x, b0); c11 = AvxVnni.MultiplyWideningAndAdd(c11, x, b1);
            x = Vector256.Create(*(int*)(a2 + o)).AsByte();
            c20 = AvxVnni.MultiplyWideningAndAdd(c20, x, b0); c21 = AvxVnni.MultiplyWideningAndAdd(c21, x, b1);
            x = Vector256.Create(*(int*)(a3 + o)).AsByte();
            c30 = AvxVnni.MultiplyWideningAndAdd(c30, x, b0); c31 = AvxVnni.MultiplyWideningAndAdd(c31, x, b1);
            x = Vector256.Create(*(int*)(a4 + o)).AsByte();
            c40 = AvxVnni.MultiplyWideningAndAdd(c40, x, b0); c41 = AvxVnni.MultiplyWideningAndAdd(c41, x, b1);
            x = Vector256.Create(*(int*)(a5 + o)).AsByte();
            c50 = AvxVnni.MultiplyWideningAndAdd(c50, x, b0); c51 = AvxVnni.MultiplyWideningAndAdd(c51, x, b1);
        }
        StoreRow(c00, c01, c, cols);
        if (rows > 1) StoreRow(c10, c11, c + ldc, cols);
        if (rows > 2) StoreRow(c20, c21, c + 2L * ldc, cols);
        if (rows > 3) StoreRow(c30, c31, c + 3L * ldc, cols);
        if (rows > 4) StoreRow(c40, c41, c + 4L * ldc, cols);
        if (rows > 5) StoreRow(c50, c51, c + 5L * ldc, cols);
    }

    /// <summary>One row (GEMV): two k groups per step into four independent accumulators to hide vpdpbusd latency.</summary>
    private static void Row1(byte* a, byte* bp, int kg, int* c, int cols)
    {
        Vector256<int> s0 = default, s1 = default, t0 = default, t1 = default;
        int g = 0;
        for (; g + 2 <= kg; g += 2, bp += 128)
        {
            var x = Vector256.Create(*(int*)(a + g * 4)).AsByte();
            var y = Vector256.Create(*(int*)(a + g * 4 + 4)).AsByte();
            s0 = AvxVnni.MultiplyWideningAndAdd(s0, x, Vector256.Load((sbyte*)bp));
            s1 = AvxVnni.MultiplyWideningAndAdd(s1, x, Vector256.Load((sbyte*)bp + 32));
            t0 = AvxVnni.MultiplyWideningAndAdd(t0, y, Vector256.Load((sbyte*)bp + 64));
            t1 = AvxVnni.MultiplyWideningAndAdd(t1, y, Vector256.Load((sbyte*)bp + 96));
        }
        if (g < kg)
        {
            var x = Vector256.Create(*(int*)(a + g * 4)).AsByte();
            s0 = AvxVnni.MultiplyWideningAndAdd(s0, x, Vector256.Load((sbyte*)bp));
            s1 = AvxVnni.MultiplyWideningAndAdd(s1, x, Vector256.Load((sbyte*)bp + 32));
        }
        StoreRow(s0 + t0, s1 + t1, c, cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(Vector256<int> lo, Vector256<int> hi, int* dst, int cols)
    {
        Int8KernelCommon.Store8(lo, dst, cols);
        if (cols > 8) Int8KernelCommon.Store8(hi, dst + 8, cols - 8);
    }
}

/// <summary>
/// AVX-512BW micro-kernel: 6 rows × 32 columns (two packed blocks) with vpmaddubsw + vpmaddwd.
/// vpmaddubsw adds two u8·s8 products in saturating int16, and 255·127 + 255·127 = 64770 overflows. A is
/// therefore split per byte into a 7-bit part and its top bit, A = lo + 128·hi: lo·b pairs stay within
/// ±2·127·128 = ±32512 and hi·b pairs within ±256, so both vpmaddubsw are exact; vpmaddwd widens them to int32
/// with weights 1 and 128.
/// </summary>
public sealed unsafe class Avx512BWInt8Kernel : IInt8GemmKernel
{
    public string Name => "Avx512BW";
    public bool IsSupported => Avx512BW.IsSupported;

    public void Multiply(byte* a, int lda, int rows, PackedInt8Weights b, int blockStart, int blockEnd, int* c, int ldc)
    {
        int kg = b.KGroups;
        for (int nb = blockStart; nb < blockEnd; nb += 2)
        {
            int span = Math.Min(2, blockEnd - nb);
            int cols = Int8KernelCommon.Cols(b, nb, span);
            byte* p0 = b.Pointer + (long)nb * b.BlockStride;
            // With one block left, the second column vector aliases the first and is never stored.
            byte* p1 = span == 2 ? p0 + b.BlockStride : p0;
            int* cb = c + nb * PackedInt8Weights.BlockColumns;
            for (int i = 0; i < rows; i += 6)
                Tile(a + (long)i * lda, lda, Math.Min(6, rows - i), p0, p1, kg, cb + (long)i * ldc, ldc, cols);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot(Vector512<int> acc, Vector512<byte> lo, Vector512<byte> hi, Vector512<sbyte> w,
        Vector512<short> one, Vector512<short> k128)
    {
        var l = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(lo, w), one);
        var h = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hi, w), k128);
        return acc + l + h;
    }

    private static void Tile(byte* a, int lda, int rows, byte* p0, byte* p1, int kg, int* c, int ldc, int cols)
    {
        byte* a0 = Int8KernelCommon.Row(a, lda, rows, 0), a1 = Int8KernelCommon.Row(a, lda, rows, 1);
        byte* a2 = Int8KernelCommon.Row(a, lda, rows, 2), a3 = Int8KernelCommon.Row(a, lda, rows, 3);
        byte* a4 = Int8KernelCommon.Row(a, lda, rows, 4), a5 = Int8KernelCommon.Row(a, lda, rows, 5);
        var one = Vector512.Create((short)1);
        var k128 = Vector512.Create((short)128);
        var mask7 = Vector512.Create(0x7F7F7F7F);
        var mask1 = Vector512.Create(0x01010101);
        Vector512<int> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<int> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int g = 0; g < kg; g++)
        {
            var b0 = Vector512.Load((sbyte*)p0 + g * 64);
            var b1 = Vector512.Load((sbyte*)p1 + g * 64);
            int o = g * 4;
            var x = Vector512.Create(*(int*)(a0 + o));
            var lo = (x & mask7).AsByte();
            var hi = (Vector512.ShiftRightLogical(x, 7) & mask1).AsByte();
            c00 = Dot(c00, lo, hi, b0, one, k128); c01 = Dot(c01, lo, hi, b1, one, k128);
            x = Vector512.Create(*(int*)(a1 + o));
            lo = (x & mask7).AsByte(); hi = (Vector512.ShiftRightLogical(x, 7) & mask1).AsByte();
            c10 = Dot(c10, lo, hi, b0, one, k128); c11 = Dot(c11, lo, hi, b1, one, k128);
            x = Vector512.Create(*(int*)(a2 + o));
            lo = (x & mask7).AsByte(); hi = (Vector512.ShiftRightLogical(x, 7) & mask1).AsByte();
            c20 = Dot(c20, lo, hi, b0, one, k128); c21 = Dot(c21, lo, hi, b1, one, k128);
            x = Vector512.Create(*(int*)(a3 + o));
            lo = (x & mask7).AsByte(); hi = (Vector512.ShiftRightLogical(x, 7) & mask1).AsByte();
            c30 = Dot(c30, lo, hi, b0, one, k128); c31 = Dot(c31, lo, hi, b1, one, k128);
            x = Vector512.Create(*(int*)(a4 + o));
            lo = (x & mask7).AsByte(); hi = (Vector512.ShiftRightLogical(x, 7) & mask1).AsByte();
            c40 = Dot(c40, lo, hi, b0, one, k128); c41 = Dot(c41, lo, hi, b1, one, k128);
            x = Vector512.Create(*(int*)(a5 + o));
            lo = (x & mask7).AsByte(); hi = (Vector512.ShiftRightLogical(x, 7) & mask1).AsByte();
            c50 = Dot(c50, lo, hi, b0, one, k128); c51 = Dot(c51, lo, hi, b1, one, k128);
        }
        StoreRow(c00, c01, c, cols);
        if (rows > 1) StoreRow(c10, c11, c + ldc, cols);
        if (rows > 2) StoreRow(c20, c21, c + 2L * ldc, cols);
        if (rows > 3) StoreRow(c30, c31, c + 3L * ldc, cols);
        if (rows > 4) StoreRow(c40, c41, c + 4L * ldc, cols);
        if (rows > 5) StoreRow(c50, c51, c + 5L * ldc, cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(Vector512<int> lo, Vector512<int> hi, int* dst, int cols)
    {
        Int8KernelCommon.Store16(lo, dst, cols);
        if (cols > 16) Int8KernelCommon.Store16(hi, dst + 16, cols - 16);
    }
}

/// <summary>
/// AVX2 micro-kernel: 4 rows × 16 columns with vpmaddubsw + vpmaddwd, exact by the same 7-bit split of A as
/// <see cref="Avx512BWInt8Kernel"/> (A = lo + 128·hi; each vpmaddubsw pair sum fits int16).
/// </summary>
public sealed unsafe class Avx2Int8Kernel : IInt8GemmKernel
{
    public string Name => "Avx2";
    public bool IsSupported => Avx2.IsSupported;

    public void Multiply(byte* a, int lda, int rows, PackedInt8Weights b, int blockStart, int blockEnd, int* c, int ldc)
    {
        int kg = b.KGroups;
        for (int nb = blockStart; nb < blockEnd; nb++)
        {
            int cols = Int8KernelCommon.Cols(b, nb, 1);
            byte* panel = b.Pointer + (long)nb * b.BlockStride;
            int* cb = c + nb * PackedInt8Weights.BlockColumns;
            for (int i = 0; i < rows; i += 4)
                Tile(a + (long)i * lda, lda, Math.Min(4, rows - i), panel, kg, cb + (long)i * ldc, ldc, cols);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot(Vector256<int> acc, Vector256<byte> lo, Vector256<byte> hi, Vector256<sbyte> w,
        Vector256<short> one, Vector256<short> k128)
    {
        var l = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(lo, w), one);
        var h = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(hi, w), k128);
        return acc + l + h;
    }

    private static void Tile(byte* a, int lda, int rows, byte* bp, int kg, int* c, int ldc, int cols)
    {
        byte* a0 = Int8KernelCommon.Row(a, lda, rows, 0), a1 = Int8KernelCommon.Row(a, lda, rows, 1);
        byte* a2 = Int8KernelCommon.Row(a, lda, rows, 2), a3 = Int8KernelCommon.Row(a, lda, rows, 3);
        var one = Vector256.Create((short)1);
        var k128 = Vector256.Create((short)128);
        var mask7 = Vector256.Create(0x7F7F7F7F);
        var mask1 = Vector256.Create(0x01010101);
        Vector256<int> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector256<int> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int g = 0; g < kg; g++, bp += 64)
        {
            var b0 = Vector256.Load((sbyte*)bp);
            var b1 = Vector256.Load((sbyte*)bp + 32);
            int o = g * 4;
            var x = Vector256.Create(*(int*)(a0 + o));
            var lo = (x & mask7).AsByte();
            var hi = (Vector256.ShiftRightLogical(x, 7) & mask1).AsByte();
            c00 = Dot(c00, lo, hi, b0, one, k128); c01 = Dot(c01, lo, hi, b1, one, k128);
            x = Vector256.Create(*(int*)(a1 + o));
            lo = (x & mask7).AsByte(); hi = (Vector256.ShiftRightLogical(x, 7) & mask1).AsByte();
            c10 = Dot(c10, lo, hi, b0, one, k128); c11 = Dot(c11, lo, hi, b1, one, k128);
            x = Vector256.Create(*(int*)(a2 + o));
            lo = (x & mask7).AsByte(); hi = (Vector256.ShiftRightLogical(x, 7) & mask1).AsByte();
            c20 = Dot(c20, lo, hi, b0, one, k128); c21 = Dot(c21, lo, hi, b1, one, k128);
            x = Vector256.Create(*(int*)(a3 + o));
            lo = (x & mask7).AsByte(); hi = (Vector256.ShiftRightLogical(x, 7) & mask1).AsByte();
            c30 = Dot(c30, lo, hi, b0, one, k128); c31 = Dot(c31, lo, hi, b1, one, k128);
        }
        StoreRow(c00, c01, c, cols);
        if (rows > 1) StoreRow(c10, c11, c + ldc, cols);
        if (rows > 2) StoreRow(c20, c21, c + 2L * ldc, cols);
        if (rows > 3) StoreRow(c30, c31, c + 3L * ldc, cols);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(Vector256<int> lo, Vector256<int> hi, int* dst, int cols)
    {
        Int8KernelCommon.Store8(lo, dst, cols);
        if (cols > 8) Int8KernelCommon.Store8(hi, dst + 8, cols - 8);
    }
}

/// <summary>
/// Portable Vector128 micro-kernel (any ISA with 128-bit vectors, Arm AdvSimd included): 2 rows × 4 columns.
/// B bytes are sign-extended and A bytes zero-extended to int16; a u8·s8 product lies in [−32640, 32385], so the
/// int16 multiply is exact. Products are widened to int32 and accumulated per k lane (k mod 4); the four lanes of
/// a column are summed once at the end.
/// </summary>
public sealed unsafe class Vector128Int8Kernel : IInt8GemmKernel
{
    public string Name => "Vector128";
    public bool IsSupported => Vector128.IsHardwareAccelerated;

    public void Multiply(byte* a, int lda, int rows, PackedInt8Weights b, int blockStart, int blockEnd, int* c, int ldc)
    {
        int kg = b.KGroups;
        for (int nb = blockStart; nb < blockEnd; nb++)
        {
            int cols = Int8KernelCommon.Cols(b, nb, 1);
            byte* panel = b.Pointer + (long)nb * b.BlockStride;
            for (int q = 0; q * 4 < cols; q++)
            {
                int* cb = c + nb * PackedInt8Weights.BlockColumns + q * 4;
                int qc = Math.Min(4, cols - q * 4);
                for (int i = 0; i < rows; i += 2)
                    Tile(a + (long)i * lda, lda, Math.Min(2, rows - i), panel + q * 16, kg, cb + (long)i * ldc, ldc, qc);
            }
        }
    }

    private static void Tile(byte* a, int lda, int rows, byte* bp, int kg, int* c, int ldc, int cols)
    {
        byte* a0 = Int8KernelCommon.Row(a, lda, rows, 0), a1 = Int8KernelCommon.Row(a, lda, rows, 1);
        Vector128<int> s00 = default, s01 = default, s02 = default, s03 = default;
        Vector128<int> s10 = default, s11 = default, s12 = default, s13 = default;
        for (int g = 0; g < kg; g++, bp += 64)
        {
            var w = Vector128.Load((sbyte*)bp);
            var w01 = Vector128.WidenLower(w);
            var w23 = Vector128.WidenUpper(w);
            var x = Vector128.WidenLower(Vector128.Create(*(int*)(a0 + g * 4)).AsByte()).AsInt16();
            var p = x * w01;
            s00 += Vector128.WidenLower(p); s01 += Vector128.WidenUpper(p);
            p = x * w23;
            s02 += Vector128.WidenLower(p); s03 += Vector128.WidenUpper(p);
            x = Vector128.WidenLower(Vector128.Create(*(int*)(a1 + g * 4)).AsByte()).AsInt16();
            p = x * w01;
            s10 += Vector128.WidenLower(p); s11 += Vector128.WidenUpper(p);
            p = x * w23;
            s12 += Vector128.WidenLower(p); s13 += Vector128.WidenUpper(p);
        }
        StoreRow(s00, s01, s02, s03, c, cols);
        if (rows > 1) StoreRow(s10, s11, s12, s13, c + ldc, cols);
    }

    private static void StoreRow(Vector128<int> s0, Vector128<int> s1, Vector128<int> s2, Vector128<int> s3, int* dst, int cols)
    {
        dst[0] = Vector128.Sum(s0);
        if (cols > 1) dst[1] = Vector128.Sum(s1);
        if (cols > 2) dst[2] = Vector128.Sum(s2);
        if (cols > 3) dst[3] = Vector128.Sum(s3);
    }
}

/// <summary>
/// Arm64 dot-product (SDOT, <c>Dp</c>) micro-kernel: 4 rows × 16 columns, 16 accumulators. SDOT is signed × signed,
/// so A' (u8) is fed as A' − 128 (byte xor 0x80) and 128·ΣB[n] is added back:
/// Σ A'·B = Σ (A' − 128)·B + 128·ΣB. Zero padding of K pairs −128 with B = 0 and adds nothing; everything wraps in
/// int32, so the result equals the scalar kernel exactly.
/// </summary>
public sealed unsafe class ArmDotProductInt8Kernel : IInt8GemmKernel
{
    public string Name => "ArmDp";
    public bool IsSupported => System.Runtime.Intrinsics.Arm.Dp.IsSupported;

    public void Multiply(byte* a, int lda, int rows, PackedInt8Weights b, int blockStart, int blockEnd, int* c, int ldc)
    {
        int kg = b.KGroups;
        int* corr = stackalloc int[PackedInt8Weights.BlockColumns];
        for (int nb = blockStart; nb < blockEnd; nb++)
        {
            int cols = Int8KernelCommon.Cols(b, nb, 1);
            for (int j = 0; j < PackedInt8Weights.BlockColumns; j++)
                corr[j] = j < cols ? unchecked(128 * b.ColumnSums[nb * PackedInt8Weights.BlockColumns + j]) : 0;
            byte* panel = b.Pointer + (long)nb * b.BlockStride;
            int* cb = c + nb * PackedInt8Weights.BlockColumns;
            for (int i = 0; i < rows; i += 4)
                Tile(a + (long)i * lda, lda, Math.Min(4, rows - i), panel, kg, corr, cb + (long)i * ldc, ldc, cols);
        }
    }

    private static void Tile(byte* a, int lda, int rows, byte* bp, int kg, int* corr, int* c, int ldc, int cols)
    {
        byte* a0 = Int8KernelCommon.Row(a, lda, rows, 0), a1 = Int8KernelCommon.Row(a, lda, rows, 1);
        byte* a2 = Int8KernelCommon.Row(a, lda, rows, 2), a3 = Int8KernelCommon.Row(a, lda, rows, 3);
        var flip = Vector128.Create(unchecked((int)0x80808080));
        Vector128<int> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector128<int> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector128<int> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector128<int> c30 = default, c31 = default, c32 = default, c33 = default;
        for (int g = 0; g < kg; g++, bp += 64)
        {
            var w0 = Vector128.Load((sbyte*)bp);
            var w1 = Vector128.Load((sbyte*)bp + 16);
            var w2 = Vector128.Load((sbyte*)bp + 32);
            var w3 = Vector128.Load((sbyte*)bp + 48);
            int o = g * 4;
            var x = (Vector128.Create(*(int*)(a0 + o)) ^ flip).AsSByte();
            c00 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c00, x, w0); c01 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c01, x, w1);
            c02 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c02, x, w2); c03 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c03, x, w3);
            x = (Vector128.Create(*(int*)(a1 + o)) ^ flip).AsSByte();
            c10 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c10, x, w0); c11 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c11, x, w1);
            c12 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c12, x, w2); c13 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c13, x, w3);
            x = (Vector128.Create(*(int*)(a2 + o)) ^ flip).AsSByte();
            c20 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c20, x, w0); c21 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c21, x, w1);
            c22 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c22, x, w2); c23 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c23, x, w3);
            x = (Vector128.Create(*(int*)(a3 + o)) ^ flip).AsSByte();
            c30 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c30, x, w0); c31 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c31, x, w1);
            c32 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c32, x, w2); c33 = System.Runtime.Intrinsics.Arm.Dp.DotProduct(c33, x, w3);
        }
        StoreRow(c00, c01, c02, c03, corr, c, cols);
        if (rows > 1) StoreRow(c10, c11, c12, c13, corr, c + ldc, cols);
        if (rows > 2) StoreRow(c20, c21, c22, c23, corr, c + 2L * ldc, cols);
        if (rows > 3) StoreRow(c30, c31, c32, c33, corr, c + 3L * ldc, cols);
    }

    private static void StoreRow(Vector128<int> s0, Vector128<int> s1, Vector128<int> s2, Vector128<int> s3, int* corr, int* dst, int cols)
    {
        Store4(s0 + Vector128.Load(corr), dst, cols);
        Store4(s1 + Vector128.Load(corr + 4), dst + 4, cols - 4);
        Store4(s2 + Vector128.Load(corr + 8), dst + 8, cols - 8);
        Store4(s3 + Vector128.Load(corr + 12), dst + 12, cols - 12);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(Vector128<int> v, int* dst, int cols)
    {
        if (cols >= 4) { v.Store(dst); return; }
        for (int j = 0; j < cols; j++) dst[j] = v.GetElement(j);
    }
}
