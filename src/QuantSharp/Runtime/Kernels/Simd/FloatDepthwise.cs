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

    /// <summary>Floats of scratch <see cref="Run"/> needs (per thread).</summary>
    public static int ScratchLength(in Window3D w) => new DepthwiseLayout(w).Total;

    /// <summary>
    /// Output planes [planeStart, planeEnd) of N·M (M = <paramref name="channels"/> output channels): plane p uses
    /// channel c = p mod M's filter and bias (empty bias: 0) and reads input plane (p / M)·(M / mult) + c / mult
    /// (mult = <paramref name="multiplier"/> output channels per input channel: 1 for depthwise, M for a one-channel
    /// stem). Outputs are clamped to [lo, hi] when <paramref name="clamp"/> is set. <paramref name="scratch"/> holds
    /// at least <see cref="ScratchLength"/> floats.
    /// </summary>
    public static void Run(in Window3D w, int channels, int multiplier, ReadOnlySpan<float> x, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> bias, bool clamp, float lo, float hi, Span<float> y, int planeStart, int planeEnd, Span<float> scratch)
    {
        if (!Supports(w)) throw new ArgumentException("depthwise: 3-D geometry");
        if (multiplier < 1 || channels % multiplier != 0) throw new ArgumentException("depthwise: bad channel multiplier");
        var l = new DepthwiseLayout(w);
        int ks = w.KernelSize, inS = w.InputSize, outS = w.OutputSize, inC = channels / multiplier;
        if (scratch.Length < l.Total) throw new ArgumentException("depthwise: scratch too small");
        if (planeEnd <= planeStart) return;
        long lastIn = ((long)(planeEnd - 1) / channels * inC + (planeEnd - 1) % channels / multiplier + 1) * inS;
        if (lastIn > x.Length || (long)planeEnd * outS > y.Length) throw new ArgumentException("depthwise: tensors too short");
        if (weights.Length < channels * ks || (!bias.IsEmpty && bias.Length < channels)) throw new ArgumentException("depthwise: weights too short");
        var starts = stackalloc int[ks];
        TapStarts(w, l, new Span<int>(starts, ks));
        var masks = stackalloc uint[l.MaskLength];
        RowMasks(w, l, new Span<uint>(masks, l.MaskLength));
        fixed (float* px = x) fixed (float* pw = weights) fixed (float* pb = bias) fixed (float* py = y) fixed (float* ps = scratch)
        {
            Prepare(l, ps);
            long filled = -1;
            for (int p = planeStart; p < planeEnd; p++)
            {
                int c = p % channels;
                long src = ((long)p / channels * inC + c / multiplier) * inS;
                if (src != filled)
                {
                    FillPhases(w, l, px + src, ps, masks);
                    filled = src;
                }
                float* acc = Accumulate(l, ps, starts, ks, pw + (long)c * ks, pb is null ? 0f : pb[c]);
                StoreRows(w, l, acc, ps, py + (long)p * outS, clamp, lo, hi);
            }
        }
    }

    /// <summary>
    /// Offset of tap t = kh·KW + kw in the phase planes: plane ((kh·DH) mod SH)·SW + (kw·DW) mod SW, row
    /// (kh·DH) / SH, column (kw·DW) / SW; output i = oh·WS + ow reads scratch[starts[t] + i].
    /// </summary>
    public static void TapStarts(in Window3D w, in DepthwiseLayout l, Span<int> starts)
    {
        if (starts.Length < w.KH * w.KW) throw new ArgumentException("depthwise: starts too short");
        for (int kh = 0, t = 0; kh < w.KH; kh++)
            for (int kw = 0; kw < w.KW; kw++, t++)
            {
                int r = kh * w.DH, q = kw * w.DW;
                starts[t] = (r % w.SH * w.SW + q % w.SW) * l.PhaseStride + r / w.SH * l.WS + q / w.SW;
            }
    }

    /// <summary>
    /// masks[q] (q &lt; <see cref="DepthwiseLayout.MaskLength"/>) is all ones when padded column q of the window holds an
    /// input column (PW ≤ q &lt; PW + N0), else 0: a padded row is (the staged input row shifted by PW) AND masks.
    /// </summary>
    public static void RowMasks(in Window3D w, in DepthwiseLayout l, Span<uint> masks)
    {
        if (masks.Length < l.MaskLength) throw new ArgumentException("depthwise: masks too short");
        for (int q = 0; q < l.MaskLength; q++) masks[q] = q >= w.PW && q < w.PW + l.N0 ? uint.MaxValue : 0u;
    }

    /// <summary>
    /// Zeroes a scratch area of <see cref="DepthwiseLayout.Total"/> floats once before its first plane, so that the
    /// phase planes' slack and the staging margins hold finite values (they only reach discarded outputs).
    /// </summary>
    public static void Prepare(in DepthwiseLayout l, float* scratch) => new Span<float>(scratch, l.Total).Clear();

    /// <summary>Where the current input plane (IH·IW floats, already x − z_x for integer inputs) is staged.</summary>
    public static float* Stage(in DepthwiseLayout l, float* scratch) => scratch + l.StageOffset;

    /// <summary>
    /// Σ_t w[t] · phases[starts[t] + i] + bias for i in [0, AccCap), summed in tap order with fused multiply-adds,
    /// into the scratch's accumulator rows (WS apart); returns them. With integer-valued inputs whose partial sums
    /// stay below 2^24 in magnitude every step is exact, so the sums equal the integer sums.
    /// </summary>
    public static float* Accumulate(in DepthwiseLayout l, float* scratch, int* starts, int ks, float* wc, float bias)
    {
        float* acc = scratch + l.AccOffset;
        Taps(scratch, starts, ks, wc, bias, acc, l.AccCap);
        return acc;
    }

    /// <summary>
    /// The OH·OW outputs contiguous: the accumulator rows themselves when WS = OW, else rows copied OW apart into the
    /// scratch's compaction area (16 floats at a time; a row's overhang is rewritten by the next row or lands in
    /// the area's slack).
    /// </summary>
    public static float* Compact(in Window3D w, in DepthwiseLayout l, float* acc, float* scratch)
    {
        if (l.WS == w.OW) return acc;
        float* dst = scratch + l.TmpOffset;
        for (int r = 0; r < w.OH; r++)
        {
            float* s = acc + r * l.WS, d = dst + r * w.OW;
            if (Vector512.IsHardwareAccelerated)
                for (int j = 0; j < w.OW; j += 16) Vector512.Load(s + j).Store(d + j);
            else
                for (int j = 0; j < w.OW; j++) d[j] = s[j];
        }
        return dst;
    }

    /// <summary>
    /// Writes the padded window of an input plane (IH·IW floats; for integer inputs the staged x − z_x) into the phase
    /// planes, padded row by padded row: padded row r (input row r − PH, zero outside) is read 16 columns at a time
    /// shifted by PW, with the lanes outside the input row masked off by <see cref="RowMasks"/> (AVX-512 masked loads
    /// do not touch masked-off memory, so rows at the ends of the tensor are read in place), then split by column phase.
    /// </summary>
    public static void FillPhases(in Window3D w, in DepthwiseLayout l, float* plane, float* scratch, uint* masks)
    {
        int sh = w.SH, sw = w.SW, ws = l.WS, stride = l.PhaseStride;
        // Only padded rows that hold an input row are written: the others (top and bottom padding) stay 0 from
        // Prepare, and what a 16-wide store writes past a row's end is 0 too (those lanes are masked off: columns
        // ≥ PW + N0), so they never change.
        int rTop = Math.Clamp(w.PH, 0, l.HP), rEnd = l.N0 == 0 ? rTop : Math.Clamp(w.PH + w.IH, rTop, l.HP);
        int rp = rTop % sh, rq = rTop / sh;
        float* src = plane + (long)(rTop - w.PH) * w.IW - w.PW;
        if (sw == 1 && Avx512F.IsSupported)
        {
            // Rows are written in increasing r, so what a store writes past a row's end lands in the next row of the
            // same plane (rewritten later, or padding that must stay 0, which it writes) or in the plane's slack.
            var m0 = Vector512.Load(masks).AsSingle();
            for (int r = rTop; r < rEnd; r++, src += w.IW)
            {
                float* dst = scratch + rp * stride + rq * ws;
                if (++rp == sh) { rp = 0; rq++; }
                Avx512F.MaskLoad(src, m0, Vector512<float>.Zero).Store(dst);
                for (int j = 16; j < ws; j += 16)
                    Avx512F.MaskLoad(src + j, Vector512.Load(masks + j).AsSingle(), Vector512<float>.Zero).Store(dst + j);
            }
            return;
        }
        if (sw == 2 && Avx512F.IsSupported)
        {
            // 32 padded columns → 16 even (phase 0) and 16 odd (phase 1) by two vpermt2ps.
            var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var odd = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            var m0 = Vector512.Load(masks).AsSingle();
            var m1 = Vector512.Load(masks + 16).AsSingle();
            for (int r = rTop; r < rEnd; r++, src += w.IW)
            {
                float* dst = scratch + rp * 2 * stride + rq * ws;
                if (++rp == sh) { rp = 0; rq++; }
                var a = Avx512F.MaskLoad(src, m0, Vector512<float>.Zero);
                var b = Avx512F.MaskLoad(src + 16, m1, Vector512<float>.Zero);
                Avx512F.PermuteVar16x32x2(a, even, b).Store(dst);
                Avx512F.PermuteVar16x32x2(a, odd, b).Store(dst + stride);
                for (int j = 16; j < ws; j += 16)
                {
                    a = Avx512F.MaskLoad(src + 2 * j, Vector512.Load(masks + 2 * j).AsSingle(), Vector512<float>.Zero);
                    b = Avx512F.MaskLoad(src + 2 * j + 16, Vector512.Load(masks + 2 * j + 16).AsSingle(), Vector512<float>.Zero);
                    Avx512F.PermuteVar16x32x2(a, even, b).Store(dst + j);
                    Avx512F.PermuteVar16x32x2(a, odd, b).Store(dst + stride + j);
                }
            }
            return;
        }
        for (int r = rTop; r < rEnd; r++, src += w.IW)
        {
            float* dst = scratch + rp * sw * stride + rq * ws;
            if (++rp == sh) { rp = 0; rq++; }
            for (int f = 0; f < sw; f++)
            {
                float* d = dst + f * stride;
                for (int j = 0; j < ws; j++)
                {
                    int q = j * sw + f;
                    d[j] = masks[q] != 0 ? src[q] : 0f;
                }
            }
        }
    }

    /// <summary>
    /// Y[oh·OW + ow] = clamp(acc[oh·WS + ow]) for the OH·OW outputs: one run when WS = OW, else row by row (the last
    /// partial vector of a row by a masked store with AVX-512, otherwise through the compaction area).
    /// </summary>
    public static void StoreRows(in Window3D w, in DepthwiseLayout l, float* acc, float* scratch, float* y, bool clamp, float lo, float hi)
    {
        int ow = w.OW;
        if (l.WS == ow || !Avx512F.IsSupported)
        {
            ClampCopy(Compact(w, l, acc, scratch), y, ow * w.OH, clamp, lo, hi);
            return;
        }
        var vl = Vector512.Create(lo);
        var vh = Vector512.Create(hi);
        int full = ow & ~15;
        var tail = Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(ow - full)).AsSingle();
        for (int r = 0; r < w.OH; r++)
        {
            float* s = acc + r * l.WS, d = y + r * ow;
            int j = 0;
            for (; j < full; j += 16)
            {
                var v = Vector512.Load(s + j);
                if (clamp) v = Vector512.Min(Vector512.Max(v, vl), vh);
                v.Store(d + j);
            }
            if (j < ow)
            {
                var v = Vector512.Load(s + j);
                if (clamp) v = Vector512.Min(Vector512.Max(v, vl), vh);
                Avx512F.MaskStore(d + j, tail, v);
            }
        }
    }

    /// <summary>
    /// 8-bit outputs of the OH·OW integer-valued sums: <see cref="RequantizeToBytes"/> over one run when WS = OW,
    /// else row by row with masked byte stores for a row's last partial vector (AVX-512 BW), otherwise through the
    /// compaction area.
    /// </summary>
    public static void RequantizeRows(in Window3D w, in DepthwiseLayout l, float* acc, float* scratch, float multiplier, float offset,
        int zeroPoint, int min, int max, byte* y)
    {
        int ow = w.OW;
        if (l.WS == ow || !Avx512BW.VL.IsSupported)
        {
            RequantizeToBytes(Compact(w, l, acc, scratch), ow * w.OH, multiplier, offset, zeroPoint, min, max, y);
            return;
        }
        var q = new Requant16(multiplier, offset, zeroPoint, min, max);
        int full = ow & ~15;
        var tail = Vector128.LessThan(Vector128.Create((byte)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector128.Create((byte)(ow - full)));
        for (int r = 0; r < w.OH; r++)
        {
            float* s = acc + r * l.WS;
            byte* d = y + r * ow;
            int j = 0;
            for (; j < full; j += 16) q.Apply(Vector512.Load(s + j)).Store(d + j);
            if (j < ow) Avx512BW.VL.MaskStore(d + j, tail, q.Apply(Vector512.Load(s + j)));
        }
    }

    /// <summary>The 16-lane float requantization of <see cref="RequantizeToBytes"/>.</summary>
    private readonly struct Requant16(float multiplier, float offset, int zeroPoint, int min, int max)
    {
        private readonly Vector512<float> _mul = Vector512.Create(multiplier), _off = Vector512.Create(offset);
        // Rounded values beyond [min − zp, max − zp] clamp to min / max; bounding the float first keeps the
        // conversion in range, the integer clamp then gives exactly the reference's choice.
        private readonly Vector512<float> _fLo = Vector512.Create((float)(min - zeroPoint) - 1f), _fHi = Vector512.Create((float)(max - zeroPoint) + 1f);
        private readonly Vector512<int> _zp = Vector512.Create(zeroPoint), _lo = Vector512.Create(min), _hi = Vector512.Create(max);

        public Vector128<byte> Apply(Vector512<float> sums)
        {
            var r = Vector512.Round(sums * _mul + _off);
            r = Vector512.Min(Vector512.Max(r, _fLo), _fHi);
            var q = Vector512.Min(Vector512.Max(Vector512.ConvertToInt32(r) + _zp, _lo), _hi);
            return Avx512F.ConvertToVector128Byte(q);
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


    /// <summary>
    /// dst[i] = Int8ChannelGemmReference.Requantize((int)sums[i], multiplier, offset, zeroPoint, min, max) as a byte
    /// (s8 codes as two's complement) for integer-valued sums below 2^24 (exact as floats): round half to even of
    /// sum·multiplier + offset (multiply, then add: the reference's two roundings), clamped, plus the zero point.
    /// 16 at a time, the last vector overlapping the previous one (rewriting the same bytes).
    /// </summary>
    public static void RequantizeToBytes(float* sums, int n, float multiplier, float offset, int zeroPoint, int min, int max, byte* dst)
    {
        int i = 0;
        if (Avx512F.IsSupported && n >= 16)
        {
            var q = new Requant16(multiplier, offset, zeroPoint, min, max);
            for (; ; i += 16)
            {
                if (i > n - 16) i = n - 16;
                q.Apply(Vector512.Load(sums + i)).Store(dst + i);
                if (i == n - 16) return;
            }
        }
        for (; i < n; i++)
            dst[i] = (byte)Reference.Int8ChannelGemmReference.Requantize((int)sums[i], multiplier, offset, zeroPoint, min, max);
    }

    /// <summary>
    /// dst[i] = (float)(x[i] − zero) for n 8-bit codes (u8, or s8 when <paramref name="signed"/>), exact. 16 at a time
    /// (vpmovzxbd / vpmovsxbd, vcvtdq2ps), the last vector overlapping the previous one.
    /// </summary>
    public static void WidenToFloat(byte* x, int n, bool signed, int zero, float* dst)
    {
        int i = 0;
        if (Avx512F.IsSupported && n >= 16)
        {
            var z = Vector512.Create(zero);
            for (; ; i += 16)
            {
                if (i > n - 16) i = n - 16;
                var b = Vector128.Load(x + i);
                var v = signed ? Avx512F.ConvertToVector512Int32(b.AsSByte()) : Avx512F.ConvertToVector512Int32(b);
                Vector512.ConvertToSingle(v - z).Store(dst + i);
                if (i == n - 16) return;
            }
        }
        if (Avx2.IsSupported && n >= 8)
        {
            var z = Vector256.Create(zero);
            for (; ; i += 8)
            {
                if (i > n - 8) i = n - 8;
                var v = signed ? Avx2.ConvertToVector256Int32((sbyte*)x + i) : Avx2.ConvertToVector256Int32(x + i);
                Vector256.ConvertToSingle(v - z).Store(dst + i);
                if (i == n - 8) return;
            }
        }
        for (; i < n; i++) dst[i] = (signed ? (sbyte)x[i] : x[i]) - zero;
    }
}

/// <summary>
/// Scratch layout of <see cref="FloatDepthwise"/> for one geometry (floats, every region a multiple of 16):
/// SH·SW phase planes of <see cref="PhaseStride"/>, the accumulator rows, the compaction area and the staging area
/// for the input plane (with margins for the shifted 16-wide row reads).
/// </summary>
public readonly struct DepthwiseLayout
{
    public readonly int HP, WP, HS, WS, Phases, PhaseStride, AccLen, AccCap, N0, MaskLength;
    public readonly int AccOffset, TmpOffset, StageOffset, Total;

    public DepthwiseLayout(in Window3D w)
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
        // A padded row is read SW·⌈WS/16⌉·16 columns wide (the stride-2 split reads 32 at a time).
        MaskLength = w.SW * Round16(WS);
        AccOffset = Phases * PhaseStride;
        TmpOffset = AccOffset + AccCap;
        // Row reads start PW before an input row and run MaskLength columns: margins on both sides of the plane.
        int lead = Round16(w.PW) + 16;
        StageOffset = TmpOffset + Round16(w.OH * w.OW) + 16 + lead;
        Total = StageOffset + Round16(w.IH * w.IW) + MaskLength + 16;
    }

    private static int Round16(int n) => (n + 15) & ~15;
}
