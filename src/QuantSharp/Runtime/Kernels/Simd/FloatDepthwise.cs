using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>
/// 2-D (and 1-D) float depthwise convolution (group = C = M, W [C, 1, KH, KW]) through stride-phase planes, with
/// bias and a clamp (fused Relu / Clip) in the epilogue:
/// Y[p, oh, ow] = clamp(bias[c] + Σ_{kh,kw} W[c, kh, kw] · Xpad[p, oh·SH + kh·DH, ow·SW + kw·DW], lo, hi)
/// where Xpad is X shifted by (PH, PW) with zeros outside X. Scalar reference: <c>ConvReference.Conv</c> followed
/// by the clamp; sums are formed with fused multiply-adds in tap order, so results agree with the reference within
/// float rounding of a 1..KH·KW-term dot product (|Δ| ≤ ~1e-6 · Σ|w·x| for 3×3), not bit for bit.
/// <para>
/// Layout: the HP×WP window of Xpad that the output reads (HP = (OH−1)·SH + (KH−1)·DH + 1, likewise WP) is split
/// into SH·SW phase planes of HS×WS (HS = ⌈HP/SH⌉, WS = ⌈WP/SW⌉): element (r, q) goes to plane (r mod SH)·SW + q mod SW
/// at (r / SH)·WS + q / SW. Tap (kh, kw) then reads, for output i = oh·WS + ow, element
/// i + (kh·DH / SH)·WS + kw·DW / SW of one plane, so every tap is one contiguous run over OH·WS outputs and the
/// whole plane is computed a vector at a time (columns ow ≥ OW are scratch and dropped when the rows are
/// compacted into Y). Small planes (7×7, 14×14) keep most vector lanes busy this way, which per-row vectors cannot.
/// </para>
/// </summary>
public static unsafe class FloatDepthwise
{
    /// <summary>Whether the geometry is one this kernel handles (no depth axis).</summary>
    public static bool Supports(in Window3D w) => w.KD == 1 && w.ID == 1 && w.OD == 1;

    /// <summary>Sizes of the per-thread scratch regions, in floats (all multiples of 16).</summary>
    private readonly struct Layout
    {
        public readonly int HP, WP, HS, WS, Phases, PhaseStride, AccLen, AccCap, RowLen, N0;

        public Layout(in Window3D w)
        {
            HP = (w.OH - 1) * w.SH + (w.KH - 1) * w.DH + 1;
            WP = (w.OW - 1) * w.SW + (w.KW - 1) * w.DW + 1;
            HS = (HP + w.SH - 1) / w.SH;
            WS = (WP + w.SW - 1) / w.SW;
            Phases = w.SH * w.SW;
            AccLen = w.OH * WS;
            AccCap = Round16(AccLen);
            // A tap reads up to its start + AccCap; rows are written 16 floats at a time (up to 15 past the last row).
            int maxStart = (w.KH - 1) * w.DH / w.SH * WS + (w.KW - 1) * w.DW / w.SW;
            PhaseStride = Round16(Math.Max(HS * WS + 16, maxStart + AccCap));
            // Input columns [0, N0) land at padded columns [PW, PW + N0) of the window.
            N0 = Math.Clamp(WP - w.PW, 0, w.IW);
            // The padded row is read SW·⌈WS/16⌉·16 floats wide (the stride-2 split reads 32 at a time).
            RowLen = Round16(Math.Max(w.SW * Round16(WS), w.PW + N0)) + 16;
        }

        public int Total => Phases * PhaseStride + AccCap + 2 * RowLen;
    }

    private static int Round16(int n) => (n + 15) & ~15;

    /// <summary>Floats of scratch <see cref="Run"/> needs (per thread).</summary>
    public static int ScratchLength(in Window3D w) => new Layout(w).Total;

    /// <summary>
    /// Planes [planeStart, planeEnd) of N·C: plane p uses channel p mod <paramref name="channels"/>'s filter and bias
    /// (empty bias: 0). Outputs are clamped to [lo, hi] when <paramref name="clamp"/> is set.
    /// <paramref name="scratch"/> holds at least <see cref="ScratchLength"/> floats; it is cleared here.
    /// </summary>
    public static void Run(in Window3D w, int channels, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, ReadOnlySpan<float> bias,
        bool clamp, float lo, float hi, Span<float> y, int planeStart, int planeEnd, Span<float> scratch)
    {
        if (!Supports(w)) throw new ArgumentException("depthwise: 3-D geometry");
        var l = new Layout(w);
        int ks = w.KernelSize, inS = w.InputSize, outS = w.OutputSize;
        if (scratch.Length < l.Total) throw new ArgumentException("depthwise: scratch too small");
        if ((long)planeEnd * inS > x.Length || (long)planeEnd * outS > y.Length) throw new ArgumentException("depthwise: tensors too short");
        if (weights.Length < channels * ks || (!bias.IsEmpty && bias.Length < channels)) throw new ArgumentException("depthwise: weights too short");
        if (planeEnd <= planeStart) return;
        // Zero once: the window's padding positions are never written afterwards, so they stay 0 for every plane.
        scratch[..l.Total].Clear();
        var starts = stackalloc int[ks];
        for (int kh = 0, t = 0; kh < w.KH; kh++)
            for (int kw = 0; kw < w.KW; kw++, t++)
            {
                int r = kh * w.DH, q = kw * w.DW;
                starts[t] = (r % w.SH * w.SW + q % w.SW) * l.PhaseStride + r / w.SH * l.WS + q / w.SW;
            }
        fixed (float* px = x) fixed (float* pw = weights) fixed (float* pb = bias) fixed (float* py = y) fixed (float* ps = scratch)
        {
            float* ph = ps, acc = ps + l.Phases * l.PhaseStride, row = acc + l.AccCap, zeros = row + l.RowLen;
            for (int p = planeStart; p < planeEnd; p++)
            {
                int c = p % channels;
                FillPhases(w, l, px + (long)p * inS, row, zeros, ph);
                Taps(ph, starts, ks, pw + (long)c * ks, pb is null ? 0f : pb[c], acc, l.AccCap);
                StoreRows(acc, l.WS, py + (long)p * outS, w.OW, w.OH, clamp, lo, hi);
            }
        }
    }

    /// <summary>Writes the padded window of one input plane into the phase planes, padded row by padded row.</summary>
    private static void FillPhases(in Window3D w, in Layout l, float* plane, float* row, float* zeros, float* ph)
    {
        for (int r = 0; r < l.HP; r++)
        {
            int ih = r - w.PH;
            float* src = zeros;
            if ((uint)ih < (uint)w.IH && l.N0 > 0)
            {
                // row[PW, PW + N0) = X[ih, 0..N0); the rest of row is 0 and never written.
                Copy(plane + (long)ih * w.IW, row + w.PW, l.N0);
                src = row;
            }
            float* dst = ph + (r % w.SH) * w.SW * l.PhaseStride + r / w.SH * l.WS;
            // Phase rows are written in increasing r, so the ≤ 15 floats a 16-wide store writes past a row's end
            // land in the next row of the same plane (rewritten later) or in the plane's slack.
            if (w.SW == 1 && Vector512.IsHardwareAccelerated)
            {
                for (int j = 0; j < l.WS; j += 16) Vector512.Load(src + j).Store(dst + j);
            }
            else if (w.SW == 2 && Avx512F.IsSupported)
            {
                // 32 padded columns → 16 even (phase 0) and 16 odd (phase 1) by two vpermt2ps.
                var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                var odd = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
                float* dst1 = dst + l.PhaseStride;
                for (int j = 0; j < l.WS; j += 16)
                {
                    var a = Vector512.Load(src + 2 * j);
                    var b = Vector512.Load(src + 2 * j + 16);
                    Avx512F.PermuteVar16x32x2(a, even, b).Store(dst + j);
                    Avx512F.PermuteVar16x32x2(a, odd, b).Store(dst1 + j);
                }
            }
            else
            {
                for (int f = 0; f < w.SW; f++)
                {
                    float* d = dst + f * l.PhaseStride;
                    for (int j = 0; j < l.WS; j++) d[j] = src[j * w.SW + f];
                }
            }
        }
    }

    /// <summary>acc[i] = bias + Σ_t w[t] · ph[starts[t] + i] for i in [0, cap), cap a multiple of 16.</summary>
    private static void Taps(float* ph, int* starts, int ks, float* wc, float b, float* acc, int cap)
    {
        if (Vector512.IsHardwareAccelerated && ks == 9)
        {
            // 3×3: the nine weights and source pointers stay in registers.
            float* s0 = ph + starts[0], s1 = ph + starts[1], s2 = ph + starts[2], s3 = ph + starts[3], s4 = ph + starts[4];
            float* s5 = ph + starts[5], s6 = ph + starts[6], s7 = ph + starts[7], s8 = ph + starts[8];
            var w0 = Vector512.Create(wc[0]); var w1 = Vector512.Create(wc[1]); var w2 = Vector512.Create(wc[2]);
            var w3 = Vector512.Create(wc[3]); var w4 = Vector512.Create(wc[4]); var w5 = Vector512.Create(wc[5]);
            var w6 = Vector512.Create(wc[6]); var w7 = Vector512.Create(wc[7]); var w8 = Vector512.Create(wc[8]);
            var vb = Vector512.Create(b);
            for (int i = 0; i < cap; i += 16)
            {
                var a = Vector512.FusedMultiplyAdd(Vector512.Load(s0 + i), w0, vb);
                a = Vector512.FusedMultiplyAdd(Vector512.Load(s1 + i), w1, a);
                a = Vector512.FusedMultiplyAdd(Vector512.Load(s2 + i), w2, a);
                a = Vector512.FusedMultiplyAdd(Vector512.Load(s3 + i), w3, a);
                a = Vector512.FusedMultiplyAdd(Vector512.Load(s4 + i), w4, a);
                a = Vector512.FusedMultiplyAdd(Vector512.Load(s5 + i), w5, a);
                a = Vector512.FusedMultiplyAdd(Vector512.Load(s6 + i), w6, a);
                a = Vector512.FusedMultiplyAdd(Vector512.Load(s7 + i), w7, a);
                a = Vector512.FusedMultiplyAdd(Vector512.Load(s8 + i), w8, a);
                a.Store(acc + i);
            }
            return;
        }
        if (Vector512.IsHardwareAccelerated)
        {
            for (int i = 0; i < cap; i += 16)
            {
                var a = Vector512.Create(b);
                for (int t = 0; t < ks; t++) a = Vector512.FusedMultiplyAdd(Vector512.Load(ph + starts[t] + i), Vector512.Create(wc[t]), a);
                a.Store(acc + i);
            }
            return;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (int i = 0; i < cap; i += 8)
            {
                var a = Vector256.Create(b);
                for (int t = 0; t < ks; t++) a = Vector256.FusedMultiplyAdd(Vector256.Load(ph + starts[t] + i), Vector256.Create(wc[t]), a);
                a.Store(acc + i);
            }
            return;
        }
        for (int i = 0; i < cap; i++)
        {
            float a = b;
            for (int t = 0; t < ks; t++) a = MathF.FusedMultiplyAdd(ph[starts[t] + i], wc[t], a);
            acc[i] = a;
        }
    }

    /// <summary>Y[oh·OW + ow] = clamp(acc[oh·WS + ow]) for ow &lt; OW (rows WS apart in acc, OW apart in Y).</summary>
    private static void StoreRows(float* acc, int ws, float* y, int ow, int oh, bool clamp, float lo, float hi)
    {
        if (ws == ow) ClampCopy(acc, y, ow * oh, clamp, lo, hi);
        else for (int r = 0; r < oh; r++) ClampCopy(acc + r * ws, y + r * ow, ow, clamp, lo, hi);
    }

    /// <summary>
    /// dst[i] = clamp(src[i]) for i &lt; n (min(max(v, lo), hi), as Clip). Runs of 16 (or 8), the last vector
    /// overlapping the previous one instead of a scalar tail (src and dst do not overlap, so rewriting is harmless).
    /// </summary>
    public static void ClampCopy(float* src, float* dst, int n, bool clamp, float lo, float hi)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var vl = Vector512.Create(lo);
            var vh = Vector512.Create(hi);
            for (; ; i += 16)
            {
                if (i > n - 16) i = n - 16;
                var v = Vector512.Load(src + i);
                if (clamp) v = Vector512.Min(Vector512.Max(v, vl), vh);
                v.Store(dst + i);
                if (i == n - 16) return;
            }
        }
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var vl = Vector256.Create(lo);
            var vh = Vector256.Create(hi);
            for (; ; i += 8)
            {
                if (i > n - 8) i = n - 8;
                var v = Vector256.Load(src + i);
                if (clamp) v = Vector256.Min(Vector256.Max(v, vl), vh);
                v.Store(dst + i);
                if (i == n - 8) return;
            }
        }
        for (; i < n; i++) dst[i] = clamp ? Math.Min(Math.Max(src[i], lo), hi) : src[i];
    }

    /// <summary>dst[0..n) = src[0..n) without reading or writing past either run.</summary>
    private static void Copy(float* src, float* dst, int n) => ClampCopy(src, dst, n, false, 0f, 0f);
}
