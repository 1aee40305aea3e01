using System.Buffers;
using System.Numerics;
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
        bool depthwise = group > 1 && _wShape[1] == 1 && m == group;
        if (!depthwise)
        {
            int mg = m / group, kg = w.Length / m;
            _groups = new IntGemmWeights[group];
            for (int g = 0; g < group; g++)
                _groups[g] = new IntGemmWeights(kg, mg, _w.AsSpan(g * mg * kg, mg * kg), transposed: true, _wZero.AsSpan(g * mg, mg));
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
        if (_groups.Length == 0)
        {
            // Depthwise: plane (b, ch) reads input plane (b, ch) and filter ch only.
            int ks = win.KernelSize;
            var xd = x.Data;
            var wd = _w;
            ctx.ParallelFor(n * m, 1, (lo, hi) =>
            {
                for (int plane = lo; plane < hi; plane++)
                {
                    int ch = plane % m;
                    int xBase = plane * inPlane, yBase = plane * p;
                    int wz = _wZero[ch];
                    var wf = wd.AsSpan(ch * ks, ks);
                    int o = 0;
                    var accs = new int[p];
                    for (int od = 0; od < win.OD; od++)
                        for (int oh = 0; oh < win.OH; oh++)
                            for (int ow = 0; ow < win.OW; ow++, o++)
                            {
                                int acc = 0, t = 0;
                                for (int kd = 0; kd < win.KD; kd++)
                                {
                                    int id = od * win.SD - win.PD + kd * win.DD;
                                    for (int kh = 0; kh < win.KH; kh++)
                                    {
                                        int ih = oh * win.SH - win.PH + kh * win.DH;
                                        bool rowIn = (uint)id < (uint)win.ID && (uint)ih < (uint)win.IH;
                                        int rowBase = xBase + (id * win.IH + ih) * win.IW;
                                        for (int kw = 0; kw < win.KW; kw++, t++)
                                        {
                                            int iw = ow * win.SW - win.PW + kw * win.DW;
                                            if (rowIn && (uint)iw < (uint)win.IW)
                                                acc += (int.CreateTruncating(xd[rowBase + iw]) - _xZero) * (wf[t] - wz);
                                        }
                                    }
                                }
                                accs[o] = acc;
                            }
                    _out.WriteChannel(yBuf, yBase, accs, 0, 1, p, ch);
                }
            });
            return;
        }

        int cg = c / group, mg = m / group, kg = cg * win.KernelSize;
        // Tiles of output positions per (batch, group): each builds its own im2col rows and accumulators.
        const int tile = 64;
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
                    for (int mm = 0; mm < mg; mm++)
                    {
                        int ch = g * mg + mm;
                        _out.WriteChannel(yBuf, (b * m + ch) * p + p0, acc, mm, mg, rows, ch);
                    }
                }
            }
            finally
            {
                ArrayPool<T>.Shared.Return(col);
                ArrayPool<int>.Shared.Return(acc);
            }
        });
    }

    /// <summary>
    /// Rows [p0, p0 + rows) of the position-major column matrix: row r, column ((c·KD + kd)·KH + kh)·KW + kw holds
    /// X[c, od·SD − PD + kd·DD, oh·SH − PH + kh·DH, ow·SW − PW + kw·DW], or z_x outside the input.
    /// </summary>
    private void Im2Col<T>(in Window3D w, ReadOnlySpan<T> x, int channels, T[] col, int kg, int p0, int rows) where T : unmanaged, IBinaryInteger<T>
    {
        T pad = T.CreateTruncating(_xZero);
        int plane = w.InputSize;
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
