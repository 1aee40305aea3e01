using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators.Quantization;

/// <summary>
/// com.microsoft MatMulNBits: Y = A · dequant(B)ᵀ (+ bias), with B an N×K matrix quantized in blocks of
/// <c>block_size</c> along K to <c>bits</c> (2, 4 or 8) bits.
/// <list type="bullet">
/// <item>B: uint8 [N, k_blocks, blob_size], k_blocks = ceil(K / block_size), blob_size = block_size · bits / 8;
/// codes are packed low bits first, so code k of row n is bits [(k % per_byte)·bits, …) of byte k / per_byte of
/// row n (the last block of a row is padded).</item>
/// <item>scales: [N · k_blocks] (or [N, k_blocks]) of A's type.</item>
/// <item>zero_points (optional): uint8 packed like B, ceil(k_blocks · bits / 8) bytes per row; or unpacked
/// [N · k_blocks] of A's type. Default 2^(bits−1) (8 for 4-bit).</item>
/// <item>g_idx (optional, int32 [K]): block index of each k (act-order); default k / block_size.</item>
/// <item>bias (optional): [N] of A's type.</item>
/// </list>
/// dequant(B)[n, k] = (code − zero_point) · scale in float32; A may be float or float16 (accumulated in float32).
/// accuracy_level is a speed hint and is ignored. Y has shape A.shape[..-1] + [N].
/// </summary>
[OnnxOperator("MatMulNBits", 1, Domain = "com.microsoft")]
public sealed class MatMulNBitsKernel : OpKernel
{
    private int _k, _n, _bits, _blockSize, _kBlocks, _blobSize;
    private float[]? _constWeights;

    public override void Initialize(KernelInitContext ctx)
    {
        var node = ctx.Node;
        long k = node.GetInt("K", -1), n = node.GetInt("N", -1), bits = node.GetInt("bits", 4), bs = node.GetInt("block_size", -1);
        if (k <= 0 || n <= 0 || k > int.MaxValue || n > int.MaxValue)
            throw new QuantSharpException($"attributes K={k} and N={n} must be given and positive");
        if (bits is not (2 or 4 or 8)) throw new QuantSharpException($"bits={bits} is not supported (2, 4 or 8)");
        if (bs <= 0 || bs > int.MaxValue || bs * bits % 8 != 0)
            throw new QuantSharpException($"block_size={bs} must be positive and a whole number of bytes at {bits} bits");
        _k = (int)k; _n = (int)n; _bits = (int)bits; _blockSize = (int)bs;
        _kBlocks = (int)((k + bs - 1) / bs);
        _blobSize = (int)(bs * bits / 8);
        bool allConstant = true;
        for (int i = 1; i < Math.Min(node.Inputs.Count, 5); i++)
            if (node.Input(i) is not null && ctx.Constant(i) is null) allConstant = false;
        if (allConstant && ctx.Constant(1) is { } b && ctx.Constant(2) is { } s)
            _constWeights = Dequantize(b, s, ctx.Constant(3), ctx.Constant(4));
    }

    /// <summary>The dequantized weight as a dense row-major float [N, K] matrix.</summary>
    public float[] Dequantize(Tensor b, Tensor scales, Tensor? zeroPoints, Tensor? gIdx)
    {
        if (b is not Tensor<byte> bt) throw new QuantSharpException($"B must be uint8, got {DataTypes.Name(b.DataType)}");
        long wantB = (long)_n * _kBlocks * _blobSize;
        if (bt.Length != wantB)
            throw new QuantSharpException($"B has {bt.Length} bytes, expected N·k_blocks·blob_size = {_n}·{_kBlocks}·{_blobSize} = {wantB}");
        var sc = QuantOps.ToFloats(scales, "scales");
        if (sc.Length != _n * _kBlocks)
            throw new QuantSharpException($"scales has {sc.Length} elements, expected N·k_blocks = {_n * _kBlocks}");
        int[]? blockOf = null;
        if (gIdx is not null)
        {
            blockOf = QuantOps.ToInts(gIdx, "g_idx");
            if (blockOf.Length != _k) throw new QuantSharpException($"g_idx has {blockOf.Length} elements, expected K = {_k}");
            foreach (int g in blockOf)
                if (g < 0 || g >= _kBlocks) throw new QuantSharpException($"g_idx value {g} is outside [0, {_kBlocks})");
        }
        byte[]? zpPacked = null;
        float[]? zpFloat = null;
        int zpRowBytes = (_kBlocks * _bits + 7) / 8;
        if (zeroPoints is Tensor<byte> zb)
        {
            if (zb.Length != _n * zpRowBytes)
                throw new QuantSharpException($"zero_points has {zb.Length} bytes, expected N·ceil(k_blocks·bits/8) = {_n * zpRowBytes}");
            zpPacked = zb.Data;
        }
        else if (zeroPoints is not null)
        {
            zpFloat = QuantOps.ToFloats(zeroPoints, "zero_points");
            if (zpFloat.Length != _n * _kBlocks)
                throw new QuantSharpException($"zero_points has {zpFloat.Length} elements, expected N·k_blocks = {_n * _kBlocks}");
        }
        float defaultZero = 1 << (_bits - 1);
        var w = new float[(long)_n * _k];
        int rowBytes = _kBlocks * _blobSize;
        for (int n = 0; n < _n; n++)
        {
            var row = bt.Data.AsSpan(n * rowBytes, rowBytes);
            var zpRow = zpPacked is null ? default : zpPacked.AsSpan(n * zpRowBytes, zpRowBytes);
            for (int k = 0; k < _k; k++)
            {
                int blk = blockOf is null ? k / _blockSize : blockOf[k];
                int p = n * _kBlocks + blk;
                float zp = zpPacked is not null ? Int4.UnpackCode(zpRow, blk, _bits)
                    : zpFloat is not null ? zpFloat[p] : defaultZero;
                w[(long)n * _k + k] = (Int4.UnpackCode(row, k, _bits) - zp) * sc[p];
            }
        }
        return w;
    }

    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input(0);
        if (a.Rank < 1 || a.Shape[^1] != _k)
            throw new QuantSharpException($"A {ShapeUtil.Format(a.Shape)} must have last dimension K = {_k}");
        var w = _constWeights ?? Dequantize(ctx.Input(1), ctx.Input(2), ctx.OptionalInput(3), ctx.OptionalInput(4));
        float[]? bias = ctx.OptionalInput(5) is { } bt ? QuantOps.ToFloats(bt, "bias") : null;
        if (bias is not null && bias.Length != _n) throw new QuantSharpException($"bias has {bias.Length} elements, expected N = {_n}");
        var af = QuantOps.ToFloats(a, "A");
        int rows = a.Length / _k;
        int[] outShape = [.. a.Shape[..^1], _n];
        var yf = a.DataType == DataType.Float ? ctx.Output<float>(0, outShape).Data : new float[rows * _n];
        int n = _n, kk = _k;
        ctx.ParallelFor(rows * n, Math.Max(1, 4096 / kk), (start, end) =>
        {
            for (int idx = start; idx < end; idx++)
            {
                int m = idx / n, j = idx % n;
                float v = TensorPrimitives.Dot(af.AsSpan(m * kk, kk), w.AsSpan(j * kk, kk));
                yf[idx] = bias is null ? v : v + bias[j];
            }
        });
        if (a.DataType == DataType.Float16)
        {
            var yh = ctx.Output<Half>(0, outShape).Data;
            for (int i = 0; i < yf.Length; i++) yh[i] = (Half)yf[i];
        }
        else if (a.DataType != DataType.Float)
            throw new QuantSharpException($"A must be float or float16, got {DataTypes.Name(a.DataType)}");
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var a = ctx.InputType(0);
        if (a is null) return;
        long n = ctx.Node.GetInt("N", -1);
        Dimension[]? dims = a.Shape is { Length: > 0 } s ? [.. s[..^1], new Dimension(n)] : null;
        ctx.SetOutputType(0, new TensorTypeInfo(a.ElementType, dims));
    }
}
