using System.Numerics;
using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Runtime.Kernels.Simd;
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
    private NBitsWeights? _constWeights;

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
            _constWeights = Prepare(b, s, ctx.Constant(3), ctx.Constant(4));
    }

    /// <summary>The dequantized weight as a dense row-major float [N, K] matrix (for tests and reference code).</summary>
    public float[] Dequantize(Tensor b, Tensor scales, Tensor? zeroPoints, Tensor? gIdx)
    {
        var p = Prepare(b, scales, zeroPoints, gIdx);
        var w = new float[(long)_n * _k];
        for (int n = 0; n < _n; n++) p.DequantizeRow(n, w.AsSpan(n * _k, _k));
        return w;
    }

    private NBitsWeights Prepare(Tensor b, Tensor scales, Tensor? zeroPoints, Tensor? gIdx)
    {
        if (b is not Tensor<byte> bt) throw new QuantSharpException($"B must be uint8, got {DataTypes.Name(b.DataType)}");
        long wantB = (long)_n * _kBlocks * _blobSize;
        if (bt.Length != wantB)
            throw new QuantSharpException($"B has {bt.Length} bytes, expected N·k_blocks·blob_size = {_n}·{_kBlocks}·{_blobSize} = {wantB}");
        var sc = QuantTensorOps.ToFloats(scales, "scales");
        if (sc.Length != _n * _kBlocks)
            throw new QuantSharpException($"scales has {sc.Length} elements, expected N·k_blocks = {_n * _kBlocks}");
        int[]? blockOf = null;
        if (gIdx is not null)
        {
            blockOf = QuantTensorOps.ToInts(gIdx, "g_idx");
            if (blockOf.Length != _k) throw new QuantSharpException($"g_idx has {blockOf.Length} elements, expected K = {_k}");
            foreach (int g in blockOf)
                if (g < 0 || g >= _kBlocks) throw new QuantSharpException($"g_idx value {g} is outside [0, {_kBlocks})");
        }
        // One float zero point per (n, block): unpacked from packed uint8 codes, taken as-is, or the default 2^(bits−1).
        var zp = new float[_n * _kBlocks];
        int zpRowBytes = (_kBlocks * _bits + 7) / 8;
        if (zeroPoints is Tensor<byte> zb)
        {
            if (zb.Length != _n * zpRowBytes)
                throw new QuantSharpException($"zero_points has {zb.Length} bytes, expected N·ceil(k_blocks·bits/8) = {_n * zpRowBytes}");
            for (int n = 0; n < _n; n++)
            {
                var row = zb.Data.AsSpan(n * zpRowBytes, zpRowBytes);
                for (int blk = 0; blk < _kBlocks; blk++) zp[n * _kBlocks + blk] = Int4.UnpackCode(row, blk, _bits);
            }
        }
        else if (zeroPoints is not null)
        {
            var zf = QuantTensorOps.ToFloats(zeroPoints, "zero_points");
            if (zf.Length != _n * _kBlocks)
                throw new QuantSharpException($"zero_points has {zf.Length} elements, expected N·k_blocks = {_n * _kBlocks}");
            Array.Copy(zf, zp, zp.Length);
        }
        else Array.Fill(zp, 1 << (_bits - 1));
        return new NBitsWeights(bt.Data, sc, zp, blockOf, _k, _kBlocks, _blockSize, _blobSize, _bits);
    }

    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input(0);
        if (a.DataType is not (DataType.Float or DataType.Float16))
            throw new QuantSharpException($"A must be float or float16, got {DataTypes.Name(a.DataType)}");
        if (a.Rank < 1 || a.Shape[^1] != _k)
            throw new QuantSharpException($"A {ShapeUtil.Format(a.Shape)} must have last dimension K = {_k}");
        var w = _constWeights ?? Prepare(ctx.Input(1), ctx.Input(2), ctx.OptionalInput(3), ctx.OptionalInput(4));
        float[]? bias = ctx.OptionalInput(5) is { } bt ? QuantTensorOps.ToFloats(bt, "bias") : null;
        if (bias is not null && bias.Length != _n) throw new QuantSharpException($"bias has {bias.Length} elements, expected N = {_n}");
        var af = QuantTensorOps.ToFloats(a, "A");
        int rows = a.Length / _k;
        int[] outShape = [.. a.Shape[..^1], _n];
        var yf = a.DataType == DataType.Float ? ctx.Output<float>(0, outShape).Data : new float[rows * _n];
        int n = _n, kk = _k;
        if (UsesInt4Kernel(w))
        {
            ComputeInt4(ctx, w, af, rows, bias, yf);
        }
        else
        {
            // Each weight row is dequantized once into a K-float scratch row and multiplied with every row of A,
            // so memory stays at the packed size and the dequantization cost is amortised over the rows of A.
            ctx.ParallelFor(n, Math.Max(1, 16384 / Math.Max(1, kk * Math.Max(1, rows))), (j0, j1) =>
            {
                var row = new float[kk];
                for (int j = j0; j < j1; j++)
                {
                    w.DequantizeRow(j, row);
                    float b = bias is null ? 0f : bias[j];
                    for (int m = 0; m < rows; m++)
                        yf[m * n + j] = Dot(af.AsSpan(m * kk, kk), row) + b;
                }
            });
        }
        if (a.DataType == DataType.Float16)
        {
            var yh = ctx.Output<Half>(0, outShape).Data;
            for (int i = 0; i < yf.Length; i++) yh[i] = (Half)yf[i];
        }
    }

    /// <summary>
    /// 4-bit weights in k order (no act-order g_idx) with a block size that is a multiple of 16 run through
    /// <see cref="Int4Gemv"/>, which unpacks the nibbles in registers; other cases dequantize a scratch row.
    /// </summary>
    private bool UsesInt4Kernel(NBitsWeights w)
        => _bits == 4 && w.BlockOf is null && Int4Gemv.SupportsBlockSize(_blockSize) && Int4Gemv.Best != Int4GemvIsa.Scalar;

    /// <summary>
    /// Y = A · dequant(B)ᵀ + bias with <see cref="Int4Gemv"/>: A is copied into rows of k_blocks · block_size floats,
    /// zero beyond K, so the padded last block needs no tail code; weight rows are split across threads.
    /// </summary>
    private void ComputeInt4(KernelContext ctx, NBitsWeights w, float[] af, int rows, float[]? bias, float[] yf)
    {
        int n = _n, kk = _k, kp = _kBlocks * _blockSize, kBlocks = _kBlocks, blockSize = _blockSize;
        float[] ap;
        if (kp == kk) ap = af;
        else
        {
            ap = new float[(long)rows * kp];
            for (int m = 0; m < rows; m++) Array.Copy(af, (long)m * kk, ap, (long)m * kp, kk);
        }
        var isa = Int4Gemv.Best;
        // About 64K multiply-adds per task so small matrices stay on one thread.
        ctx.ParallelFor(n, Math.Max(1, 65536 / Math.Max(1, kp * rows)), (j0, j1) =>
        {
            Int4Gemv.Multiply(ap, kp, rows, w.Codes, w.Scales, w.ZeroPoints, kBlocks, blockSize, j0, j1, yf, n, isa);
            if (bias is not null)
                for (int m = 0; m < rows; m++)
                    for (int j = j0; j < j1; j++) yf[m * n + j] += bias[j];
        });
    }

    /// <summary>Σ x·y in float32, Vector&lt;float&gt; lanes summed at the end (deterministic on a given machine).</summary>
    private static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        int j = 0;
        float sum = 0f;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<float>.Count)
        {
            var acc = Vector<float>.Zero;
            for (; j <= x.Length - Vector<float>.Count; j += Vector<float>.Count)
                acc += new Vector<float>(x.Slice(j)) * new Vector<float>(y.Slice(j));
            sum = Vector.Sum(acc);
        }
        for (; j < x.Length; j++) sum += x[j] * y[j];
        return sum;
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

/// <summary>
/// Validated MatMulNBits weight inputs: packed codes, per-(row, block) scale and zero point, and the block of each
/// k (null when it is k / block_size).
/// </summary>
internal sealed record NBitsWeights(byte[] Codes, float[] Scales, float[] ZeroPoints, int[]? BlockOf, int K, int KBlocks, int BlockSize, int BlobSize, int Bits)
{
    /// <summary>dst[k] = (code[n, k] − zero_point[n, block(k)]) · scale[n, block(k)].</summary>
    public void DequantizeRow(int n, Span<float> dst)
    {
        int rowBytes = KBlocks * BlobSize;
        var row = Codes.AsSpan(n * rowBytes, rowBytes);
        int p0 = n * KBlocks;
        if (BlockOf is { } blockOf)
        {
            for (int k = 0; k < K; k++)
            {
                int p = p0 + blockOf[k];
                dst[k] = (Code(row, k) - ZeroPoints[p]) * Scales[p];
            }
            return;
        }
        for (int blk = 0; blk < KBlocks; blk++)
        {
            int k0 = blk * BlockSize, k1 = Math.Min(K, k0 + BlockSize);
            float s = Scales[p0 + blk], z = ZeroPoints[p0 + blk];
            for (int k = k0; k < k1; k++) dst[k] = (Code(row, k) - z) * s;
        }
    }

    private int Code(ReadOnlySpan<byte> row, int k) => Bits switch
    {
        4 => (row[k >> 1] >> ((k & 1) << 2)) & 0xF,
        8 => row[k],
        _ => (row[k >> 2] >> ((k & 3) << 1)) & 0x3,
    };
}
