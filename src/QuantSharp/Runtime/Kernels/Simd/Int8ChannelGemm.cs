using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>
/// Constant s8 weights W (M×K) for <see cref="Int8ChannelGemm"/>, packed once: row m at Data[m·PaddedDepth], K padded
/// with zeros to a multiple of 4 (one vpdpbusd group) and M to a multiple of <see cref="RowBlock"/> with zero rows, so
/// the micro-kernel never reads past the panel. Row sums Σ_k W[m, k] serve the activation zero-point correction.
/// </summary>
public sealed unsafe class Int8ChannelWeights
{
    /// <summary>Rows (output channels) per micro-tile.</summary>
    public const int RowBlock = 4;

    private Int8ChannelWeights(byte[] data, int m, int k, int kp, int[] rowSums, int[] zeroPoints)
    {
        Data = data;
        Rows = m;
        Depth = k;
        PaddedDepth = kp;
        RowSums = rowSums;
        ZeroPoints = zeroPoints;
        AnyZeroPoint = zeroPoints.Any(z => z != 0);
    }

    /// <summary>Packed bytes (pinned, so raw pointers stay valid); signed values stored as bytes.</summary>
    public byte[] Data { get; }
    public int Rows { get; }
    public int Depth { get; }
    public int PaddedDepth { get; }
    public int[] RowSums { get; }

    /// <summary>Zero point of each row (length M).</summary>
    public int[] ZeroPoints { get; }

    /// <summary>Whether some row has a non-zero zero point (then the activations' column sums are needed).</summary>
    public bool AnyZeroPoint { get; }

    public byte* Pointer => (byte*)Unsafe.AsPointer(ref Data[0]);

    /// <summary>Packs W (row m at w[m·K]); zero points: empty (0), one (per tensor) or M (per row).</summary>
    public static Int8ChannelWeights Pack(int m, int k, ReadOnlySpan<sbyte> w, ReadOnlySpan<int> zeroPoints)
    {
        if (m < 0 || k < 0 || (long)m * k > w.Length) throw new QuantSharpException($"int8 channel GEMM: weights of {w.Length} elements cannot be {m}x{k}");
        if (zeroPoints.Length > 1 && zeroPoints.Length != m)
            throw new QuantSharpException($"int8 channel GEMM: {zeroPoints.Length} weight zero points, expected 1 or {m}");
        int kp = (k + 3) / 4 * 4, mp = (m + RowBlock - 1) / RowBlock * RowBlock;
        var data = GC.AllocateArray<byte>(Math.Max(1, checked(mp * kp)), pinned: true);
        var sums = new int[m];
        var zps = new int[m];
        for (int i = 0; i < m; i++)
        {
            int s = 0;
            for (int p = 0; p < k; p++)
            {
                sbyte v = w[i * k + p];
                data[i * kp + p] = (byte)v;
                s += v;
            }
            sums[i] = s;
            zps[i] = zeroPoints.Length == 0 ? 0 : zeroPoints.Length == 1 ? zeroPoints[0] : zeroPoints[i];
        }
        return new Int8ChannelWeights(data, m, k, kp, sums, zps);
    }
}

/// <summary>Per-channel float requantization parameters (see <see cref="Int8ChannelGemmReference.Requantize"/>).</summary>
public sealed class Int8ChannelRequantization(float[] multipliers, float[] offsets, int zeroPoint, int min, int max)
{
    public float[] Multipliers { get; } = multipliers;
    public float[] Offsets { get; } = offsets;
    public int ZeroPoint { get; } = zeroPoint;
    public int Min { get; } = min;
    public int Max { get; } = max;
}

/// <summary>
/// Int8 GEMM with the weights on the left: C[m, j] = Σ_k (W[m, k] − zw[m]) · (X[k, j] − zx) for a u8/s8 activation
/// matrix X (K×N, one column per output position), so each output row is one channel and a convolution's result is
/// written in NCHW order directly, with requantization fused into the micro-kernel's epilogue.
/// <para>
/// X is first packed (<see cref="PackColumns"/>) into blocks of 16 columns: for each group of 4 consecutive k, the
/// 16 columns' 4 bytes (64 bytes, two ymm), s8 values flipped to u8 by xor 0x80 (x + 128, the zero point with them).
/// The micro-kernel (4 rows × 16 columns, eight int32 ymm accumulators) broadcasts 4 weight bytes per row and runs
/// vpdpbusd (u8 × s8, AvxVnni) on the packed columns. With X' = X (+128) and zx' = zx (+128):
/// Σ(W − zw)(X' − zx') = ΣW·X' − zx'·ΣW[m] − zw[m]·ΣX'[j] + K·zx'·zw[m], applied once per output in wrapping int32,
/// so the result equals <see cref="Int8ChannelGemmReference.Multiply{TX}"/> exactly.
/// </para>
/// </summary>
public static unsafe class Int8ChannelGemm
{
    /// <summary>Columns per packed block.</summary>
    public const int BlockColumns = 16;

    /// <summary>Whether the vpdpbusd micro-kernel can run here (callers use another path otherwise).</summary>
    public static bool IsSupported => AvxVnni.IsSupported;

    /// <summary>Bytes of the packed panel for K (padded) × N.</summary>
    public static int PanelBytes(int paddedDepth, int n) => (n + BlockColumns - 1) / BlockColumns * paddedDepth * BlockColumns;

    /// <summary>
    /// Packs columns [0, n) of rows [0, k) of X (row r at src + r·ld) into <paramref name="dst"/>
    /// (<see cref="PanelBytes"/> bytes): element (r, j) at ((j / 16)·kp/4 + r / 4)·64 + (j % 16)·4 + r % 4, xor
    /// <paramref name="flip"/>; rows k..kp and columns n..16⌈n/16⌉ are zero. With <paramref name="columnSums"/>
    /// (length ≥ n), also writes Σ_r X'[r, j] per column.
    /// </summary>
    public static void PackColumns(byte* src, int ld, int k, int n, byte flip, int kp, byte* dst, int* columnSums)
    {
        int blocks = (n + BlockColumns - 1) / BlockColumns;
        var zero = stackalloc byte[BlockColumns];
        for (int i = 0; i < BlockColumns; i++) zero[i] = flip;
        var tail = stackalloc byte[4 * BlockColumns];
        var f = Vector128.Create(flip);
        for (int b = 0; b < blocks; b++)
        {
            int j0 = b * BlockColumns, cols = Math.Min(BlockColumns, n - j0);
            byte* d = dst + (long)b * kp * BlockColumns;
            for (int g = 0; g < kp; g += 4, d += 64)
            {
                // Rows past k read as flip, which xor makes 0.
                byte* r0 = g < k ? src + (long)g * ld + j0 : zero;
                byte* r1 = g + 1 < k ? src + (long)(g + 1) * ld + j0 : zero;
                byte* r2 = g + 2 < k ? src + (long)(g + 2) * ld + j0 : zero;
                byte* r3 = g + 3 < k ? src + (long)(g + 3) * ld + j0 : zero;
                if (cols < BlockColumns)
                {
                    // Short last block: copy the columns into a zero-padded (flip-valued) tile first.
                    for (int i = 0; i < 4 * BlockColumns; i++) tail[i] = flip;
                    for (int j = 0; j < cols; j++)
                    {
                        tail[j] = r0[j]; tail[16 + j] = r1[j]; tail[32 + j] = r2[j]; tail[48 + j] = r3[j];
                    }
                    r0 = tail; r1 = tail + 16; r2 = tail + 32; r3 = tail + 48;
                }
                if (Sse2.IsSupported)
                {
                    var a0 = Vector128.Load(r0) ^ f;
                    var a1 = Vector128.Load(r1) ^ f;
                    var a2 = Vector128.Load(r2) ^ f;
                    var a3 = Vector128.Load(r3) ^ f;
                    // Byte interleave rows (0,1) and (2,3), then 16-bit interleave: 4 bytes per column.
                    var t0 = Sse2.UnpackLow(a0, a1).AsUInt16();
                    var t1 = Sse2.UnpackHigh(a0, a1).AsUInt16();
                    var t2 = Sse2.UnpackLow(a2, a3).AsUInt16();
                    var t3 = Sse2.UnpackHigh(a2, a3).AsUInt16();
                    Sse2.UnpackLow(t0, t2).AsByte().Store(d);
                    Sse2.UnpackHigh(t0, t2).AsByte().Store(d + 16);
                    Sse2.UnpackLow(t1, t3).AsByte().Store(d + 32);
                    Sse2.UnpackHigh(t1, t3).AsByte().Store(d + 48);
                }
                else
                {
                    for (int j = 0; j < BlockColumns; j++)
                    {
                        d[4 * j] = (byte)(r0[j] ^ flip); d[4 * j + 1] = (byte)(r1[j] ^ flip);
                        d[4 * j + 2] = (byte)(r2[j] ^ flip); d[4 * j + 3] = (byte)(r3[j] ^ flip);
                    }
                }
            }
        }
        if (columnSums is null) return;
        for (int j = 0; j < n; j++)
        {
            byte* d = dst + (long)(j / BlockColumns) * kp * BlockColumns + (j % BlockColumns) * 4;
            int s = 0;
            for (int g = 0; g < kp; g += 4, d += 64) s += d[0] + d[1] + d[2] + d[3];
            columnSums[j] = s;
        }
    }

    /// <summary>
    /// Requantized output: y[m·ldy + j] (u8, or s8 as two's-complement bytes) for all rows m of W and columns [0, n)
    /// of the packed panel; <paramref name="xZero"/> is the (flipped) activation zero point zx'.
    /// <paramref name="columnSums"/> is needed only when W has non-zero zero points.
    /// </summary>
    public static void Multiply(Int8ChannelWeights w, byte* panel, int n, int xZero, int* columnSums, Int8ChannelRequantization rq, byte* y, int ldy)
        => Run(w, panel, n, xZero, columnSums, rq, y, ldy, null, 0);

    /// <summary>Int32 output: c[m·ldc + j] = the corrected accumulator, for all rows of W and columns [0, n).</summary>
    public static void Multiply(Int8ChannelWeights w, byte* panel, int n, int xZero, int* columnSums, int* c, int ldc)
        => Run(w, panel, n, xZero, columnSums, null, null, 0, c, ldc);

    private static void Run(Int8ChannelWeights w, byte* panel, int n, int xZero, int* columnSums, Int8ChannelRequantization? rq,
        byte* y, int ldy, int* c, int ldc)
    {
        if (!IsSupported) throw new QuantSharpException("int8 channel GEMM: AVX-VNNI is not available");
        if (w.AnyZeroPoint && columnSums is null) throw new QuantSharpException("int8 channel GEMM: weight zero points need the column sums");
        int m = w.Rows, kp = w.PaddedDepth, k = w.Depth;
        if (m == 0 || n == 0) return;
        int blocks = (n + BlockColumns - 1) / BlockColumns;
        byte* wp = w.Pointer;
        // Rows go in 6-row tiles (12 accumulators: 15 of the 16 ymm registers VEX-encoded vpdpbusd can name) over
        // the first 12⌊Mp/12⌋ padded rows, so the rest is a multiple of 4 for the 4-row tile; rows past M are
        // zero-padded in the packed weights and never stored.
        int mp = (m + Int8ChannelWeights.RowBlock - 1) / Int8ChannelWeights.RowBlock * Int8ChannelWeights.RowBlock;
        int sixEnd = mp / 12 * 12;
        // Tile sums, row r at acc[16·r]: the tile loops are separate methods so that the register allocator sees
        // only their 12 (or 8) accumulators; inlined into this method it spilled some of them on every K step.
        int* acc = stackalloc int[6 * BlockColumns];
        // Per-row correction −zx'·ΣW[m] + K·zx'·zw[m], the tiles' starting sums (wrapping int32 addition commutes,
        // so starting from it equals adding it afterwards).
        int* init = stackalloc int[6];
        fixed (int* rowSums = w.RowSums) fixed (int* zp = w.ZeroPoints)
        fixed (float* mul = rq?.Multipliers) fixed (float* off = rq?.Offsets)
        {
            var ctx = new Epilogue(w, k, xZero, rowSums, zp, columnSums, rq, mul, off, y, ldy, c, ldc);
            for (int m0 = 0; m0 < sixEnd; m0 += 6)
            {
                byte* wr = wp + (long)m0 * kp;
                int rows = Math.Min(6, m - m0);
                for (int r = 0; r < 6; r++) init[r] = r < rows ? ctx.Correction(m0 + r) : 0;
                for (int b = 0; b < blocks; b++)
                {
                    int j0 = b * BlockColumns, cols = Math.Min(BlockColumns, n - j0);
                    Tile6(wr, kp, panel + (long)b * kp * BlockColumns, acc, init);
                    ctx.Columns(j0, cols, out var s0, out var s1);
                    for (int r = 0; r < rows; r++)
                        ctx.Row(m0 + r, Vector256.Load(acc + r * 16), Vector256.Load(acc + r * 16 + 8), s0, s1, j0, cols);
                }
            }
            for (int m0 = sixEnd; m0 < m; m0 += Int8ChannelWeights.RowBlock)
            {
                int rows = Math.Min(Int8ChannelWeights.RowBlock, m - m0);
                byte* wr = wp + (long)m0 * kp;
                for (int r = 0; r < 4; r++) init[r] = r < rows ? ctx.Correction(m0 + r) : 0;
                for (int b = 0; b < blocks; b++)
                {
                    int j0 = b * BlockColumns, cols = Math.Min(BlockColumns, n - j0);
                    Tile(wr, kp, panel + (long)b * kp * BlockColumns, acc, init);
                    ctx.Columns(j0, cols, out var s0, out var s1);
                    for (int r = 0; r < rows; r++)
                        ctx.Row(m0 + r, Vector256.Load(acc + r * 16), Vector256.Load(acc + r * 16 + 8), s0, s1, j0, cols);
                }
            }
        }
    }

    /// <summary>
    /// Per-output correction and store of one row of a tile: acc − zw[m]·ΣX'[j] (wrapping int32; the tile started
    /// from <see cref="Correction"/>), then either the int32 row or its requantized bytes.
    /// </summary>
    private readonly struct Epilogue(Int8ChannelWeights w, int k, int xZero, int* rowSums, int* zp, int* columnSums,
        Int8ChannelRequantization? rq, float* mul, float* off, byte* y, int ldy, int* c, int ldc)
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Columns(int j0, int cols, out Vector256<int> s0, out Vector256<int> s1)
        {
            s0 = s1 = default;
            if (!w.AnyZeroPoint) return;
            s0 = Load8(columnSums + j0, cols);
            s1 = Load8(columnSums + j0 + 8, cols - 8);
        }

        /// <summary>−zx'·ΣW[m] + K·zx'·zw[m] for row m (wrapping int32).</summary>
        public int Correction(int mi) => unchecked(-xZero * rowSums[mi] + k * xZero * zp[mi]);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Row(int mi, Vector256<int> lo, Vector256<int> hi, Vector256<int> s0, Vector256<int> s1, int j0, int cols)
        {
            int zw = zp[mi];
            if (zw != 0)
            {
                var z = Vector256.Create(zw);
                lo -= z * s0;
                hi -= z * s1;
            }
            if (rq is null)
            {
                int* dst = c + (long)mi * ldc + j0;
                Int8KernelCommon.Store8(lo, dst, cols);
                if (cols > 8) Int8KernelCommon.Store8(hi, dst + 8, cols - 8);
                return;
            }
            var q = Requantize(lo, hi, mul[mi], off[mi], rq);
            byte* yd = y + (long)mi * ldy + j0;
            if (cols == BlockColumns) q.Store(yd);
            else for (int j = 0; j < cols; j++) yd[j] = q.GetElement(j);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Load8(int* p, int count)
    {
        if (count >= 8) return Vector256.Load(p);
        if (count <= 0) return default;
        var t = stackalloc int[8];
        for (int i = 0; i < 8; i++) t[i] = i < count ? p[i] : 0;
        return Vector256.Load(t);
    }

    /// <summary>
    /// 16 accumulators → 16 output bytes by <see cref="Int8ChannelGemmReference.Requantize"/>: convert, multiply,
    /// add, round half to even, clamp to [min − zp, max − zp] (the rounded value is an integer, so clamping it equals
    /// the reference's comparisons and keeps the conversion in range), convert, add zp, narrow. One 512-bit vector
    /// with AVX-512 (vpmovdb narrows in one step), else two 256-bit halves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> Requantize(Vector256<int> lo, Vector256<int> hi, float mul, float off, Int8ChannelRequantization rq)
    {
        float fMin = rq.Min - rq.ZeroPoint, fMax = rq.Max - rq.ZeroPoint;
        if (Avx512F.IsSupported)
        {
            var v = Vector512.Create(lo, hi);
            var r = Vector512.Round(Vector512.ConvertToSingle(v) * Vector512.Create(mul) + Vector512.Create(off));
            r = Vector512.Min(Vector512.Max(r, Vector512.Create(fMin)), Vector512.Create(fMax));
            return Avx512F.ConvertToVector128Byte(Vector512.ConvertToInt32(r) + Vector512.Create(rq.ZeroPoint));
        }
        var m = Vector256.Create(mul);
        var o = Vector256.Create(off);
        var fLo = Vector256.Create(fMin);
        var fHi = Vector256.Create(fMax);
        var zp = Vector256.Create(rq.ZeroPoint);
        var a = Vector256.Min(Vector256.Max(Vector256.Round(Vector256.ConvertToSingle(lo) * m + o), fLo), fHi);
        var b = Vector256.Min(Vector256.Max(Vector256.Round(Vector256.ConvertToSingle(hi) * m + o), fLo), fHi);
        var s = Vector256.Narrow(Vector256.ConvertToInt32(a) + zp, Vector256.ConvertToInt32(b) + zp);
        return Vector128.Narrow(s.GetLower(), s.GetUpper()).AsByte();
    }

    /// <summary>init[r] + Σ W'[m0 + r, k]·X'[k, j] for 4 rows and the 16 columns of one packed block, row r to acc[16·r].</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile(byte* w, int kp, byte* x, int* acc, int* init)
    {
        Vector256<int> a00 = Vector256.Create(init[0]), a01 = a00, a10 = Vector256.Create(init[1]), a11 = a10;
        Vector256<int> a20 = Vector256.Create(init[2]), a21 = a20, a30 = Vector256.Create(init[3]), a31 = a30;
        byte* w0 = w, w1 = w + kp, w2 = w + 2 * kp, w3 = w + 3 * kp;
        for (int g = 0; g < kp; g += 4, x += 64)
        {
            var x0 = Vector256.Load(x);
            var x1 = Vector256.Load(x + 32);
            var b = Vector256.Create(*(int*)(w0 + g)).AsSByte();
            a00 = AvxVnni.MultiplyWideningAndAdd(a00, x0, b);
            a01 = AvxVnni.MultiplyWideningAndAdd(a01, x1, b);
            b = Vector256.Create(*(int*)(w1 + g)).AsSByte();
            a10 = AvxVnni.MultiplyWideningAndAdd(a10, x0, b);
            a11 = AvxVnni.MultiplyWideningAndAdd(a11, x1, b);
            b = Vector256.Create(*(int*)(w2 + g)).AsSByte();
            a20 = AvxVnni.MultiplyWideningAndAdd(a20, x0, b);
            a21 = AvxVnni.MultiplyWideningAndAdd(a21, x1, b);
            b = Vector256.Create(*(int*)(w3 + g)).AsSByte();
            a30 = AvxVnni.MultiplyWideningAndAdd(a30, x0, b);
            a31 = AvxVnni.MultiplyWideningAndAdd(a31, x1, b);
        }
        a00.Store(acc); a01.Store(acc + 8); a10.Store(acc + 16); a11.Store(acc + 24);
        a20.Store(acc + 32); a21.Store(acc + 40); a30.Store(acc + 48); a31.Store(acc + 56);
    }

    /// <summary>init[r] + Σ W'[m0 + r, k]·X'[k, j] for 6 rows and the 16 columns of one packed block, row r to acc[16·r].</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Tile6(byte* w, int kp, byte* x, int* acc, int* init)
    {
        Vector256<int> a00 = Vector256.Create(init[0]), a01 = a00, a10 = Vector256.Create(init[1]), a11 = a10;
        Vector256<int> a20 = Vector256.Create(init[2]), a21 = a20, a30 = Vector256.Create(init[3]), a31 = a30;
        Vector256<int> a40 = Vector256.Create(init[4]), a41 = a40, a50 = Vector256.Create(init[5]), a51 = a50;
        for (int g = 0; g < kp; g += 4, x += 64)
        {
            var x0 = Vector256.Load(x);
            var x1 = Vector256.Load(x + 32);
            var b = Vector256.Create(*(int*)(w + g)).AsSByte();
            a00 = AvxVnni.MultiplyWideningAndAdd(a00, x0, b);
            a01 = AvxVnni.MultiplyWideningAndAdd(a01, x1, b);
            b = Vector256.Create(*(int*)(w + kp + g)).AsSByte();
            a10 = AvxVnni.MultiplyWideningAndAdd(a10, x0, b);
            a11 = AvxVnni.MultiplyWideningAndAdd(a11, x1, b);
            b = Vector256.Create(*(int*)(w + 2 * kp + g)).AsSByte();
            a20 = AvxVnni.MultiplyWideningAndAdd(a20, x0, b);
            a21 = AvxVnni.MultiplyWideningAndAdd(a21, x1, b);
            b = Vector256.Create(*(int*)(w + 3 * kp + g)).AsSByte();
            a30 = AvxVnni.MultiplyWideningAndAdd(a30, x0, b);
            a31 = AvxVnni.MultiplyWideningAndAdd(a31, x1, b);
            b = Vector256.Create(*(int*)(w + 4 * kp + g)).AsSByte();
            a40 = AvxVnni.MultiplyWideningAndAdd(a40, x0, b);
            a41 = AvxVnni.MultiplyWideningAndAdd(a41, x1, b);
            b = Vector256.Create(*(int*)(w + 5 * kp + g)).AsSByte();
            a50 = AvxVnni.MultiplyWideningAndAdd(a50, x0, b);
            a51 = AvxVnni.MultiplyWideningAndAdd(a51, x1, b);
        }
        a00.Store(acc); a01.Store(acc + 8); a10.Store(acc + 16); a11.Store(acc + 24);
        a20.Store(acc + 32); a21.Store(acc + 40); a30.Store(acc + 48); a31.Store(acc + 56);
        a40.Store(acc + 64); a41.Store(acc + 72); a50.Store(acc + 80); a51.Store(acc + 88);
    }
}
