using System.Numerics;
using QuantSharp.Runtime.Operators.Quantization;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// Integer Gemm / MatMul with a constant int8 right operand. Inputs as <see cref="IntConvKernel"/>: a (u8/s8
/// [..., K]), a_scale, a_zero_point, w (s8 constant, [K, N], or [N, K] with trans_b = 1), w_scale (scalar or [N]),
/// w_zero_point, bias (float [N] or absent), y_scale, y_zero_point (absent: float output). Y[..., n] is the
/// requantized Σ_k (a − z_a)(w[k, n] − z_w[n]). The weights are prepared once here. Optional inputs 9-11 (bias2
/// float [N], y2_scale, y2_zero_point) describe a following DequantizeLinear → Add(bias2) → QuantizeLinear: each
/// code of the first output becomes sat(round(((q − z_y)·s_y + bias2[n]) / s_y2) + z_y2) (<see cref="SecondStageMap"/>:
/// the runtime's own float formulas, vectorised, with a per-channel 256-entry table as the scalar reference), so the
/// pair of ops is reproduced exactly.
/// </summary>
[OnnxOperator("Gemm", 1, Domain = IntegerLowering.Domain)]
public sealed class IntGemmKernel : OpKernel
{
    /// <summary>Accumulators per requantization chunk: below this a thread hand-off costs more than the work.</summary>
    private const int RequantChunk = 16384;

    private IntGemmWeights _w = null!;
    private int _aZero;
    private OutputStage _out = null!;
    private SecondStageMap? _second;
    private DataType _secondType;

    public override void Initialize(KernelInitContext ctx)
    {
        var w = ctx.Constant(3) as Tensor<sbyte> ?? throw new QuantSharpException("weights must be a constant int8 tensor");
        if (w.Rank != 2) throw new QuantSharpException($"weights must be 2-D, got {w}");
        bool transB = Node.GetInt("trans_b", 0) != 0;
        int k = transB ? w.Shape[1] : w.Shape[0], n = transB ? w.Shape[0] : w.Shape[1];
        float xs = IntOps.Scalar(ctx.Constant(1), "a_scale");
        _aZero = IntOps.ZeroPoint(ctx.Constant(2), "a_zero_point");
        var ws = QuantTensorOps.ToFloats(ctx.Constant(4) ?? throw new QuantSharpException("w_scale must be a constant"), "w_scale");
        if (ws.Length != 1 && ws.Length != n) throw new QuantSharpException($"w_scale has {ws.Length} elements, expected 1 or {n}");
        var wz = ctx.Constant(5) is { } z ? QuantTensorOps.ToInts(z, "w_zero_point") : [];
        _w = new IntGemmWeights(k, n, w.Data, transB, wz, Kernels.Jit.GeneratedInt8Kernel.Select(ctx.Options.IntegerExecution.GeneratedCode));
        _out = new OutputStage(Node, ctx, n, xs, ws, 7, 8, 6);
        if (Node.Input(9) is not null) _second = SecondStage(ctx, n);
    }

    /// <summary>The second stage: y2 = Q(DQ(y1) + bias2[n]) with the runtime's float formulas (table and vector forms).</summary>
    private SecondStageMap SecondStage(KernelInitContext ctx, int n)
    {
        if (_out.OutputType is not (DataType.UInt8 or DataType.Int8)) throw new QuantSharpException("bias2 needs a quantized first output");
        var bias = QuantTensorOps.ToFloats(ctx.Constant(9) ?? throw new QuantSharpException("bias2 must be a constant"), "bias2");
        if (bias.Length != n) throw new QuantSharpException($"bias2 has {bias.Length} elements, expected {n}");
        float s1 = IntOps.Scalar(ctx.Constant(7), "y_scale"), s2 = IntOps.Scalar(ctx.Constant(10), "y2_scale");
        int z1 = IntOps.ZeroPoint(ctx.Constant(8), "y_zero_point");
        var z2T = ctx.Constant(11);
        int z2 = IntOps.ZeroPoint(z2T, "y2_zero_point");
        _secondType = IntOps.TypeOf(z2T);
        return new SecondStageMap(_out.OutputType, s1, z1, bias, _secondType, s2, z2);
    }

    public override void Compute(KernelContext ctx)
    {
        switch (ctx.Input(0))
        {
            case Tensor<byte> u: Run(ctx, u); break;
            case Tensor<sbyte> s: Run(ctx, s); break;
            case var t: throw new QuantSharpException($"a must be uint8 or int8, got {DataTypes.Name(t.DataType)}");
        }
    }

    private void Run<T>(KernelContext ctx, Tensor<T> a) where T : unmanaged, IBinaryInteger<T>
    {
        int k = _w.Depth, n = _w.Columns;
        if (a.Rank < 1 || a.Shape[^1] != k) throw new QuantSharpException($"a {a} does not have {k} columns");
        int rows = k == 0 ? 0 : a.Length / k;
        var y = ctx.Output(0, _second is null ? _out.OutputType : _secondType, [.. a.Shape[..^1], n]);
        var yBuf = y.Buffer;
        var second = _second;
        var data = a.Data;
        if (second is null)
        {
            // One GEMM call over all rows: the driver splits output tiles over the threads and requantizes each tile
            // into y while it is in cache.
            _w.Multiply<T>(rows, data.AsSpan(0, rows * k), k, _aZero, new RowOutputSink(_out, yBuf, n), ctx.Threads);
            return;
        }
        // With a second stage: int32 accumulators, then by rows the first-stage codes (as ints, in place), the second
        // stage on them, and the narrowing to bytes.
        var acc = ctx.RentScratch<int>(rows * n);
        try
        {
            _w.Multiply<T>(rows, data.AsSpan(0, rows * k), k, _aZero, acc.AsSpan(0, rows * n), n, ctx.Threads);
            ctx.ParallelFor(rows, Math.Max(16, RequantChunk / Math.Max(1, n)), (lo, hi) =>
            {
                var dst = IntOps.Bytes(y);
                for (int r = lo; r < hi; r++)
                {
                    var row = acc.AsSpan(r * n, n);
                    _out.Quantized!.ApplyRow(row, 0);
                    second.ApplyRow(row);
                    OutputStage.NarrowToBytes(row, dst.Slice(r * n, n));
                }
            });
        }
        finally
        {
            ctx.ReturnScratch(acc);
        }
    }
}
