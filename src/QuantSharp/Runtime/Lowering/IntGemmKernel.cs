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
/// code of the first output becomes sat(round(((q − z_y)·s_y + bias2[n]) / s_y2) + z_y2) through a per-channel
/// 256-entry table built with the runtime's own float formulas, so the pair of ops is reproduced exactly.
/// </summary>
[OnnxOperator("Gemm", 1, Domain = IntegerLowering.Domain)]
public sealed class IntGemmKernel : OpKernel
{
    private IntGemmWeights _w = null!;
    private int _aZero;
    private OutputStage _out = null!;
    private byte[]? _second;
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

    /// <summary>Table [channel · 256 + first code index] of second-stage codes (as bytes; s8 two's complement).</summary>
    private byte[] SecondStage(KernelInitContext ctx, int n)
    {
        if (_out.OutputType is not (DataType.UInt8 or DataType.Int8)) throw new QuantSharpException("bias2 needs a quantized first output");
        var bias = QuantTensorOps.ToFloats(ctx.Constant(9) ?? throw new QuantSharpException("bias2 must be a constant"), "bias2");
        if (bias.Length != n) throw new QuantSharpException($"bias2 has {bias.Length} elements, expected {n}");
        float s1 = IntOps.Scalar(ctx.Constant(7), "y_scale"), s2 = IntOps.Scalar(ctx.Constant(10), "y2_scale");
        int z1 = IntOps.ZeroPoint(ctx.Constant(8), "y_zero_point");
        var z2T = ctx.Constant(11);
        int z2 = IntOps.ZeroPoint(z2T, "y2_zero_point");
        _secondType = IntOps.TypeOf(z2T);
        var (qmin, qmax) = Quantization.Math.QuantMath.Range(_secondType);
        int inMin = Quantization.Math.QuantMath.Range(_out.OutputType).Min;
        var table = new byte[n * 256];
        var v = new float[256];
        for (int c = 0; c < n; c++)
        {
            // DequantizeLinear, then Add in float, then the QuantizeLinear kernel's own vector formula.
            for (int i = 0; i < 256; i++) v[i] = (float)(inMin + i - z1) * s1 + bias[c];
            Operators.Quantization.QuantizeLinearKernel.QuantizeToBytes(v, s2, z2, qmin, qmax, table.AsSpan(c * 256, 256));
        }
        return table;
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
        bool firstSigned = _out.OutputType == DataType.Int8;
        // First-stage codes as bytes (s8 as two's complement: WriteRow stores (byte)code, the same bytes).
        byte[]? first = second is null ? null : ctx.RentScratch<byte>(rows * n);
        if (first is not null) yBuf = first;
        var data = a.Data;
        // One GEMM call over all rows (the driver splits output tiles over the threads and requantizes each tile
        // into y while it is in cache), then the optional second stage by rows.
        try
        {
            _w.Multiply<T>(rows, data.AsSpan(0, rows * k), k, _aZero, new RowOutputSink(_out, yBuf, n), ctx.Threads);
            if (second is null) return;
            ctx.ParallelFor(rows, 16, (lo, hi) =>
            {
                // Second stage: codes through the per-channel table (s8 first codes index by byte ^ 0x80).
                var dst = IntOps.Bytes(y);
                int flip = firstSigned ? 0x80 : 0;
                ref byte t = ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(second);
                for (int r = lo; r < hi; r++)
                {
                    var srow = first!.AsSpan(r * n, n);
                    var drow = dst.Slice(r * n, n);
                    for (int j = 0; j < srow.Length; j++) drow[j] = System.Runtime.CompilerServices.Unsafe.Add(ref t, (j << 8) + (srow[j] ^ flip));
                }
            });
        }
        finally
        {
            if (first is not null) ctx.ReturnScratch(first);
        }
    }
}
