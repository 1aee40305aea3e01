using System.Numerics;
using System.Runtime.Intrinsics;
using QuantSharp.Runtime.Operators;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>
/// Spatial geometry of a 1-, 2- or 3-D window operation padded to 3-D (missing leading axes have size 1,
/// kernel 1, stride 1, no pads), so one loop nest serves every rank the fast kernels support.
/// </summary>
public readonly struct Window3D
{
    public readonly int ID, IH, IW, OD, OH, OW, KD, KH, KW, SD, SH, SW, DD, DH, DW, PD, PH, PW;

    /// <summary>Largest spatial rank the 3-D kernels handle.</summary>
    public const int MaxRank = 3;

    /// <summary>
    /// From a conv or pooling geometry; with <paramref name="transposed"/> (ConvTranspose) the roles of input and
    /// output are swapped, giving the forward conv that maps the transposed conv's output back onto its input.
    /// </summary>
    public Window3D(ConvGeometry g, bool transposed = false)
    {
        if (g.SpatialRank > MaxRank) throw new ArgumentException($"spatial rank {g.SpatialRank} > {MaxRank}");
        int off = MaxRank - g.SpatialRank;
        int At(int[] a, int d, int fallback) => d < off ? fallback : a[d - off];
        var input = transposed ? g.OutputSpatial : g.InputSpatial;
        var output = transposed ? g.InputSpatial : g.OutputSpatial;
        ID = At(input, 0, 1); IH = At(input, 1, 1); IW = At(input, 2, 1);
        OD = At(output, 0, 1); OH = At(output, 1, 1); OW = At(output, 2, 1);
        KD = At(g.Kernel, 0, 1); KH = At(g.Kernel, 1, 1); KW = At(g.Kernel, 2, 1);
        SD = At(g.Strides, 0, 1); SH = At(g.Strides, 1, 1); SW = At(g.Strides, 2, 1);
        DD = At(g.Dilations, 0, 1); DH = At(g.Dilations, 1, 1); DW = At(g.Dilations, 2, 1);
        PD = At(g.PadsBegin, 0, 0); PH = At(g.PadsBegin, 1, 0); PW = At(g.PadsBegin, 2, 0);
    }

    public int KernelSize => KD * KH * KW;
    public int InputSize => ID * IH * IW;
    public int OutputSize => OD * OH * OW;

    /// <summary>Output columns [lo, hi) whose input column o·SW − PW + kw·DW lies inside [0, IW).</summary>
    public void ValidColumns(int kw, out int lo, out int hi)
    {
        int shift = kw * DW - PW;
        lo = shift >= 0 ? 0 : Math.Min(OW, (-shift + SW - 1) / SW);
        int last = IW - 1 - shift;
        hi = last < 0 ? 0 : Math.Min(OW, last / SW + 1);
        if (hi < lo) hi = lo;
    }
}

/// <summary>im2col / col2im and a direct depthwise convolution (float).</summary>
public static class ConvKernels
{
    /// <summary>
    /// Writes the column matrix of the input planes in <paramref name="x"/> for output positions
    /// [colStart, colEnd): row ((c·KD + kd)·KH + kh)·KW + kw, column (od·OH + oh)·OW + ow − colStart holds
    /// X[c, od·SD − PD + kd·DD, oh·SH − PH + kh·DH, ow·SW − PW + kw·DW] (0 outside). Rows [rowStart, rowEnd) only,
    /// so callers can split the work; the row stride of <paramref name="col"/> is colEnd − colStart.
    /// </summary>
    public static void Im2Col(in Window3D w, ReadOnlySpan<float> x, Span<float> col, int rowStart, int rowEnd, int colStart, int colEnd)
    {
        int ks = w.KernelSize, inSize = w.InputSize, width = colEnd - colStart;
        for (int row = rowStart; row < rowEnd; row++)
            FillRow(w, x.Slice(row / ks * inSize, inSize), row % ks, col.Slice(row * width, width), colStart, colEnd);
    }

    /// <summary>
    /// One im2col row for one input plane: dst[pos − posStart] = X[od·SD − PD + kd·DD, oh·SH − PH + kh·DH,
    /// ow·SW − PW + kw·DW] (0 outside X) for output positions pos = (od·OH + oh)·OW + ow in [posStart, posEnd),
    /// with (kd, kh, kw) the kernel offset <paramref name="kr"/>.
    /// </summary>
    public static void FillRow(in Window3D w, ReadOnlySpan<float> plane, int kr, Span<float> dst, int posStart, int posEnd)
    {
        int kd = kr / (w.KH * w.KW), kh = kr / w.KW % w.KH, kw = kr % w.KW;
        w.ValidColumns(kw, out int lo, out int hi);
        int colShift = kw * w.DW - w.PW;
        if (w.SW == 1 && w.SH == 1 && w.OW == w.IW && w.OD == 1 && w.ID == 1 && w.KD == 1 && w.PD == 0)
        {
            // Stride 1 with output rows as wide as input rows: pos + shift is the input index of every valid
            // position, so the row is one contiguous copy of the plane followed by zeroing of the border columns.
            int shift = (kh * w.DH - w.PH) * w.IW + colShift;
            int ohLo = Math.Clamp(w.PH - kh * w.DH, 0, w.OH), ohHi = Math.Clamp(w.IH + w.PH - kh * w.DH, ohLo, w.OH);
            int qa = Math.Max(posStart, Math.Max(ohLo * w.OW, -shift));
            int qb = Math.Min(posEnd, Math.Min(ohHi * w.OW, w.InputSize - shift));
            if (qb <= qa) { dst[..(posEnd - posStart)].Clear(); return; }
            dst[..(qa - posStart)].Clear();
            plane.Slice(qa + shift, qb - qa).CopyTo(dst[(qa - posStart)..]);
            dst[(qb - posStart)..(posEnd - posStart)].Clear();
            if (lo == 0 && hi == w.OW) return;
            for (int line = qa / w.OW, lineEnd = (qb - 1) / w.OW; line <= lineEnd; line++)
            {
                int l0 = line * w.OW;
                for (int q = Math.Max(qa, l0), e = Math.Min(qb, l0 + lo); q < e; q++) dst[q - posStart] = 0f;
                for (int q = Math.Max(qa, l0 + hi), e = Math.Min(qb, l0 + w.OW); q < e; q++) dst[q - posStart] = 0f;
            }
            return;
        }
        // Walk the output rows (od, oh) that overlap [posStart, posEnd).
        for (int pos = posStart; pos < posEnd;)
        {
            int line = pos / w.OW, ow0 = pos - line * w.OW;
            int ow1 = Math.Min(w.OW, ow0 + (posEnd - pos));
            int od = line / w.OH, oh = line % w.OH;
            var drow = dst.Slice(pos - posStart, ow1 - ow0);
            int id = od * w.SD - w.PD + kd * w.DD;
            int ih = oh * w.SH - w.PH + kh * w.DH;
            if ((uint)id >= (uint)w.ID || (uint)ih >= (uint)w.IH) drow.Clear();
            else
            {
                var srow = plane.Slice((id * w.IH + ih) * w.IW, w.IW);
                int a = Math.Clamp(lo, ow0, ow1), b = Math.Clamp(hi, a, ow1);
                drow[..(a - ow0)].Clear();
                drow[(b - ow0)..].Clear();
                if (w.SW == 1) srow.Slice(a + colShift, b - a).CopyTo(drow[(a - ow0)..(b - ow0)]);
                else for (int ow = a; ow < b; ow++) drow[ow - ow0] = srow[ow * w.SW + colShift];
            }
            pos += ow1 - ow0;
        }
    }

    /// <summary>
    /// Whether im2col rows are shifted copies of the input plane: unit strides, output rows as wide as input rows,
    /// 1-D or 2-D. Then position pos of tap (kh, kw) reads plane[pos + (kh·DH − PH)·IW + kw·DW − PW] when valid.
    /// </summary>
    public static bool IsShiftedCopy(in Window3D w) =>
        w.SW == 1 && w.SH == 1 && w.OW == w.IW && w.OD == 1 && w.ID == 1 && w.KD == 1 && w.PD == 0;

    /// <summary>
    /// For <see cref="IsShiftedCopy"/> geometries: mask[kr·S + pos] (S = output size) has all bits set when tap kr
    /// of output position pos lies inside the input, else 0, so a row is (shifted plane AND mask): 0 at padding.
    /// </summary>
    public static uint[] TapMasks(in Window3D w)
    {
        int ks = w.KernelSize, outS = w.OutputSize;
        var masks = new uint[ks * outS];
        for (int kr = 0; kr < ks; kr++)
        {
            int kh = kr / w.KW % w.KH, kw = kr % w.KW;
            w.ValidColumns(kw, out int lo, out int hi);
            for (int oh = 0; oh < w.OH; oh++)
            {
                int ih = oh - w.PH + kh * w.DH;
                if ((uint)ih < (uint)w.IH) masks.AsSpan(kr * outS + oh * w.OW + lo, hi - lo).Fill(uint.MaxValue);
            }
        }
        return masks;
    }

    /// <summary>
    /// im2col of a run of images, packed straight into the <see cref="SgemmPackedB"/> layout: column q of
    /// [colStart, colStart + width) is output position q mod S of image q / S (S = output size), so one GEMM covers
    /// several images. Row ((c·KD + kd)·KH + kh)·KW + kw reads channel <paramref name="channelOffset"/> + c of
    /// that image; <paramref name="rowBuf"/> (≥ width floats) holds one unpacked row at a time (it stays in L1).
    /// With <paramref name="tapMasks"/> from <see cref="TapMasks"/> (shifted-copy geometries) rows are masked
    /// vector copies; empty: <see cref="FillRow"/>.
    /// </summary>
    public static unsafe SgemmPackedB PackColumns(in Window3D w, int channels, int channelOffset, int kg, ReadOnlySpan<float> x,
        int colStart, int width, float[] packed, Span<float> rowBuf, ReadOnlySpan<uint> tapMasks)
    {
        int ks = w.KernelSize, inS = w.InputSize, outS = w.OutputSize, nr = Sgemm.NR;
        int panels = (width + nr - 1) / nr, npad = panels * nr;
        if (packed.Length < (long)npad * kg) throw new ArgumentException("packed buffer too small");
        if (rowBuf.Length < width) throw new ArgumentException("row buffer too small");
        if (!tapMasks.IsEmpty && tapMasks.Length < ks * outS) throw new ArgumentException("tap masks too short");
        fixed (float* px = x) fixed (float* prow = rowBuf) fixed (float* pdst = packed) fixed (uint* pmask = tapMasks)
        {
            for (int p = 0; p < kg; p++)
            {
                int c = p / ks, kr = p % ks;
                int kh = kr / w.KW % w.KH, kw = kr % w.KW;
                int shift = (kh * w.DH - w.PH) * w.IW + kw * w.DW - w.PW;
                for (int q = colStart; q < colStart + width;)
                {
                    int img = q / outS, pos = q - img * outS, end = Math.Min(outS, pos + colStart + width - q);
                    long planeOff = ((long)img * channels + channelOffset + c) * inS;
                    if ((ulong)(planeOff + inS) > (ulong)x.Length) throw new ArgumentException("input too short");
                    if (pmask is null)
                        FillRow(w, new ReadOnlySpan<float>(px + planeOff, inS), kr, rowBuf[(q - colStart)..], pos, end);
                    else
                        MaskedRow(px + planeOff, inS, shift, pmask + (long)kr * outS, prow + (q - colStart), pos, end);
                    q += end - pos;
                }
                // Row p goes to K block kb = p − p mod KC: panel jp of that block starts at kb·Npad + jp·kc·NR.
                int kb = p / Sgemm.KC * Sgemm.KC, kc = Math.Min(Sgemm.KC, kg - kb);
                float* d = pdst + (long)kb * npad + (p - kb) * nr;
                int full = width / nr;
                for (int jp = 0; jp < full; jp++, d += (long)kc * nr)
                {
                    float* s = prow + jp * nr;
                    if (Vector512.IsHardwareAccelerated && nr == 32)
                    {
                        Vector512.Load(s).Store(d);
                        Vector512.Load(s + 16).Store(d + 16);
                    }
                    else new ReadOnlySpan<float>(s, nr).CopyTo(new Span<float>(d, nr));
                }
                if (full < panels)
                {
                    int cols = width - full * nr;
                    new ReadOnlySpan<float>(prow + full * nr, cols).CopyTo(new Span<float>(d, cols));
                    new Span<float>(d + cols, nr - cols).Clear();
                }
            }
        }
        return new SgemmPackedB(packed, kg, width, nr);
    }

    /// <summary>
    /// dst[pos − posStart] = plane[pos + shift] AND mask[pos] for positions [posStart, posEnd); positions whose
    /// source index falls outside the plane are padding (their mask is 0) and are written as 0.
    /// </summary>
    private static unsafe void MaskedRow(float* plane, int inS, int shift, uint* mask, float* dst, int posStart, int posEnd)
    {
        int qa = Math.Max(posStart, -shift), qb = Math.Min(posEnd, inS - shift);
        if (qb <= qa) { new Span<float>(dst, posEnd - posStart).Clear(); return; }
        new Span<float>(dst, qa - posStart).Clear();
        new Span<float>(dst + (qb - posStart), posEnd - qb).Clear();
        float* s = plane + shift;
        float* o = dst - posStart;
        int q = qa;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; q + 16 <= qb; q += 16)
                (Vector512.Load((uint*)(s + q)) & Vector512.Load(mask + q)).AsSingle().Store(o + q);
            // Tail: one more vector ending at qb when the run is long enough (rewriting some values unchanged).
            if (q < qb && qb - qa >= 16)
            {
                q = qb - 16;
                (Vector512.Load((uint*)(s + q)) & Vector512.Load(mask + q)).AsSingle().Store(o + q);
                return;
            }
        }
        for (; q + 8 <= qb; q += 8)
            (Vector256.Load((uint*)(s + q)) & Vector256.Load(mask + q)).AsSingle().Store(o + q);
        if (q < qb && qb - qa >= 8)
        {
            q = qb - 8;
            (Vector256.Load((uint*)(s + q)) & Vector256.Load(mask + q)).AsSingle().Store(o + q);
            return;
        }
        for (; q < qb; q++) o[q] = mask[q] != 0 ? s[q] : 0f;
    }

    /// <summary>
    /// Inverse scatter of <see cref="Im2Col"/> for ConvTranspose, with the roles of input and output swapped:
    /// for output channels [mStart, mEnd), Y[m, i·S − P + k·D] += col[(m·K + k), i] where i runs over the
    /// transposed conv's input (the geometry's "output" here is the col's column space).
    /// </summary>
    public static void Col2Im(in Window3D w, ReadOnlySpan<float> col, Span<float> y, int mStart, int mEnd)
    {
        // Here w describes the forward conv that maps Y back onto X: Y is w's input, X (col columns) is w's output.
        int ks = w.KernelSize, inSize = w.InputSize, outSize = w.OutputSize;
        for (int m = mStart; m < mEnd; m++)
        {
            var plane = y.Slice(m * inSize, inSize);
            for (int kr = 0; kr < ks; kr++)
            {
                int kd = kr / (w.KH * w.KW), kh = kr / w.KW % w.KH, kw = kr % w.KW;
                var src = col.Slice((m * ks + kr) * outSize, outSize);
                w.ValidColumns(kw, out int lo, out int hi);
                int colShift = kw * w.DW - w.PW;
                for (int od = 0; od < w.OD; od++)
                {
                    int id = od * w.SD - w.PD + kd * w.DD;
                    if ((uint)id >= (uint)w.ID) continue;
                    for (int oh = 0; oh < w.OH; oh++)
                    {
                        int ih = oh * w.SH - w.PH + kh * w.DH;
                        if ((uint)ih >= (uint)w.IH) continue;
                        var srow = src.Slice((od * w.OH + oh) * w.OW, w.OW);
                        var drow = plane.Slice((id * w.IH + ih) * w.IW, w.IW);
                        if (w.SW == 1) Add(srow[lo..hi], drow.Slice(lo + colShift, hi - lo));
                        else for (int ow = lo; ow < hi; ow++) drow[ow * w.SW + colShift] += srow[ow];
                    }
                }
            }
        }
    }

    /// <summary>
    /// Depthwise convolution (group == C == M, W [C, 1, k…]) for planes [planeStart, planeEnd) of N·C:
    /// Y[p, o] = bias[c] + Σ_k W[c, k] · X[p, o·S − P + k·D], summed over the taps inside X in kernel order
    /// (multiply, then add: the same rounding as the scalar reference). Output columns whose taps are all inside
    /// the row are computed a vector at a time with the sum held in a register; border columns one by one.
    /// </summary>
    public static unsafe void Depthwise(in Window3D w, int channels, ReadOnlySpan<float> x, ReadOnlySpan<float> weights,
        ReadOnlySpan<float> bias, Span<float> y, int planeStart, int planeEnd)
    {
        int ks = w.KernelSize, inSize = w.InputSize, outSize = w.OutputSize;
        int kw_ = w.KW;
        var lo = stackalloc int[kw_];
        var hi = stackalloc int[kw_];
        var shift = stackalloc int[kw_];
        int interiorLo = 0, interiorHi = w.OW;
        for (int kw = 0; kw < kw_; kw++)
        {
            w.ValidColumns(kw, out lo[kw], out hi[kw]);
            shift[kw] = kw * w.DW - w.PW;
            interiorLo = Math.Max(interiorLo, lo[kw]);
            interiorHi = Math.Min(interiorHi, hi[kw]);
        }
        if (w.SW != 1 || interiorHi < interiorLo) interiorLo = interiorHi = 0;
        // Row pointers and weight offsets of the (kd, kh) taps that fall inside X for the current output row.
        int maxRows = w.KD * w.KH;
        var rowPtr = stackalloc nint[maxRows];
        var rowW = stackalloc int[maxRows];
        int vc = Vector<float>.Count;
        fixed (float* px = x) fixed (float* pw = weights) fixed (float* py = y)
        {
            for (int p = planeStart; p < planeEnd; p++)
            {
                int c = p % channels;
                float* src = px + (long)p * inSize;
                float* dst = py + (long)p * outSize;
                float* wc = pw + (long)c * ks;
                float b0 = bias.IsEmpty ? 0f : bias[c];
                for (int od = 0; od < w.OD; od++)
                {
                    for (int oh = 0; oh < w.OH; oh++)
                    {
                        float* drow = dst + (od * w.OH + oh) * w.OW;
                        int rows = 0;
                        for (int kd = 0; kd < w.KD; kd++)
                        {
                            int id = od * w.SD - w.PD + kd * w.DD;
                            if ((uint)id >= (uint)w.ID) continue;
                            for (int kh = 0; kh < w.KH; kh++)
                            {
                                int ih = oh * w.SH - w.PH + kh * w.DH;
                                if ((uint)ih >= (uint)w.IH) continue;
                                rowPtr[rows] = (nint)(src + (id * w.IH + ih) * w.IW);
                                rowW[rows] = (kd * w.KH + kh) * kw_;
                                rows++;
                            }
                        }
                        int ow = interiorLo;
                        var vb = new Vector<float>(b0);
                        for (; ow + vc <= interiorHi; ow += vc)
                        {
                            var acc = vb;
                            for (int r = 0; r < rows; r++)
                            {
                                float* srow = (float*)rowPtr[r] + ow;
                                float* wr = wc + rowW[r];
                                for (int kw = 0; kw < kw_; kw++)
                                    acc += new Vector<float>(wr[kw]) * Vector.Load(srow + shift[kw]);
                            }
                            acc.Store(drow + ow);
                        }
                        for (int o = 0; o < w.OW; o++)
                        {
                            if (o == interiorLo) o = ow;
                            if (o >= w.OW) break;
                            float sum = b0;
                            for (int r = 0; r < rows; r++)
                            {
                                float* srow = (float*)rowPtr[r];
                                float* wr = wc + rowW[r];
                                for (int kw = 0; kw < kw_; kw++)
                                {
                                    int iw = o * w.SW + shift[kw];
                                    if ((uint)iw < (uint)w.IW) sum += wr[kw] * srow[iw];
                                }
                            }
                            drow[o] = sum;
                        }
                    }
                }
            }
        }
    }

    /// <summary>dst[i] += src[i].</summary>
    public static void Add(ReadOnlySpan<float> src, Span<float> dst)
    {
        int i = 0;
        int vc = Vector<float>.Count;
        for (; i <= src.Length - vc; i += vc)
            (new Vector<float>(dst[i..]) + new Vector<float>(src[i..])).CopyTo(dst[i..]);
        for (; i < src.Length; i++) dst[i] += src[i];
    }

    /// <summary>dst[i] += s · src[i] (multiply then add, the same rounding as the scalar tail).</summary>
    public static void MultiplyAdd(ReadOnlySpan<float> src, float s, Span<float> dst)
    {
        int i = 0;
        int vc = Vector<float>.Count;
        var vs = new Vector<float>(s);
        for (; i <= src.Length - vc; i += vc)
            (new Vector<float>(dst[i..]) + new Vector<float>(src[i..]) * vs).CopyTo(dst[i..]);
        for (; i < src.Length; i++) dst[i] += s * src[i];
    }
}
