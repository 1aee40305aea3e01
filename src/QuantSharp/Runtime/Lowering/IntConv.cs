using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Runtime.Operators;
using QuantSharp.Runtime.Operators.Quantization;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// Integer convolution. Inputs: x (u8/s8), x_scale, x_zero_point, w (s8 constant [M, C/group, k…]), w_scale
/// (scalar or [M]), w_zero_point, bias (float [M] or absent), y_scale, y_zero_point (both absent: float output).
/// acc[m, p] = Σ (x − z_x)(w[m] − z_w[m]) by im2col (one row of K = C/group·Πk bytes per output position, padding
/// filled with z_x) times the packed weights of the group; depthwise (group = C = M) by a direct tap loop.
/// The accumulator is requantized per output channel with the activation folded into the clamp.
/// </summary>
[OnnxOperator("Conv", 1, Domain = IntegerLowering.Domain)]
public sealed class IntConvKernel : OpKernel
{
    private WindowAttributes _attrs = null!;
    private int[] _wShape = [];
    private sbyte[] _w = [];
    private int[] _wZero = [];
    private int _xZero;
    private OutputStage _out = null!;
    private IntGemmWeights[] _groups = [];
    private Int8ChannelWeights? _channel;
    private float[]? _wf;

    public override void Initialize(KernelInitContext ctx)
    {
        _attrs = WindowAttributes.FromNode(Node);
        var w = ctx.Constant(3) as Tensor<sbyte> ?? throw new QuantSharpException("weights must be a constant int8 tensor");
        _wShape = w.Shape;
        _w = w.Data;
        int m = _wShape[0];
        float xs = IntOps.Scalar(ctx.Constant(1), "x_scale");
        _xZero = IntOps.ZeroPoint(ctx.Constant(2), "x_zero_point");
        var ws = QuantTensorOps.ToFloats(ctx.Constant(4) ?? throw new QuantSharpException("w_scale must be a constant"), "w_scale");
        if (ws.Length != 1 && ws.Length != m) throw new QuantSharpException($"w_scale has {ws.Length} elements, expected 1 or {m}");
        var wzT = ctx.Constant(5);
        _wZero = new int[m];
        if (wzT is not null)
        {
            var z = QuantTensorOps.ToInts(wzT, "w_zero_point");
            for (int i = 0; i < m; i++) _wZero[i] = z[z.Length == 1 ? 0 : i];
        }
        _out = new OutputStage(Node, ctx, m, xs, ws, 7, 8, 6);
        int group = _attrs.Group;
        // Depthwise (one input and one output channel per group): direct tap loop; everything else im2col + GEMM.
        // 2-D convolutions with one input channel per group (stems included) also go direct: the stride-phase
        // path runs a few long axpys per output plane, cheaper than im2col rows of K = Πk bytes through the GEMM.
        bool direct = (group > 1 && _wShape[1] == 1 && m == group) || (_wShape.Length == 4 && _wShape[1] == 1 && m % group == 0);
        // One input channel per group, several taps (depthwise, stems): float tap sums of (x − z_x)(w − z_w), exact
        // while ks·255² < 2^24 (see DepthwiseFloat), cheaper than im2col rows of K = ks bytes through the GEMM.
        int ks = w.Length / Math.Max(m, 1);
        if (_wShape.Length is 3 or 4 && _wShape[1] == 1 && m % group == 0 && ks > 1 && ks <= MaxExactTaps)
        {
            _wf = new float[w.Length];
            for (int i = 0; i < _wf.Length; i++) _wf[i] = _w[i] - _wZero[i / ks];
            return;
        }
        // One group of a 1-D or 2-D convolution: weights-on-the-left GEMM (output rows are channels, NCHW directly).
        if (group == 1 && _wShape.Length is 3 or 4 && Int8ChannelGemm.IsSupported)
        {
            _channel = Int8ChannelWeights.Pack(m, w.Length / Math.Max(m, 1), _w, _wZero);
            return;
        }
        if (!direct)
        {
            int mg = m / group, kg = w.Length / m;
            _groups = new IntGemmWeights[group];
            var kernel = Kernels.Jit.GeneratedInt8Kernel.Select(ctx.Options.IntegerExecution.GeneratedCode);
            for (int g = 0; g < group; g++)
                _groups[g] = new IntGemmWeights(kg, mg, _w.AsSpan(g * mg * kg, mg * kg), transposed: true, _wZero.AsSpan(g * mg, mg), kernel);
        }
    }

    public override void Compute(KernelContext ctx)
    {
        switch (ctx.Input(0))
        {
            case Tensor<byte> u: Run(ctx, u); break;
            case Tensor<sbyte> s: Run(ctx, s); break;
            case var t: throw new QuantSharpException($"x must be uint8 or int8, got {DataTypes.Name(t.DataType)}");
        }
    }

    private void Run<T>(KernelContext ctx, Tensor<T> x) where T : unmanaged, IBinaryInteger<T>
    {
        var geo = ConvGeometry.ForConv(_attrs, x.Shape, _wShape);
        var win = new Window3D(geo);
        var y = ctx.Output(0, _out.OutputType, geo.OutputShape());
        int n = geo.Batch, c = geo.InputChannels, m = geo.OutputChannels, group = geo.Group;
        int p = win.OutputSize, inPlane = win.InputSize;
        var yBuf = y.Buffer;
        if (_channel is not null)
        {
            RunChannel(ctx, x, win, yBuf, n, c, m);
            return;
        }
        if (_wf is not null && FloatDepthwise.Supports(win))
        {
            DepthwiseFloat(ctx, x, win, yBuf, n, c, m, group);
            return;
        }
        if (_groups.Length == 0 && win.KD == 1 && win.ID == 1 && win.OD == 1)
        {
            DepthwisePhased(ctx, x, win, yBuf, n, c, m, group);
            return;
        }
        if (_groups.Length == 0)
        {
            // Direct: output plane (b, ch) reads input plane (b, ch / (M / group)) and filter ch only. Per output row, each tap adds
            // (x − z_x)·(w − z_w) over the output columns whose input column lies inside the row (padding taps add 0).
            int ks = win.KernelSize;
            var xd = x.Data;
            ctx.ParallelFor(n * m, MinPlanes(p * ks), (lo, hi) =>
            {
                var accs = ArrayPool<int>.Shared.Rent(p);
                var xrow = ArrayPool<int>.Shared.Rent(win.IW);
                var wf = new int[ks];
                var colLo = new int[win.KW];
                var colHi = new int[win.KW];
                for (int kw = 0; kw < win.KW; kw++) win.ValidColumns(kw, out colLo[kw], out colHi[kw]);
                try
                {
                    for (int plane = lo; plane < hi; plane++)
                    {
                        int ch = plane % m;
                        int xBase = (plane / m * c + ch / (m / group)) * inPlane;
                        for (int t = 0; t < ks; t++) wf[t] = _w[ch * ks + t] - _wZero[ch];
                        var acc = accs.AsSpan(0, p);
                        acc.Clear();
                        for (int od = 0; od < win.OD; od++)
                            for (int oh = 0; oh < win.OH; oh++)
                            {
                                var row = acc.Slice((od * win.OH + oh) * win.OW, win.OW);
                                for (int kd = 0; kd < win.KD; kd++)
                                {
                                    int id = od * win.SD - win.PD + kd * win.DD;
                                    if ((uint)id >= (uint)win.ID) continue;
                                    for (int kh = 0; kh < win.KH; kh++)
                                    {
                                        int ih = oh * win.SH - win.PH + kh * win.DH;
                                        if ((uint)ih >= (uint)win.IH) continue;
                                        int rowBase = xBase + (id * win.IH + ih) * win.IW;
                                        for (int i = 0; i < win.IW; i++) xrow[i] = int.CreateTruncating(xd[rowBase + i]) - _xZero;
                                        int tBase = (kd * win.KH + kh) * win.KW;
                                        for (int kw = 0; kw < win.KW; kw++)
                                        {
                                            int wv = wf[tBase + kw];
                                            int shift = kw * win.DW - win.PW;
                                            if (win.SW == 1)
                                            {
                                                int o0 = colLo[kw], o1 = colHi[kw];
                                                if (o1 > o0) IntGemmAxpy(wv, xrow.AsSpan(o0 + shift, o1 - o0), row.Slice(o0, o1 - o0));
                                            }
                                            else
                                                for (int ow = colLo[kw]; ow < colHi[kw]; ow++) row[ow] += wv * xrow[ow * win.SW + shift];
                                        }
                                    }
                                }
                            }
                        _out.WriteChannel(yBuf, plane * p, acc, ch);
                    }
                }
                finally
                {
                    ArrayPool<int>.Shared.Return(accs);
                    ArrayPool<int>.Shared.Return(xrow);
                }
            });
            return;
        }

        int cg = c / group, mg = m / group, kg = cg * win.KernelSize;
        // Tiles of output positions per (batch, group): each builds its own im2col rows (≈ 256 KiB: the int8 GEMM has a fixed cost per call, so calls should be large) and
        // accumulators; at least two tiles per thread so both cores get work. Integer sums are exact, so the tiling
        // does not change results.
        int tile = Math.Clamp(262144 / Math.Max(kg, 1), 256, 4096);
        long perThread = ((long)n * group * p + 2L * ctx.Threads - 1) / (2L * ctx.Threads);
        tile = (int)Math.Max(16, Math.Min(tile, perThread));
        int tilesPerPlane = (p + tile - 1) / tile;
        var xdata = x.Data;
        ctx.ParallelFor(n * group * tilesPerPlane, 1, (lo, hi) =>
        {
            var col = ArrayPool<T>.Shared.Rent(tile * kg);
            var acc = ArrayPool<int>.Shared.Rent(tile * mg);
            try
            {
                for (int job = lo; job < hi; job++)
                {
                    int tIdx = job % tilesPerPlane, bg = job / tilesPerPlane;
                    int g = bg % group, b = bg / group;
                    int p0 = tIdx * tile, rows = Math.Min(tile, p - p0);
                    Im2Col(win, xdata.AsSpan((b * c + g * cg) * inPlane, cg * inPlane), cg, col, kg, p0, rows);
                    _groups[g].Multiply(rows, col.AsSpan(0, rows * kg), kg, _xZero, acc.AsSpan(0, rows * mg), mg);
                    _out.WriteTransposed(yBuf, (b * m + g * mg) * p + p0, p, acc.AsSpan(0, rows * mg), rows, mg, g * mg);
                }
            }
            finally
            {
                ArrayPool<T>.Shared.Return(col);
                ArrayPool<int>.Shared.Return(acc);
            }
        });
    }

    /// <summary>Largest tap count whose float sums of products (|x − z_x|, |w − z_w| ≤ 255) stay below 2^24: 258.</summary>
    private const int MaxExactTaps = (1 << 24) / (255 * 255);

    /// <summary>
    /// Convolutions with one input channel per group (depthwise, stems), 1-D or 2-D, through
    /// <see cref="FloatDepthwise"/>'s stride-phase planes: the input plane is widened to floats x − z_x, the taps
    /// (w − z_w as floats) summed with fused multiply-adds, the sums converted back to int32 and requantized per
    /// channel. Every product and partial sum is an integer of magnitude ≤ ks·255² &lt; 2^24, so each float step is
    /// exact and the accumulators equal the integer tap loop's bit for bit; output planes of one group (all of a
    /// stem's) reuse the phase planes of their shared input plane.
    /// </summary>
    private unsafe void DepthwiseFloat<T>(KernelContext ctx, Tensor<T> x, Window3D win, Array yBuf, int n, int c, int m, int group)
        where T : unmanaged, IBinaryInteger<T>
    {
        var layout = new DepthwiseLayout(win);
        int ks = win.KernelSize, p = win.OutputSize, inPlane = win.InputSize, mult = m / group;
        bool signed = typeof(T) == typeof(sbyte);
        var xd = x.Data;
        var wf = _wf!;
        int xZero = _xZero;
        // Float-mode requantization to 8-bit codes runs straight from the float sums (the same arithmetic as the
        // int32 path, which converts the sums to float first); fixed point and float outputs go through int32.
        var rq = _out.Quantized?.Channel;
        bool fused = rq is not null && yBuf is byte[] or sbyte[];
        ctx.ParallelFor(n * m, MinPlanes(p * ks), (lo, hi) =>
        {
            var scratch = ArrayPool<float>.Shared.Rent(layout.Total);
            var acc = ArrayPool<int>.Shared.Rent(p);
            var starts = new int[ks];
            var masks = new uint[layout.MaskLength];
            FloatDepthwise.TapStarts(win, layout, starts);
            FloatDepthwise.RowMasks(win, layout, masks);
            try
            {
                fixed (T* px = xd) fixed (float* ps = scratch) fixed (float* pw = wf) fixed (int* pst = starts) fixed (uint* pm = masks)
                fixed (int* pa = acc) fixed (byte* py0 = &MemoryMarshal.GetArrayDataReference(yBuf))
                {
                    FloatDepthwise.Prepare(layout, ps);
                    long filled = -1;
                    for (int op = lo; op < hi; op++)
                    {
                        int ch = op % m;
                        long xBase = ((long)(op / m) * c + ch / mult) * inPlane;
                        if (xBase != filled)
                        {
                            FloatDepthwise.WidenToFloat((byte*)px + xBase, inPlane, signed, xZero, FloatDepthwise.Stage(layout, ps));
                            FloatDepthwise.FillPhases(win, layout, FloatDepthwise.Stage(layout, ps), ps, pm);
                            filled = xBase;
                        }
                        float* a = FloatDepthwise.Accumulate(layout, ps, pst, ks, pw + (long)ch * ks, 0f);
                        if (fused)
                        {
                            FloatDepthwise.RequantizeRows(win, layout, a, ps, rq!.Multipliers[ch], rq.Offsets[ch], rq.ZeroPoint, rq.Min, rq.Max, py0 + (long)op * p);
                            continue;
                        }
                        float* sums = FloatDepthwise.Compact(win, layout, a, ps);
                        for (int i = 0; i < p; i++) pa[i] = (int)sums[i];
                        _out.WriteChannel(yBuf, op * p, acc.AsSpan(0, p), ch);
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scratch);
                ArrayPool<int>.Shared.Return(acc);
            }
        });
    }

    /// <summary>
    /// 2-D depthwise convolution through stride-phase planes. The plane x − z_x, zero-padded to the HP×WP window the
    /// output reads, is split into SH·SW phase planes: padded element (r, q) goes to plane (r mod SH)·SW + q mod SW at
    /// (r / SH)·WS + q / SW. Tap (kh, kw) then reads, for every output (oh, ow), element (oh + kh·DH / SH)·WS +
    /// kw·DW / SW + ow of one phase plane: with accumulator rows WS apart, each tap is a single contiguous
    /// y += w·x over OH·WS values (columns past OW are scratch and dropped). Padding contributes 0, as in the
    /// unlowered operator; integer sums do not depend on order, so results equal the tap loop exactly.
    /// </summary>
    private void DepthwisePhased<T>(KernelContext ctx, Tensor<T> x, Window3D win, Array yBuf, int n, int c, int m, int group)
        where T : unmanaged, IBinaryInteger<T>
    {
        int hp = (win.OH - 1) * win.SH + (win.KH - 1) * win.DH + 1;
        int wp = (win.OW - 1) * win.SW + (win.KW - 1) * win.DW + 1;
        int hs = (hp + win.SH - 1) / win.SH, ws = (wp + win.SW - 1) / win.SW;
        int phases = win.SH * win.SW;
        // Each phase plane has WS values of slack: the last tap's run may read up to kw·DW / SW < WS past its end.
        int phaseStride = hs * ws + ws;
        int ks = win.KernelSize, p = win.OutputSize, inPlane = win.InputSize, accLen = win.OH * ws;
        var xd = x.Data;
        ctx.ParallelFor(n * m, MinPlanes(p * ks), (lo, hi) =>
        {
            var ph = ArrayPool<int>.Shared.Rent(phases * phaseStride);
            var acc = ArrayPool<int>.Shared.Rent(Math.Max(accLen, p));
            var tapStarts = new int[ks];
            var tapWeights = new int[ks];
            bool evenWidth = win.SW == 2 && win.IW % 2 == 0;
            var evenCols = new int[evenWidth ? inPlane / 2 : (win.IW + 1) / 2];
            var oddCols = new int[evenWidth ? inPlane / 2 : win.IW / 2 + 1];
            bool signed = typeof(T) == typeof(sbyte);
            try
            {
                var phSpan = ph.AsSpan(0, phases * phaseStride);
                phSpan.Clear();
                int filled = -1;
                for (int plane = lo; plane < hi; plane++)
                {
                    int ch = plane % m;
                    int xBase = (plane / m * c + ch / (m / group)) * inPlane;
                    // Output planes of one group (all of a stem's) read the same input plane: fill it once.
                    if (xBase == filled) goto Taps;
                    filled = xBase;
                    if (evenWidth) IntTaps.WidenSubtractDeinterleave(MemoryMarshal.AsBytes(xd.AsSpan(xBase, inPlane)), signed, _xZero, evenCols, oddCols);
                    for (int r = 0; r < hp; r++)
                    {
                        int ih = r - win.PH;
                        var rowPhases = (r % win.SH) * win.SW;
                        int rowOff = r / win.SH * ws;
                        for (int f = 0; f < win.SW; f++)
                        {
                            var dst = ph.AsSpan((rowPhases + f) * phaseStride + rowOff, ws);
                            if ((uint)ih >= (uint)win.IH)
                            {
                                dst.Clear();
                                continue;
                            }
                            var src = xd.AsSpan(xBase + ih * win.IW, win.IW);
                            if (win.SW == 1)
                            {
                                // Unit column stride: the row is x − z_x between PW zeros on the left and zeros on the right.
                                int left = Math.Min(win.PW, ws), n0 = Math.Clamp(wp - win.PW, 0, win.IW);
                                dst[..left].Clear();
                                IntTaps.WidenSubtract(MemoryMarshal.AsBytes(src[..n0]), signed, _xZero, dst.Slice(left, n0));
                                dst[(left + n0)..].Clear();
                                continue;
                            }
                            int count = (wp - f + win.SW - 1) / win.SW;
                            if (win.SW == 2)
                            {
                                // Stride 2: phase f holds input columns iw = f + 2j − PW, all of one parity, i.e. a
                                // contiguous run of the row's even or odd elements (split once per row).
                                // With an even row width the whole plane is split once (row ih's halves start at ih·IW/2).
                                int half = 0;
                                if (evenWidth) half = ih * (win.IW / 2);
                                else if (f == 0)
                                    IntTaps.WidenSubtractDeinterleave(MemoryMarshal.AsBytes(src), signed, _xZero, evenCols, oddCols);
                                int d = f - win.PW;
                                bool fromEven = (d & 1) == 0;
                                var from = fromEven ? evenCols.AsSpan(half, (win.IW + 1) / 2) : oddCols.AsSpan(half, win.IW / 2);
                                int off = fromEven ? d / 2 : (d - 1) / 2;
                                int jLo = Math.Clamp(-off, 0, count), jHi = Math.Clamp(from.Length - off, jLo, count);
                                dst[..jLo].Clear();
                                from.Slice(jLo + off, jHi - jLo).CopyTo(dst.Slice(jLo, jHi - jLo));
                                dst[jHi..count].Clear();
                                continue;
                            }
                            int j = 0;
                            for (int q = f; q < wp; q += win.SW, j++)
                            {
                                int iw = q - win.PW;
                                dst[j] = (uint)iw < (uint)win.IW ? int.CreateTruncating(src[iw]) - _xZero : 0;
                            }
                        }
                    }
                Taps:
                    for (int kh = 0, t = 0; kh < win.KH; kh++)
                    {
                        int roff = kh * win.DH;
                        for (int kw = 0; kw < win.KW; kw++, t++)
                        {
                            int coff = kw * win.DW;
                            tapWeights[t] = _w[ch * ks + kh * win.KW + kw] - _wZero[ch];
                            tapStarts[t] = (roff % win.SH * win.SW + coff % win.SW) * phaseStride + roff / win.SH * ws + coff / win.SW;
                        }
                    }
                    IntTaps.Accumulate(ph.AsSpan(0, phases * phaseStride), tapStarts, tapWeights, accLen, acc);
                    // Compact rows WS apart to OW apart (forward, in place: WS ≥ OW).
                    if (ws != win.OW)
                        for (int oh = 1; oh < win.OH; oh++) acc.AsSpan(oh * ws, win.OW).CopyTo(acc.AsSpan(oh * win.OW, win.OW));
                    _out.WriteChannel(yBuf, plane * p, acc.AsSpan(0, p), ch);
                }
            }
            finally
            {
                ArrayPool<int>.Shared.Return(ph);
                ArrayPool<int>.Shared.Return(acc);
            }
        });
    }

    /// <summary>
    /// Group-1 convolution as W (M×K) · col (K×N·P): the output positions of all images form one run of columns
    /// q = image·P + position, cut into chunks (multiples of 16 columns, so only the batch's last block is partial).
    /// Per chunk the column matrix is built K rows × chunk (<see cref="Im2ColRows"/> per image segment; a chunk of a
    /// 1×1 unit-stride unpadded conv inside one image reads the input planes directly), packed for the vpdpbusd
    /// kernel and multiplied, the kernel requantizing in its epilogue. A chunk inside one image stores each channel's
    /// row straight into the NCHW output; one that spans images goes through a chunk-wide buffer and is copied per
    /// image (int32 rows go through the output stage in fixed-point mode or for float outputs). Integer sums are
    /// exact, so the chunking does not change results.
    /// </summary>
    private unsafe void RunChannel<T>(KernelContext ctx, Tensor<T> x, Window3D win, Array yBuf, int n, int c, int m)
        where T : unmanaged, IBinaryInteger<T>
    {
        var w = _channel!;
        int k = w.Depth, kp = w.PaddedDepth, p = win.OutputSize, inPlane = win.InputSize;
        bool signed = typeof(T) == typeof(sbyte);
        byte flip = (byte)(signed ? 0x80 : 0);
        int xZero = _xZero + (signed ? 128 : 0);
        byte pad = (byte)_xZero;
        bool pointwise = win.KernelSize == 1 && win.SH == 1 && win.SW == 1 && win.PH == 0 && win.PW == 0 && p == inPlane;
        long total = (long)n * p;
        // Chunks of columns: the K × chunk column matrix about 32 KiB (L1/L2), at least two jobs per thread.
        int byCache = Math.Clamp(32768 / Math.Max(k, 1) / 16 * 16, 16, 1024);
        long perThread = (total + 2L * ctx.Threads - 1) / (2L * ctx.Threads);
        int chunk = (int)Math.Min(byCache, Math.Max(16, (perThread + 15) / 16 * 16));
        chunk = (int)Math.Min(chunk, (total + 15) / 16 * 16);
        int jobs = (int)((total + chunk - 1) / chunk);
        var rq = _out.Quantized?.Channel;
        var xd = x.Data;
        // Validity masks of the shifted-copy im2col, one byte per (tap, output position), shared by all jobs.
        byte[]? masks = null;
        if (ShiftedCopy(win))
        {
            // Built once per input geometry (the holder is replaced whole, so a concurrent reader sees a consistent pair).
            var cached = _tapMasks;
            if (cached is null || !cached.Win.Equals(win)) _tapMasks = cached = new TapMaskCache(win, TapMasks(win));
            masks = cached.Masks;
        }
        // A chunk should carry ~400 K multiply-adds (a few µs): smaller ones cost more to hand to another thread
        // than they save (batch-1 layers are mostly below that and run on the calling thread).
        int minJobs = (int)Math.Max(1, 400_000 / Math.Max(1L, (long)m * k * chunk));
        ctx.ParallelFor(jobs, minJobs, (lo, hi) =>
        {
            var col = ArrayPool<byte>.Shared.Rent(k * chunk);
            var panel = ArrayPool<byte>.Shared.Rent(Int8ChannelGemm.PanelBytes(kp, chunk));
            var sums = w.AnyZeroPoint ? ArrayPool<int>.Shared.Rent(chunk) : null;
            var acc = rq is null ? ArrayPool<int>.Shared.Rent(m * chunk) : null;
            var ytmp = rq is not null ? ArrayPool<byte>.Shared.Rent(m * chunk) : null;
            try
            {
                fixed (T* px = xd) fixed (byte* pcol = col) fixed (byte* ppan = panel) fixed (int* psum = sums) fixed (int* pacc = acc)
                fixed (byte* pytmp = ytmp) fixed (byte* pmask = masks)
                {
                    ref byte yRef = ref MemoryMarshal.GetArrayDataReference(yBuf);
                    for (int job = lo; job < hi; job++)
                    {
                        long q0 = (long)job * chunk;
                        int cnt = (int)Math.Min(chunk, total - q0);
                        int b0 = (int)(q0 / p), p0 = (int)(q0 - (long)b0 * p);
                        bool single = p0 + cnt <= p;
                        byte* src;
                        int ld;
                        if (pointwise && single)
                        {
                            src = (byte*)px + (long)b0 * c * inPlane + p0;
                            ld = inPlane;
                        }
                        else
                        {
                            for (int q = 0; q < cnt;)
                            {
                                int b = (int)((q0 + q) / p), pos = (int)(q0 + q - (long)b * p), len = Math.Min(p - pos, cnt - q);
                                Im2ColRows(win, (byte*)px + (long)b * c * inPlane, c, pos, len, pcol + q, cnt, pad, pmask);
                                q += len;
                            }
                            src = pcol;
                            ld = cnt;
                        }
                        Int8ChannelGemm.PackColumns(src, ld, k, cnt, flip, kp, ppan, psum);
                        if (rq is not null)
                        {
                            if (single)
                            {
                                byte* py = (byte*)Unsafe.AsPointer(ref yRef) + (long)b0 * m * p + p0;
                                Int8ChannelGemm.Multiply(w, ppan, cnt, xZero, psum, rq, py, p);
                                continue;
                            }
                            Int8ChannelGemm.Multiply(w, ppan, cnt, xZero, psum, rq, pytmp, cnt);
                            for (int q = 0; q < cnt;)
                            {
                                int b = (int)((q0 + q) / p), pos = (int)(q0 + q - (long)b * p), len = Math.Min(p - pos, cnt - q);
                                byte* py = (byte*)Unsafe.AsPointer(ref yRef) + (long)b * m * p + pos;
                                for (int mi = 0; mi < m; mi++) Buffer.MemoryCopy(pytmp + (long)mi * cnt + q, py + (long)mi * p, len, len);
                                q += len;
                            }
                        }
                        else
                        {
                            Int8ChannelGemm.Multiply(w, ppan, cnt, xZero, psum, pacc, cnt);
                            for (int q = 0; q < cnt;)
                            {
                                int b = (int)((q0 + q) / p), pos = (int)(q0 + q - (long)b * p), len = Math.Min(p - pos, cnt - q);
                                for (int mi = 0; mi < m; mi++)
                                    _out.WriteChannel(yBuf, checked((int)(((long)b * m + mi) * p + pos)), acc.AsSpan(mi * cnt + q, len), mi);
                                q += len;
                            }
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(col);
                ArrayPool<byte>.Shared.Return(panel);
                if (sums is not null) ArrayPool<int>.Shared.Return(sums);
                if (acc is not null) ArrayPool<int>.Shared.Return(acc);
                if (ytmp is not null) ArrayPool<byte>.Shared.Return(ytmp);
            }
        });
    }

    private sealed record TapMaskCache(Window3D Win, byte[] Masks);

    private TapMaskCache? _tapMasks;

    /// <summary>Unit strides with OW = IW (2-D/1-D): every im2col row is one shifted copy of the input plane.</summary>
    private static bool ShiftedCopy(in Window3D w) => w.SH == 1 && w.SW == 1 && w.OW == w.IW;

    /// <summary>
    /// For the shifted-copy im2col: mask[(kh·KW + kw)·P + oh·OW + ow] = 0xFF when input (oh − PH + kh·DH,
    /// ow − PW + kw·DW) lies inside the plane, else 0; the row is then select(mask, shifted input, pad byte).
    /// </summary>
    private static byte[] TapMasks(in Window3D w)
    {
        int p = w.OutputSize;
        var masks = new byte[w.KH * w.KW * p];
        for (int kh = 0, t = 0; kh < w.KH; kh++)
            for (int kw = 0; kw < w.KW; kw++, t++)
            {
                w.ValidColumns(kw, out int lo, out int hi);
                for (int oh = 0; oh < w.OH; oh++)
                {
                    int ih = oh - w.PH + kh * w.DH;
                    if ((uint)ih >= (uint)w.IH) continue;
                    masks.AsSpan(t * p + oh * w.OW + lo, hi - lo).Fill(0xFF);
                }
            }
        return masks;
    }

    /// <summary>
    /// Column matrix rows for output positions [p0, p0 + cnt) of one image (1-D/2-D, KD = 1), rows
    /// <paramref name="ld"/> bytes apart: row (ch·KH + kh)·KW + kw, column p − p0 holds X[ch, oh·SH − PH + kh·DH,
    /// ow·SW − PW + kw·DW] (p = oh·OW + ow), or the pad byte (z_x) outside the input. With unit strides and OW = IW
    /// (<paramref name="masks"/> from <see cref="TapMasks"/>) a row is the input plane shifted by
    /// (kh·DH − PH)·IW + kw·DW − PW, blended with the pad byte by the tap's mask 32 bytes at a time; otherwise it is
    /// built output row by output row.
    /// </summary>
    private static unsafe void Im2ColRows(in Window3D w, byte* img, int channels, int p0, int cnt, byte* col, int ld, byte pad, byte* masks)
    {
        int inPlane = w.InputSize, p1 = p0 + cnt, p = w.OutputSize;
        int ohFirst = p0 / w.OW, ohLast = (p1 - 1) / w.OW;
        var padV = Vector256.Create(pad);
        byte* dst = col;
        for (int ch = 0; ch < channels; ch++)
        {
            byte* plane = img + (long)ch * inPlane;
            for (int kh = 0; kh < w.KH; kh++)
            {
                int dy = kh * w.DH - w.PH;
                for (int kw = 0; kw < w.KW; kw++, dst += ld)
                {
                    int dx = kw * w.DW - w.PW;
                    if (masks is not null)
                    {
                        // Positions whose source index falls outside the plane are all invalid taps: pad only.
                        int d = dy * w.IW + dx;
                        int a = Math.Max(p0, -d), e = Math.Min(p1, inPlane - d);
                        if (a >= e) { new Span<byte>(dst, cnt).Fill(pad); continue; }
                        if (a > p0) new Span<byte>(dst, a - p0).Fill(pad);
                        if (e < p1) new Span<byte>(dst + (e - p0), p1 - e).Fill(pad);
                        byte* mrow = masks + (long)(kh * w.KW + kw) * p;
                        int q = a;
                        for (; q + 32 <= e; q += 32)
                            Vector256.ConditionalSelect(Vector256.Load(mrow + q), Vector256.Load(plane + q + d), padV).Store(dst + (q - p0));
                        // Tail: one more vector ending at e when the row is long enough (rewriting some bytes with
                        // the same values), else 16 then single bytes.
                        if (q < e && e - a >= 32)
                        {
                            q = e - 32;
                            Vector256.ConditionalSelect(Vector256.Load(mrow + q), Vector256.Load(plane + q + d), padV).Store(dst + (q - p0));
                            continue;
                        }
                        if (q + 16 <= e)
                        {
                            Vector128.ConditionalSelect(Vector128.Load(mrow + q), Vector128.Load(plane + q + d), padV.GetLower()).Store(dst + (q - p0));
                            q += 16;
                        }
                        for (; q < e; q++) dst[q - p0] = mrow[q] != 0 ? plane[q + d] : pad;
                        continue;
                    }
                    w.ValidColumns(kw, out int lo, out int hi);
                    for (int oh = ohFirst; oh <= ohLast; oh++)
                    {
                        int rs = Math.Max(p0, oh * w.OW), re = Math.Min(p1, (oh + 1) * w.OW);
                        int owA = rs - oh * w.OW, owB = re - oh * w.OW;
                        byte* drow = dst + (rs - p0) - owA;
                        int ih = oh * w.SH + dy;
                        if ((uint)ih >= (uint)w.IH) { new Span<byte>(drow + owA, owB - owA).Fill(pad); continue; }
                        byte* srow = plane + (long)ih * w.IW + dx;
                        int va = Math.Max(owA, lo), vb = Math.Min(owB, hi);
                        for (int ow = owA; ow < Math.Min(owB, va); ow++) drow[ow] = pad;
                        if (w.SW == 1) { if (vb > va) Buffer.MemoryCopy(srow + va, drow + va, vb - va, vb - va); }
                        else for (int ow = va; ow < vb; ow++) drow[ow] = srow[ow * w.SW];
                        for (int ow = Math.Max(va, vb); ow < owB; ow++) drow[ow] = pad;
                    }
                }
            }
        }
    }

    /// <summary>Planes per parallel chunk for direct (depthwise) planes of <paramref name="work"/> multiply-adds: ~64 K per chunk.</summary>
    private static int MinPlanes(int work) => Math.Max(1, 65536 / Math.Max(1, work));

    /// <summary>y += a · x (int32).</summary>
    private static void IntGemmAxpy(int a, ReadOnlySpan<int> x, Span<int> y) => Kernels.Reference.IntGemmReference.Axpy(a, x, y);

    /// <summary>
    /// Rows [p0, p0 + rows) of the position-major column matrix: row r, column ((c·KD + kd)·KH + kh)·KW + kw holds
    /// X[c, od·SD − PD + kd·DD, oh·SH − PH + kh·DH, ow·SW − PW + kw·DW], or z_x outside the input.
    /// </summary>
    private void Im2Col<T>(in Window3D w, ReadOnlySpan<T> x, int channels, T[] col, int kg, int p0, int rows) where T : unmanaged, IBinaryInteger<T>
    {
        T pad = T.CreateTruncating(_xZero);
        int plane = w.InputSize;
        if (w.KernelSize == 1 && w.SD == 1 && w.SH == 1 && w.SW == 1 && w.PD == 0 && w.PH == 0 && w.PW == 0 && w.OutputSize == plane)
        {
            // 1×1, stride 1, no padding: the column matrix is the input transposed to position-major.
            // Blocks of 64 positions, so the block's column rows (64·K bytes) stay in L1 while every channel is written.
            for (int r0 = 0; r0 < rows; r0 += 64)
            {
                int rn = Math.Min(64, rows - r0);
                for (int ch = 0; ch < channels; ch++)
                {
                    var src = x.Slice(ch * plane + p0 + r0, rn);
                    int d = r0 * kg + ch;
                    for (int r = 0; r < rn; r++, d += kg) col[d] = src[r];
                }
            }
            return;
        }
        for (int r = 0; r < rows; r++)
        {
            int pos = p0 + r;
            int ow = pos % w.OW, oh = pos / w.OW % w.OH, od = pos / (w.OW * w.OH);
            var dst = col.AsSpan(r * kg, kg);
            int t = 0;
            for (int ch = 0; ch < channels; ch++)
            {
                var src = x.Slice(ch * plane, plane);
                for (int kd = 0; kd < w.KD; kd++)
                {
                    int id = od * w.SD - w.PD + kd * w.DD;
                    for (int kh = 0; kh < w.KH; kh++)
                    {
                        int ih = oh * w.SH - w.PH + kh * w.DH;
                        bool rowIn = (uint)id < (uint)w.ID && (uint)ih < (uint)w.IH;
                        int rowBase = (id * w.IH + ih) * w.IW;
                        int iw0 = ow * w.SW - w.PW;
                        if (!rowIn)
                        {
                            dst.Slice(t, w.KW).Fill(pad);
                            t += w.KW;
                            continue;
                        }
                        if (iw0 >= 0 && iw0 + (w.KW - 1) * w.DW < w.IW)
                        {
                            // Every tap of this kernel row lies inside the input row.
                            // Short kernel rows: a plain loop beats a memmove call per row.
                            if (w.DW == 1 && w.KW > 16) src.Slice(rowBase + iw0, w.KW).CopyTo(dst.Slice(t, w.KW));
                            else for (int kw = 0; kw < w.KW; kw++) dst[t + kw] = src[rowBase + iw0 + kw * w.DW];
                            t += w.KW;
                            continue;
                        }
                        for (int kw = 0; kw < w.KW; kw++, t++)
                        {
                            int iw = ow * w.SW - w.PW + kw * w.DW;
                            dst[t] = rowIn && (uint)iw < (uint)w.IW ? src[rowBase + iw] : pad;
                        }
                    }
                }
            }
        }
    }
}
