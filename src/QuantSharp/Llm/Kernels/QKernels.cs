using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace QuantSharp.Llm.Kernels;

/// <summary>The instruction-set paths of the int8-activation block kernels, weakest first.</summary>
public enum QKernelIsa
{
    Scalar,
    Vector128,
    Avx512BW,
    AvxVnni,
}

/// <summary>
/// Products of packed Q8_0/Q4_0/Q4_1 weights with int8-quantized activations: Y[t, r] = Σ_b … for tokens t and rows r.
/// <para>
/// The result is defined exactly, so every path gives identical floats: for row r and token t, with per block b the
/// integer dot p_b = Σ_k q[r,k]·x[t,k] (signed weight codes, exact in int32),
/// acc ← fma(d[r,b]·dx[t,b], (float)p_b, acc) for b = 0, 1, … in order from acc = 0, and for Q4_1 then
/// acc ← fma(m[r,b], s[t,b], acc) with s = dx·Σx. SIMD paths hold 8 rows in the lanes of one vector and walk the blocks
/// in the same order, so they perform the same roundings as the scalar reference; d·dx is one float multiply,
/// (float)p_b is exact (|p_b| &lt; 2^24).
/// </para>
/// </summary>
public static unsafe class QKernels
{
    /// <summary>Set to Scalar, Vector128, Avx512BW or AvxVnni to force a path (it must be supported).</summary>
    public const string EnvironmentVariable = "QUANTSHARP_LLM_KERNEL";

    static QKernels()
    {
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(env) && Enum.TryParse<QKernelIsa>(env, true, out var forced) && IsSupported(forced)) Selected = forced;
        else Selected = Supported[0];
    }

    /// <summary>The path used when none is named: the best supported one, chosen once at start-up.</summary>
    public static QKernelIsa Selected { get; }

    /// <summary>Supported paths, best first.</summary>
    public static IReadOnlyList<QKernelIsa> Supported { get; } =
        new[] { QKernelIsa.AvxVnni, QKernelIsa.Avx512BW, QKernelIsa.Vector128, QKernelIsa.Scalar }.Where(IsSupported).ToArray();

    public static bool IsSupported(QKernelIsa isa) => isa switch
    {
        // Fma for the float combination (the hardware fused multiply-add the scalar MathF.FusedMultiplyAdd matches).
        QKernelIsa.AvxVnni => AvxVnni.IsSupported && Avx2.IsSupported && Fma.IsSupported,
        QKernelIsa.Avx512BW => Avx512BW.IsSupported && Avx2.IsSupported && Fma.IsSupported,
        QKernelIsa.Vector128 => Vector128.IsHardwareAccelerated,
        _ => true,
    };

    /// <summary>
    /// Y[t, r] → y[t·ldy + r] for tokens [t0, t1) of <paramref name="x"/> and the rows of 8-row groups [g0, g1).
    /// Rows of different groups are independent, so callers split groups over threads.
    /// </summary>
    public static void Gemm(QKernelIsa isa, PackedQ8Weights w, Q8Batch x, int t0, int t1, float* y, int ldy, int g0, int g1)
    {
        if (x.Blocks != w.Blocks) throw new ArgumentException($"activation has {x.Blocks} blocks, the weight rows {w.Blocks}");
        if (!IsSupported(isa)) throw new PlatformNotSupportedException($"{isa} kernels are not supported on this CPU");
        switch (w.Format)
        {
            case QFormat.Q8_0: Gemm<Q8_0Tile>(isa, w, x, t0, t1, y, ldy, g0, g1); break;
            case QFormat.Q4_0: Gemm<Q4_0Tile>(isa, w, x, t0, t1, y, ldy, g0, g1); break;
            default: Gemm<Q4_1Tile>(isa, w, x, t0, t1, y, ldy, g0, g1); break;
        }
    }

    private static void Gemm<TF>(QKernelIsa isa, PackedQ8Weights w, Q8Batch x, int t0, int t1, float* y, int ldy, int g0, int g1) where TF : struct, IQTile
    {
        switch (isa)
        {
            case QKernelIsa.AvxVnni:
                VnniKernels.Gemm<TF>(w, x, t0, t1, y, ldy, g0, g1);
                break;
            case QKernelIsa.Avx512BW:
                for (int t = t0; t < t1; t++)
                    for (int g = g0; g < g1; g++) Avx512Kernels.Row8<TF>(w, x, t, g, y + (long)t * ldy);
                break;
            case QKernelIsa.Vector128:
                for (int t = t0; t < t1; t++)
                    for (int g = g0; g < g1; g++) Vector128Kernels.Row8<TF>(w, x, t, g, y + (long)t * ldy);
                break;
            default:
                for (int t = t0; t < t1; t++)
                    for (int g = g0; g < g1; g++) ScalarRow8(w, x, t, g, y + (long)t * ldy);
                break;
        }
    }

    /// <summary>The scalar path: the defining formula, read from the packed codes.</summary>
    private static void ScalarRow8(PackedQ8Weights w, Q8Batch x, int t, int g, float* y)
    {
        sbyte* xq = x.Token(t);
        int nb = w.Blocks, off = w.Offset;
        int rEnd = Math.Min(w.Rows, (g + 1) * PackedQ8Weights.GroupRows);
        for (int row = g * PackedQ8Weights.GroupRows; row < rEnd; row++)
        {
            float acc = 0;
            for (int b = 0; b < nb; b++)
            {
                int p = 0;
                for (int k = 0; k < 32; k++) p += (w.Code(row, b, k) - off) * xq[b * 32 + k];
                int r = row % PackedQ8Weights.GroupRows;
                float d = (float)BitConverter.UInt16BitsToHalf(w.TileScales(g, b)[r]);
                acc = MathF.FusedMultiplyAdd(d * x.D[t * nb + b], p, acc);
                if (w.Format == QFormat.Q4_1)
                    acc = MathF.FusedMultiplyAdd((float)BitConverter.UInt16BitsToHalf(w.TileMins(g, b)[r]), x.S[t * nb + b], acc);
            }
            y[row] = acc;
        }
    }

    /// <summary>Stores the 8 lanes of a group's result, only the real rows of a partial last group.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store8(Vector256<float> v, float* y, int rowStart, int rows)
    {
        if (rowStart + 8 <= rows)
        {
            v.Store(y + rowStart);
            return;
        }
        for (int i = 0; rowStart + i < rows; i++) y[rowStart + i] = v.GetElement(i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store8(Vector128<float> lo, Vector128<float> hi, float* y, int rowStart, int rows)
    {
        if (rowStart + 8 <= rows)
        {
            lo.Store(y + rowStart);
            hi.Store(y + rowStart + 4);
            return;
        }
        for (int i = 0; rowStart + i < rows; i++) y[rowStart + i] = i < 4 ? lo.GetElement(i) : hi.GetElement(i - 4);
    }
}

/// <summary>AVX-VNNI (256-bit vpdpbusd, u8 weights × s8 activations → int32 lanes, one lane per row).</summary>
internal static unsafe class VnniKernels
{
    public static void Gemm<TF>(PackedQ8Weights w, Q8Batch x, int t0, int t1, float* y, int ldy, int g0, int g1) where TF : struct, IQTile
    {
        int g = g0;
        // 2 groups × 4 tokens: each weight load feeds 4 vpdpbusd, each activation broadcast 2.
        for (; g + 2 <= g1; g += 2)
        {
            int t = t0;
            for (; t + 4 <= t1; t += 4) Tile2x4<TF>(w, x, t, g, y, ldy);
            for (; t < t1; t++)
            {
                Row8<TF>(w, x, t, g, y + (long)t * ldy);
                Row8<TF>(w, x, t, g + 1, y + (long)t * ldy);
            }
        }
        for (; g < g1; g++)
            for (int t = t0; t < t1; t++) Row8<TF>(w, x, t, g, y + (long)t * ldy);
    }

    /// <summary>One group (8 rows) against one token: the decode product.</summary>
    public static void Row8<TF>(PackedQ8Weights w, Q8Batch x, int t, int g, float* y) where TF : struct, IQTile
    {
        int nb = w.Blocks, tileBytes = w.TileBytes;
        int* xq = (int*)x.Token(t);
        byte* tile = w.Tile(g, 0);
        ushort* sc = w.TileScales(g, 0);
        ushort* mn = TF.HasMin ? w.TileMins(g, 0) : null;
        fixed (float* dx = &x.D[t * nb])
        fixed (int* sx = &x.Sums[t * nb])
        fixed (float* ss = &x.S[t * nb])
        {
            var acc = Vector256<float>.Zero;
            for (int b = 0; b < nb; b++, tile += tileBytes, xq += 8)
            {
                // Σ u·x − Offset·Σx = Σ q·x: the offset enters as the start value of one chain; two chains halve the latency.
                var a0 = Vector256.Create(-TF.Offset * sx[b]);
                var a1 = Vector256<int>.Zero;
                TF.Load256(tile, 0, out var l0, out var h0);
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, l0, Vector256.Create(xq[0]).AsSByte());
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, h0, Vector256.Create(xq[4]).AsSByte());
                TF.Load256(tile, 1, out var l1, out var h1);
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, l1, Vector256.Create(xq[1]).AsSByte());
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, h1, Vector256.Create(xq[5]).AsSByte());
                TF.Load256(tile, 2, out var l2, out var h2);
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, l2, Vector256.Create(xq[2]).AsSByte());
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, h2, Vector256.Create(xq[6]).AsSByte());
                TF.Load256(tile, 3, out var l3, out var h3);
                a0 = AvxVnni.MultiplyWideningAndAdd(a0, l3, Vector256.Create(xq[3]).AsSByte());
                a1 = AvxVnni.MultiplyWideningAndAdd(a1, h3, Vector256.Create(xq[7]).AsSByte());
                var d = HalfVector.ToSingle(Vector128.Load(sc + b * 8)) * Vector256.Create(dx[b]);
                acc = Fma.MultiplyAdd(d, Avx.ConvertToVector256Single(a0 + a1), acc);
                if (TF.HasMin) acc = Fma.MultiplyAdd(HalfVector.ToSingle(Vector128.Load(mn + b * 8)), Vector256.Create(ss[b]), acc);
            }
            QKernels.Store8(acc, y, g * 8, w.Rows);
        }
    }

    /// <summary>Groups g, g+1 (16 rows) against tokens t..t+3: 8 int32 and 8 float accumulators stay in registers.</summary>
    private static void Tile2x4<TF>(PackedQ8Weights w, Q8Batch x, int t, int g, float* y, int ldy) where TF : struct, IQTile
    {
        int nb = w.Blocks, tileBytes = w.TileBytes, stride = x.Stride;
        byte* ta = w.Tile(g, 0), tb = w.Tile(g + 1, 0);
        ushort* sa = w.TileScales(g, 0), sb = w.TileScales(g + 1, 0);
        ushort* ma = TF.HasMin ? w.TileMins(g, 0) : null, mb = TF.HasMin ? w.TileMins(g + 1, 0) : null;
        byte* x0 = (byte*)x.Token(t);
        fixed (float* dxp = &x.D[t * nb])
        fixed (int* sxp = &x.Sums[t * nb])
        fixed (float* ssp = &x.S[t * nb])
        {
            Vector256<float> f0a = default, f0b = default, f1a = default, f1b = default, f2a = default, f2b = default, f3a = default, f3b = default;
            for (int b = 0; b < nb; b++, ta += tileBytes, tb += tileBytes)
            {
                int* q0 = (int*)(x0 + b * 32);
                int* q1 = (int*)((byte*)q0 + stride);
                int* q2 = (int*)((byte*)q1 + stride);
                int* q3 = (int*)((byte*)q2 + stride);
                var o0 = Vector256.Create(-TF.Offset * sxp[b]);
                var o1 = Vector256.Create(-TF.Offset * sxp[nb + b]);
                var o2 = Vector256.Create(-TF.Offset * sxp[2 * nb + b]);
                var o3 = Vector256.Create(-TF.Offset * sxp[3 * nb + b]);
                Vector256<int> i0a = o0, i0b = o0, i1a = o1, i1b = o1, i2a = o2, i2b = o2, i3a = o3, i3b = o3;
                // Unrolled over the 4 quad pairs (h, h+4) so the pointers stay in registers.
                Step<TF>(ta, tb, 0, q0, q1, q2, q3, ref i0a, ref i0b, ref i1a, ref i1b, ref i2a, ref i2b, ref i3a, ref i3b);
                Step<TF>(ta, tb, 1, q0, q1, q2, q3, ref i0a, ref i0b, ref i1a, ref i1b, ref i2a, ref i2b, ref i3a, ref i3b);
                Step<TF>(ta, tb, 2, q0, q1, q2, q3, ref i0a, ref i0b, ref i1a, ref i1b, ref i2a, ref i2b, ref i3a, ref i3b);
                Step<TF>(ta, tb, 3, q0, q1, q2, q3, ref i0a, ref i0b, ref i1a, ref i1b, ref i2a, ref i2b, ref i3a, ref i3b);
                var da = HalfVector.ToSingle(Vector128.Load(sa + b * 8));
                var db = HalfVector.ToSingle(Vector128.Load(sb + b * 8));
                var d = Vector256.Create(dxp[b]);
                f0a = Fma.MultiplyAdd(da * d, Avx.ConvertToVector256Single(i0a), f0a);
                f0b = Fma.MultiplyAdd(db * d, Avx.ConvertToVector256Single(i0b), f0b);
                d = Vector256.Create(dxp[nb + b]);
                f1a = Fma.MultiplyAdd(da * d, Avx.ConvertToVector256Single(i1a), f1a);
                f1b = Fma.MultiplyAdd(db * d, Avx.ConvertToVector256Single(i1b), f1b);
                d = Vector256.Create(dxp[2 * nb + b]);
                f2a = Fma.MultiplyAdd(da * d, Avx.ConvertToVector256Single(i2a), f2a);
                f2b = Fma.MultiplyAdd(db * d, Avx.ConvertToVector256Single(i2b), f2b);
                d = Vector256.Create(dxp[3 * nb + b]);
                f3a = Fma.MultiplyAdd(da * d, Avx.ConvertToVector256Single(i3a), f3a);
                f3b = Fma.MultiplyAdd(db * d, Avx.ConvertToVector256Single(i3b), f3b);
                if (TF.HasMin)
                {
                    var mA = HalfVector.ToSingle(Vector128.Load(ma + b * 8));
                    var mB = HalfVector.ToSingle(Vector128.Load(mb + b * 8));
                    var s = Vector256.Create(ssp[b]);
                    f0a = Fma.MultiplyAdd(mA, s, f0a);
                    f0b = Fma.MultiplyAdd(mB, s, f0b);
                    s = Vector256.Create(ssp[nb + b]);
                    f1a = Fma.MultiplyAdd(mA, s, f1a);
                    f1b = Fma.MultiplyAdd(mB, s, f1b);
                    s = Vector256.Create(ssp[2 * nb + b]);
                    f2a = Fma.MultiplyAdd(mA, s, f2a);
                    f2b = Fma.MultiplyAdd(mB, s, f2b);
                    s = Vector256.Create(ssp[3 * nb + b]);
                    f3a = Fma.MultiplyAdd(mA, s, f3a);
                    f3b = Fma.MultiplyAdd(mB, s, f3b);
                }
            }
            int rows = w.Rows, ra = g * 8, rb = ra + 8;
            float* y0 = y + (long)t * ldy;
            QKernels.Store8(f0a, y0, ra, rows);
            QKernels.Store8(f0b, y0, rb, rows);
            QKernels.Store8(f1a, y0 + ldy, ra, rows);
            QKernels.Store8(f1b, y0 + ldy, rb, rows);
            QKernels.Store8(f2a, y0 + 2 * ldy, ra, rows);
            QKernels.Store8(f2b, y0 + 2 * ldy, rb, rows);
            QKernels.Store8(f3a, y0 + 3 * ldy, ra, rows);
            QKernels.Store8(f3b, y0 + 3 * ldy, rb, rows);
        }
    }

    /// <summary>Quads h and h+4 of both tiles against the 4 tokens' activation quads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step<TF>(byte* ta, byte* tb, int h, int* q0, int* q1, int* q2, int* q3,
        ref Vector256<int> i0a, ref Vector256<int> i0b, ref Vector256<int> i1a, ref Vector256<int> i1b,
        ref Vector256<int> i2a, ref Vector256<int> i2b, ref Vector256<int> i3a, ref Vector256<int> i3b) where TF : struct, IQTile
    {
        TF.Load256(ta, h, out var la, out var ha);
        TF.Load256(tb, h, out var lb, out var hb);
        var v = Vector256.Create(q0[h]).AsSByte();
        i0a = AvxVnni.MultiplyWideningAndAdd(i0a, la, v);
        i0b = AvxVnni.MultiplyWideningAndAdd(i0b, lb, v);
        v = Vector256.Create(q1[h]).AsSByte();
        i1a = AvxVnni.MultiplyWideningAndAdd(i1a, la, v);
        i1b = AvxVnni.MultiplyWideningAndAdd(i1b, lb, v);
        v = Vector256.Create(q2[h]).AsSByte();
        i2a = AvxVnni.MultiplyWideningAndAdd(i2a, la, v);
        i2b = AvxVnni.MultiplyWideningAndAdd(i2b, lb, v);
        v = Vector256.Create(q3[h]).AsSByte();
        i3a = AvxVnni.MultiplyWideningAndAdd(i3a, la, v);
        i3b = AvxVnni.MultiplyWideningAndAdd(i3b, lb, v);
        v = Vector256.Create(q0[h + 4]).AsSByte();
        i0a = AvxVnni.MultiplyWideningAndAdd(i0a, ha, v);
        i0b = AvxVnni.MultiplyWideningAndAdd(i0b, hb, v);
        v = Vector256.Create(q1[h + 4]).AsSByte();
        i1a = AvxVnni.MultiplyWideningAndAdd(i1a, ha, v);
        i1b = AvxVnni.MultiplyWideningAndAdd(i1b, hb, v);
        v = Vector256.Create(q2[h + 4]).AsSByte();
        i2a = AvxVnni.MultiplyWideningAndAdd(i2a, ha, v);
        i2b = AvxVnni.MultiplyWideningAndAdd(i2b, hb, v);
        v = Vector256.Create(q3[h + 4]).AsSByte();
        i3a = AvxVnni.MultiplyWideningAndAdd(i3a, ha, v);
        i3b = AvxVnni.MultiplyWideningAndAdd(i3b, hb, v);
    }
}

/// <summary>AVX-512BW without VNNI: vpmaddubsw + vpmaddwd on 64 bytes (2 quads of 8 rows) per instruction pair.</summary>
internal static unsafe class Avx512Kernels
{
    public static void Row8<TF>(PackedQ8Weights w, Q8Batch x, int t, int g, float* y) where TF : struct, IQTile
    {
        int nb = w.Blocks, tileBytes = w.TileBytes;
        int* xq = (int*)x.Token(t);
        byte* tile = w.Tile(g, 0);
        ushort* sc = w.TileScales(g, 0);
        ushort* mn = TF.HasMin ? w.TileMins(g, 0) : null;
        fixed (float* dx = &x.D[t * nb])
        fixed (int* sx = &x.Sums[t * nb])
        fixed (float* ss = &x.S[t * nb])
        {
            var acc = Vector256<float>.Zero;
            for (int b = 0; b < nb; b++, tile += tileBytes, xq += 8)
            {
                // Lanes 0–7 hold quad 2p (or 2p+4) of the 8 rows, lanes 8–15 quad 2p+1 (or 2p+5): the activation quads
                // are broadcast to the matching halves.
                TF.Load512(tile, 0, out var l0, out var h0);
                TF.Load512(tile, 1, out var l1, out var h1);
                var s = TF.Dot512(l0, Pair(xq[0], xq[1])) + TF.Dot512(h0, Pair(xq[4], xq[5]))
                      + TF.Dot512(l1, Pair(xq[2], xq[3])) + TF.Dot512(h1, Pair(xq[6], xq[7]));
                var p = s.GetLower() + s.GetUpper() - Vector256.Create(TF.Offset * sx[b]);
                var d = HalfVector.ToSingle(Vector128.Load(sc + b * 8)) * Vector256.Create(dx[b]);
                acc = Fma.MultiplyAdd(d, Avx.ConvertToVector256Single(p), acc);
                if (TF.HasMin) acc = Fma.MultiplyAdd(HalfVector.ToSingle(Vector128.Load(mn + b * 8)), Vector256.Create(ss[b]), acc);
            }
            QKernels.Store8(acc, y, g * 8, w.Rows);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<sbyte> Pair(int a, int b) => Vector512.Create(Vector256.Create(a), Vector256.Create(b)).AsSByte();
}

/// <summary>
/// Vector128 (any CPU with 128-bit SIMD): codes and activations widened to int16 (|u·x| ≤ 255·127 fits), multiplied,
/// widened to int32 and summed per row.
/// </summary>
internal static unsafe class Vector128Kernels
{
    public static void Row8<TF>(PackedQ8Weights w, Q8Batch x, int t, int g, float* y) where TF : struct, IQTile
    {
        int nb = w.Blocks, tileBytes = w.TileBytes;
        sbyte* xq = x.Token(t);
        byte* tile = w.Tile(g, 0);
        ushort* sc = w.TileScales(g, 0);
        ushort* mn = TF.HasMin ? w.TileMins(g, 0) : null;
        bool q8 = TF.Offset == 128;
        int* p = stackalloc int[8];
        var mask = Vector128.Create((byte)0x0F);
        var accLo = Vector128<float>.Zero;
        var accHi = Vector128<float>.Zero;
        fixed (float* dx = &x.D[t * nb])
        fixed (int* sx = &x.Sums[t * nb])
        fixed (float* ss = &x.S[t * nb])
        {
            for (int b = 0; b < nb; b++, tile += tileBytes)
            {
                // acc[r] holds 4 partial sums of row r (lanes j = code k mod 4).
                Vector128<int> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                for (int qd = 0; qd < 8; qd++)
                {
                    Vector128<byte> u0, u1; // rows 0–3, rows 4–7
                    if (q8)
                    {
                        u0 = Vector128.Load(tile + 32 * qd);
                        u1 = Vector128.Load(tile + 32 * qd + 16);
                    }
                    else
                    {
                        int h = qd & 3;
                        u0 = Vector128.Load(tile + 32 * h);
                        u1 = Vector128.Load(tile + 32 * h + 16);
                        if (qd >= 4)
                        {
                            u0 = Vector128.ShiftRightLogical(u0.AsUInt16(), 4).AsByte();
                            u1 = Vector128.ShiftRightLogical(u1.AsUInt16(), 4).AsByte();
                        }
                        u0 &= mask;
                        u1 &= mask;
                    }
                    var xv = Vector128.WidenLower(Vector128.Create(*(int*)(xq + b * 32 + 4 * qd)).AsSByte());
                    var (w0, w1) = Vector128.Widen(u0);
                    var (w2, w3) = Vector128.Widen(u1);
                    var (p0, p1) = Vector128.Widen(w0.AsInt16() * xv);
                    var (p2, p3) = Vector128.Widen(w1.AsInt16() * xv);
                    var (p4, p5) = Vector128.Widen(w2.AsInt16() * xv);
                    var (p6, p7) = Vector128.Widen(w3.AsInt16() * xv);
                    a0 += p0; a1 += p1; a2 += p2; a3 += p3; a4 += p4; a5 += p5; a6 += p6; a7 += p7;
                }
                int o = TF.Offset * sx[b];
                p[0] = Vector128.Sum(a0) - o; p[1] = Vector128.Sum(a1) - o; p[2] = Vector128.Sum(a2) - o; p[3] = Vector128.Sum(a3) - o;
                p[4] = Vector128.Sum(a4) - o; p[5] = Vector128.Sum(a5) - o; p[6] = Vector128.Sum(a6) - o; p[7] = Vector128.Sum(a7) - o;
                var dv = Vector128.Create(dx[b]);
                var s = Vector128.Load((uint*)(sc + b * 8));
                var dLo = HalfVector.ToSingle128(Vector128.WidenLower(s.AsUInt16())) * dv;
                var dHi = HalfVector.ToSingle128(Vector128.WidenUpper(s.AsUInt16())) * dv;
                accLo = Vector128.FusedMultiplyAdd(dLo, Vector128.ConvertToSingle(Vector128.Load(p)), accLo);
                accHi = Vector128.FusedMultiplyAdd(dHi, Vector128.ConvertToSingle(Vector128.Load(p + 4)), accHi);
                if (TF.HasMin)
                {
                    var m = Vector128.Load((uint*)(mn + b * 8));
                    var sv = Vector128.Create(ss[b]);
                    accLo = Vector128.FusedMultiplyAdd(HalfVector.ToSingle128(Vector128.WidenLower(m.AsUInt16())), sv, accLo);
                    accHi = Vector128.FusedMultiplyAdd(HalfVector.ToSingle128(Vector128.WidenUpper(m.AsUInt16())), sv, accHi);
                }
            }
        }
        QKernels.Store8(accLo, accHi, y, g * 8, w.Rows);
    }
}
