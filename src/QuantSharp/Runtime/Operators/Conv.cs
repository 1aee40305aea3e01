using QuantSharp.Graph;
using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Conv (opsets 1, 11, 22: same semantics) for float: Y = W ⊛ X + B over 1-, 2- or 3-D inputs (higher ranks run
/// the scalar reference). Per batch image and group, Y_g (M/g × out) = W_g (M/g × C/g·k) · col (C/g·k × out),
/// where col is the im2col matrix, or X itself for 1×1 stride-1 unpadded kernels. Depthwise convolutions
/// (group == C == M) use a direct kernel. Constant weights are packed once per group.
/// The same kernel runs <see cref="Lowering.FloatFusion"/>'s fused Conv (domain quantsharp.float), which adds
/// float attributes activation_min / activation_max: Y = min(max(conv, min), max) in the epilogue (a folded Relu or
/// Clip that follows the Conv).
/// </summary>
[OnnxOperator("Conv", 1)]
[OnnxOperator("Conv", 1, Domain = Lowering.FloatFusion.Domain)]
public sealed class ConvKernel : OpKernel
{
    private WindowAttributes _attrs = null!;
    private SgemmPackedA[]? _packed;
    private Tensor? _packedFrom;
    private bool _clamp;
    private float _lo = float.NegativeInfinity, _hi = float.PositiveInfinity;

    public override void Initialize(KernelInitContext ctx)
    {
        _attrs = WindowAttributes.FromNode(Node);
        if (Node.Domain == Lowering.FloatFusion.Domain)
        {
            _lo = Node.GetFloat(Lowering.FloatFusion.MinAttribute, float.NegativeInfinity);
            _hi = Node.GetFloat(Lowering.FloatFusion.MaxAttribute, float.PositiveInfinity);
            _clamp = !float.IsNegativeInfinity(_lo) || !float.IsPositiveInfinity(_hi);
        }
        if (ctx.Constant(1) is Tensor<float> w && w.Rank >= 3 && w.Shape[0] % _attrs.Group == 0)
        {
            int mg = w.Shape[0] / _attrs.Group, kg = w.Length / Math.Max(1, w.Shape[0]);
            bool depthwise = mg == 1 && w.Shape[1] == 1 && w.Shape[0] == _attrs.Group;
            if (!depthwise && w.Rank - 2 <= Window3D.MaxRank && kg > 0)
            {
                _packed = new SgemmPackedA[_attrs.Group];
                for (int g = 0; g < _attrs.Group; g++)
                    _packed[g] = Sgemm.PackA(false, mg, kg, w.Data.AsSpan(g * mg * kg, mg * kg), kg);
                _packedFrom = w;
            }
        }
    }

    public override void Compute(KernelContext ctx)
    {
        var x = NnShapes.FloatInput(ctx, 0, "Conv");
        var w = NnShapes.FloatInput(ctx, 1, "Conv");
        var b = ctx.HasInput(2) ? NnShapes.FloatInput(ctx, 2, "Conv") : null;
        var geo = ConvGeometry.ForConv(_attrs, x.Shape, w.Shape);
        if (b is not null && b.Length != geo.OutputChannels)
            throw new QuantSharpException($"bias has {b.Length} elements, expected {geo.OutputChannels}");
        var y = ctx.Output<float>(0, geo.OutputShape());
        if (y.Length == 0) return;
        ReadOnlySpan<float> bias = b is null ? default : b.Data;

        if (geo.SpatialRank > Window3D.MaxRank)
        {
            ConvReference.Conv(geo, x.Data, w.Data, bias, y.Data);
            ClampAll(y.Data);
            return;
        }
        var win = new Window3D(geo);
        int cg = geo.InputChannelsPerGroup, mg = geo.OutputChannelsPerGroup;
        if (cg == 1 && FloatDepthwise.Supports(win) && (mg == 1 || win.KernelSize > 1))
        {
            // One input channel per group (depthwise, one-channel stems), 2-D / 1-D: stride-phase planes, bias and
            // activation in the epilogue; output planes split over threads.
            int planes = geo.Batch * geo.OutputChannels;
            var xd = x.Data; var wd = w.Data; var yd = y.Data; var bd = b?.Data;
            int scratchLen = FloatDepthwise.ScratchLength(win);
            long work = (long)win.OutputSize * win.KernelSize + win.InputSize;
            bool clamp = _clamp;
            float lo = _lo, hi = _hi;
            ctx.ParallelFor(planes, (int)Math.Max(1, DepthwiseMinWorkPerChunk / Math.Max(1, work)), (s, e) =>
            {
                var scratch = ctx.RentScratch<float>(scratchLen);
                try { FloatDepthwise.Run(win, geo.OutputChannels, mg, xd, wd, bd, clamp, lo, hi, yd, s, e, scratch); }
                finally { ctx.ReturnScratch(scratch); }
            });
            return;
        }
        if (cg == 1 && mg == 1)
        {
            // Depthwise: one plane per (n, c); planes are independent, so split them over threads.
            int planes = geo.Batch * geo.InputChannels;
            var xd = x.Data; var wd = w.Data; var yd = y.Data; var bd = b?.Data;
            long work = (long)win.OutputSize * win.KernelSize;
            ctx.ParallelFor(planes, (int)Math.Max(1, DepthwiseMinWorkPerChunk / Math.Max(1, work)), (s, e) =>
                ConvKernels.Depthwise(win, geo.InputChannels, xd, wd, bd, yd, s, e));
            ClampAll(yd);
            return;
        }

        int kg = cg * win.KernelSize, outS = win.OutputSize;
        bool direct = win.KernelSize == 1 && !geo.HasPadding && geo.Strides.All(s => s == 1);
        var packed = ReferenceEquals(_packedFrom, w) ? _packed : null;
        if (packed is not null && !direct && geo.Batch > 1 && outS < BatchedOutputLimit)
        {
            uint[] masks = [];
            if (ConvKernels.IsShiftedCopy(win))
            {
                // Built once per input geometry (the holder is replaced whole, so a concurrent reader sees a consistent pair).
                var cached = _tapMasks;
                if (cached is null || !cached.Win.Equals(win)) _tapMasks = cached = new TapMaskCache(win, ConvKernels.TapMasks(win));
                masks = cached.Masks;
            }
            RunBatched(ctx, geo, win, x.Data, b?.Data, y.Data, packed, masks, _clamp, _lo, _hi);
            return;
        }
        // The column matrix is built for a slab of output positions at a time so that it (and its packed copy)
        // stays within a few MB however large the image is.
        int chunk = direct ? outS : Math.Clamp(ColumnBudget / Math.Max(1, kg) / 512 * 512, 512, Math.Max(512, outS));
        chunk = Math.Min(chunk, outS);
        var job = new GroupJob(geo, win, x.Data, w.Data, b?.Data, y.Data, packed, direct, chunk, _clamp, _lo, _hi);
        int tasks = geo.Batch * geo.Group;
        if (ctx.Threads > 1 && tasks >= ctx.Threads)
        {
            // Enough (image, group) pairs to keep every thread busy: one pair per task, serial inside.
            ctx.ParallelFor(tasks, 1, (s, e) =>
            {
                float[]? col = direct ? null : ctx.RentScratch<float>(kg * chunk);
                try { for (int t = s; t < e; t++) job.Run(t / geo.Group, t % geo.Group, col, null); }
                finally { if (col is not null) ctx.ReturnScratch(col); }
            });
            return;
        }
        float[]? scratch = direct ? null : ctx.RentScratch<float>(kg * chunk);
        try
        {
            for (int t = 0; t < tasks; t++) job.Run(t / geo.Group, t % geo.Group, scratch, ctx);
        }
        finally
        {
            if (scratch is not null) ctx.ReturnScratch(scratch);
        }
    }

    /// <summary>The fused activation over a whole output (paths whose epilogue does not clamp).</summary>
    private void ClampAll(float[] y)
    {
        if (_clamp) ClampInPlace(y, _lo, _hi);
    }

    /// <summary>y = min(max(y, lo), hi) in place.</summary>
    private static unsafe void ClampInPlace(Span<float> y, float lo, float hi)
    {
        fixed (float* p = y) FloatDepthwise.ClampCopy(p, p, y.Length, true, lo, hi);
    }

    private sealed record TapMaskCache(Window3D Win, uint[] Masks);

    private TapMaskCache? _tapMasks;

    /// <summary>
    /// Depthwise work (taps × outputs) a thread must get before planes are split: handing a chunk to a pool thread
    /// costs tens of microseconds on a busy two-core machine, more than a batch-1 layer's whole plane loop.
    /// </summary>
    private const long DepthwiseMinWorkPerChunk = 1L << 19;

    /// <summary>Images with fewer output positions than this share GEMMs (small N per image wastes the tiles).</summary>
    private const int BatchedOutputLimit = 4096;

    /// <summary>Floats of packed column matrix per slab (≈ 640 KB): stays in L2 while the GEMM streams it.</summary>
    private const int SlabBudget = 160 << 10;

    /// <summary>
    /// Small images: the columns of all images form one K × (N·S) matrix, cut into slabs of whole NR panels
    /// (results do not depend on where the slab boundaries fall). Per slab and group, im2col packs straight into
    /// the GEMM's B layout, C_g (M/g × slab) = W_g · col, then C plus bias is scattered to Y[n, m, pos].
    /// Slabs are split over threads; each GEMM runs on its thread.
    /// </summary>
    private static void RunBatched(KernelContext ctx, ConvGeometry geo, Window3D win, float[] x, float[]? bias, float[] y,
        SgemmPackedA[] packed, uint[] masks, bool clamp, float lo, float hi)
    {
        int cg = geo.InputChannelsPerGroup, mg = geo.OutputChannelsPerGroup, outS = win.OutputSize;
        int kg = cg * win.KernelSize, nr = Sgemm.NR;
        long total = (long)geo.Batch * outS;
        int slab = (int)Math.Min(total, Math.Max(nr, SlabBudget / Math.Max(1, kg) / nr * nr));
        // At least two slabs per thread when the batch allows. Every C element is computed with the same K order
        // whatever slab holds it, so this does not change results.
        if (ctx.Threads > 1)
            slab = (int)Math.Min(slab, Math.Max(nr, (total + 2L * ctx.Threads - 1) / (2L * ctx.Threads) + nr - 1) / nr * nr);
        int slabs = (int)((total + slab - 1) / slab), tasks = slabs * geo.Group;
        int npad = (slab + nr - 1) / nr * nr;
        ctx.ParallelFor(tasks, 1, (s, e) =>
        {
            var pb = ctx.RentScratch<float>(npad * kg);
            var row = ctx.RentScratch<float>(slab);
            var c = ctx.RentScratch<float>(mg * slab);
            try
            {
                for (int t = s; t < e; t++)
                {
                    int g = t % geo.Group;
                    int q0 = t / geo.Group * slab, width = (int)Math.Min(slab, total - q0);
                    var packedB = ConvKernels.PackColumns(win, geo.InputChannels, g * cg, kg, x, q0, width, pb, row, masks);
                    Sgemm.Multiply(packed[g], packedB, c.AsSpan(0, mg * width), width);
                    ScatterColumns(c, width, q0, outS, geo.OutputChannels, g * mg, mg, bias, y, clamp, lo, hi);
                }
            }
            finally
            {
                ctx.ReturnScratch(c);
                ctx.ReturnScratch(row);
                ctx.ReturnScratch(pb);
            }
        });
    }

    /// <summary>Y[img, m0 + m, pos] = clamp(C[m, q − q0] + bias[m0 + m]) for the slab's columns q = img·S + pos.</summary>
    private static void ScatterColumns(float[] c, int width, int q0, int outS, int channels, int m0, int mg, float[]? bias, float[] y,
        bool clamp, float lo, float hi)
    {
        for (int q = q0; q < q0 + width;)
        {
            int img = q / outS, pos = q - img * outS, len = Math.Min(outS - pos, q0 + width - q);
            for (int m = 0; m < mg; m++)
            {
                var src = c.AsSpan(m * width + (q - q0), len);
                var dst = y.AsSpan((img * channels + m0 + m) * outS + pos, len);
                if (bias is null) src.CopyTo(dst);
                else System.Numerics.Tensors.TensorPrimitives.Add(src, bias[m0 + m], dst);
                if (clamp) ClampInPlace(dst, lo, hi);
            }
            q += len;
        }
    }

    /// <summary>
    /// One (image, group) GEMM: Y_g = W_g · col (+ bias), in slabs of output positions. With a context, im2col and
    /// the GEMM use its threads; without, they run on the calling thread.
    /// </summary>
    private sealed record GroupJob(ConvGeometry Geo, Window3D Win, float[] X, float[] W, float[]? B, float[] Y,
        SgemmPackedA[]? Packed, bool Direct, int Chunk, bool Clamp, float Lo, float Hi)
    {
        public void Run(int n, int g, float[]? col, KernelContext? ctx)
        {
            int cg = Geo.InputChannelsPerGroup, mg = Geo.OutputChannelsPerGroup;
            int kg = cg * Win.KernelSize, inS = Win.InputSize, outS = Win.OutputSize;
            int threads = ctx?.Threads ?? 1;
            var ySpan = Y.AsSpan((n * Geo.OutputChannels + g * mg) * outS, mg * outS);
            // Packed weights: bias and activation are applied per register tile by the GEMM (one pass over Y);
            // otherwise Y is pre-filled with the bias, accumulated into, and clamped afterwards.
            bool fused = Packed is not null;
            if (B is not null && !fused)
                for (int m = 0; m < mg; m++) ySpan.Slice(m * outS, outS).Fill(B[g * mg + m]);
            int xOff = (n * Geo.InputChannels + g * cg) * inS;
            for (int c0 = 0; c0 < outS; c0 += Chunk)
            {
                int width = Math.Min(Chunk, outS - c0);
                ReadOnlySpan<float> bMat;
                if (Direct) bMat = X.AsSpan(xOff, cg * inS);
                else
                {
                    var colArr = col!;
                    int start = c0, end = c0 + width;
                    var win = Win;
                    var x = X;
                    if (ctx is null) ConvKernels.Im2Col(win, x.AsSpan(xOff, cg * inS), colArr, 0, kg, start, end);
                    else ctx.ParallelFor(kg, Math.Max(1, 65536 / Math.Max(1, width)), (s, e) =>
                        ConvKernels.Im2Col(win, x.AsSpan(xOff, cg * inS), colArr, s, e, start, end));
                    bMat = colArr.AsSpan(0, kg * width);
                }
                var yChunk = ySpan[c0..];
                if (fused)
                {
                    Sgemm.MultiplyBiasClamp(Packed![g], false, width, bMat, width, yChunk, outS,
                        B is null ? default : B.AsSpan(g * mg, mg), Lo, Hi, threads);
                    continue;
                }
                Sgemm.Multiply(false, false, mg, width, kg, W.AsSpan(g * mg * kg, mg * kg), kg, bMat, width, yChunk, outS, 1f, B is not null, threads);
                if (Clamp)
                    for (int m = 0; m < mg; m++) ClampInPlace(ySpan.Slice(m * outS + c0, width), Lo, Hi);
            }
        }
    }

    /// <summary>Floats of im2col matrix per slab (16 MB): large enough to keep the GEMM efficient.</summary>
    private const int ColumnBudget = 4 << 20;

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var attrs = WindowAttributes.FromNode(ctx.Node);
        var ws = NnShapes.KnownShape(ctx, 1);
        if (ws is null || ws.Length < 3)
        {
            NnShapes.InferWindowUnknown(ctx, 0, ctx.InputType(1)?.Shape is { Length: > 0 } wd ? wd[0] : Dimension.Unknown);
            return;
        }
        NnShapes.InferWindow(ctx, 0, ws[1] * attrs.Group, s => ConvGeometry.ForConv(attrs, s, ws), ws[0]);
    }
}

/// <summary>
/// ConvTranspose (opsets 1, 11, 22) for float. Per batch image and group, col (M/g·k × in) = W_gᵀ · X_g, then
/// col2im scatters col into Y (the adjoint of Conv's im2col), after Y was set to the bias.
/// Constant weights are packed once per group.
/// </summary>
[OnnxOperator("ConvTranspose", 1)]
public sealed class ConvTransposeKernel : OpKernel
{
    private WindowAttributes _attrs = null!;
    private SgemmPackedA[]? _packed;
    private Tensor? _packedFrom;

    public override void Initialize(KernelInitContext ctx)
    {
        _attrs = WindowAttributes.FromNode(Node);
        if (ctx.Constant(1) is Tensor<float> w && w.Rank >= 3 && w.Rank - 2 <= Window3D.MaxRank && w.Shape[0] % _attrs.Group == 0)
        {
            int cg = w.Shape[0] / _attrs.Group, rows = w.Length / Math.Max(1, w.Shape[0]);
            if (rows > 0 && cg > 0)
            {
                _packed = new SgemmPackedA[_attrs.Group];
                for (int g = 0; g < _attrs.Group; g++)
                    _packed[g] = Sgemm.PackA(true, rows, cg, w.Data.AsSpan(g * cg * rows, cg * rows), rows);
                _packedFrom = w;
            }
        }
    }

    public override void Compute(KernelContext ctx)
    {
        var x = NnShapes.FloatInput(ctx, 0, "ConvTranspose");
        var w = NnShapes.FloatInput(ctx, 1, "ConvTranspose");
        var b = ctx.HasInput(2) ? NnShapes.FloatInput(ctx, 2, "ConvTranspose") : null;
        var geo = ConvGeometry.ForConvTranspose(_attrs, x.Shape, w.Shape);
        if (b is not null && b.Length != geo.OutputChannels)
            throw new QuantSharpException($"bias has {b.Length} elements, expected {geo.OutputChannels}");
        var y = ctx.Output<float>(0, geo.OutputShape());
        if (y.Length == 0) return;
        if (geo.SpatialRank > Window3D.MaxRank)
        {
            ConvReference.ConvTranspose(geo, x.Data, w.Data, b is null ? default : b.Data, y.Data);
            return;
        }
        var win = new Window3D(geo, transposed: true);
        int cg = geo.InputChannelsPerGroup, mg = geo.OutputChannelsPerGroup;
        int rows = mg * win.KernelSize, inS = geo.InputSpatialSize, outS = geo.OutputSpatialSize;
        var packed = ReferenceEquals(_packedFrom, w) ? _packed : null;
        var col = ctx.RentScratch<float>(rows * inS);
        try
        {
            for (int n = 0; n < geo.Batch; n++)
            {
                for (int g = 0; g < geo.Group; g++)
                {
                    int yOff = (n * geo.OutputChannels + g * mg) * outS;
                    var ySpan = y.Data.AsSpan(yOff, mg * outS);
                    if (b is not null) for (int m = 0; m < mg; m++) ySpan.Slice(m * outS, outS).Fill(b.Data[g * mg + m]);
                    else ySpan.Clear();
                    if (inS == 0 || cg == 0) continue;
                    var xg = x.Data.AsSpan((n * geo.InputChannels + g * cg) * inS, cg * inS);
                    if (packed is not null)
                        Sgemm.Multiply(packed[g], false, inS, xg, inS, col.AsSpan(0, rows * inS), inS, threads: ctx.Threads);
                    else
                        Sgemm.Multiply(true, false, rows, inS, cg, w.Data.AsSpan(g * cg * rows, cg * rows), rows, xg, inS,
                            col.AsSpan(0, rows * inS), inS, threads: ctx.Threads);
                    var yArr = y.Data;
                    ctx.ParallelFor(mg, 1, (s, e) => ConvKernels.Col2Im(win, col, yArr.AsSpan(yOff, mg * outS), s, e));
                }
            }
        }
        finally
        {
            ctx.ReturnScratch(col);
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var attrs = WindowAttributes.FromNode(ctx.Node);
        var ws = NnShapes.KnownShape(ctx, 1);
        if (ws is null || ws.Length < 3)
        {
            NnShapes.InferWindowUnknown(ctx, 0, Dimension.Unknown);
            return;
        }
        NnShapes.InferWindow(ctx, 0, ws[0], s => ConvGeometry.ForConvTranspose(attrs, s, ws), (long)ws[1] * attrs.Group);
    }
}
