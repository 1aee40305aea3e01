using System.Runtime.CompilerServices;

namespace QuantSharp.Llm.Formats;

/// <summary>
/// A weight matrix stored row by row in blocks of <typeparamref name="TBlock"/>. A row of Cols weights takes
/// ceil(Cols / Count) blocks; when Cols is not a multiple of Count the last block is partial: it is quantized from the
/// remaining weights only, its unused slots hold the code for 0 and are never read back. Its bytes are counted in
/// full, so <see cref="WeightMatrix.BitsPerWeight"/> is the honest storage cost (e.g. a 172-wide Q8_0 row:
/// 6 blocks · 34 bytes = 9.49 bits per weight instead of 8.5).
/// </summary>
public unsafe class BlockMatrix<TBlock> : WeightMatrix where TBlock : unmanaged, IWeightBlock<TBlock>
{
    protected readonly TBlock[] Data;

    public BlockMatrix(string name, int rows, int cols, TBlock[] blocks) : base(name, rows, cols)
    {
        BlocksPerRow = (cols + TBlock.Count - 1) / TBlock.Count;
        if (blocks.Length != (long)rows * BlocksPerRow) throw new ArgumentException($"{name}: {blocks.Length} blocks for [{rows},{cols}]");
        Data = blocks;
    }

    public int BlocksPerRow { get; }
    public ReadOnlySpan<TBlock> Blocks => Data;
    public override string TypeName => TBlock.TypeName;
    public override long Bytes => (long)Data.Length * sizeof(TBlock);

    /// <summary>Quantizes a row-major FP32 matrix block by block (the reference quantizer).</summary>
    public static TBlock[] QuantizeRows(WeightMatrix source)
    {
        int bpr = (source.Cols + TBlock.Count - 1) / TBlock.Count;
        var blocks = new TBlock[(long)source.Rows * bpr];
        var row = new float[source.Cols];
        for (int r = 0; r < source.Rows; r++)
        {
            source.DequantizeRow(r, row);
            for (int b = 0; b < bpr; b++)
            {
                int s = b * TBlock.Count;
                blocks[r * bpr + b] = TBlock.Quantize(row.AsSpan(s, Math.Min(TBlock.Count, source.Cols - s)));
            }
        }
        return blocks;
    }

    public override void DequantizeRow(int row, Span<float> destination)
    {
        Span<float> tmp = stackalloc float[TBlock.Count];
        for (int b = 0; b < BlocksPerRow; b++)
        {
            TBlock.Dequantize(Data[row * BlocksPerRow + b], tmp);
            int s = b * TBlock.Count, n = Math.Min(TBlock.Count, Cols - s);
            tmp[..n].CopyTo(destination.Slice(s, n));
        }
    }

    /// <summary>FP32-activation product: each block is dequantized and dotted with its slice of x.</summary>
    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int r0, int r1)
    {
        Span<float> tmp = stackalloc float[TBlock.Count];
        for (int r = r0; r < r1; r++)
        {
            float sum = 0;
            for (int b = 0; b < BlocksPerRow; b++)
            {
                TBlock.Dequantize(Data[r * BlocksPerRow + b], tmp);
                int s = b * TBlock.Count, n = Math.Min(TBlock.Count, Cols - s);
                sum += System.Numerics.Tensors.TensorPrimitives.Dot(tmp[..n], x.Slice(s, n));
            }
            y[r] = sum;
        }
    }
}

/// <summary>
/// A block matrix with a native int8-activation product (Q8_0, Q4_0, Q4_1): y[r] = Σ_blocks DotQ8(block, x-block),
/// summed in block order. <see cref="UseSimd"/> switches the integer part between the scalar reference and the
/// Vector256/Vector128 path; both give identical results (exact integer sums, same float combination order).
/// </summary>
public sealed unsafe class Q8DotMatrix<TBlock> : BlockMatrix<TBlock> where TBlock : unmanaged, IQ8DotBlock<TBlock>
{
    public Q8DotMatrix(string name, int rows, int cols, TBlock[] blocks) : base(name, rows, cols, blocks)
    {
        if (TBlock.Count != Q8Activations.Block) throw new ArgumentException($"{name}: int8-activation products need {Q8Activations.Block}-weight blocks");
    }

    public bool UseSimd { get; set; } = true;
    public override bool UsesQ8Activations => true;

    public override void MatVecQ8(Q8Activations x, Span<float> y, int r0, int r1)
    {
        if (x.Blocks != BlocksPerRow) throw new ArgumentException($"{Name}: activation has {x.Blocks} blocks, row has {BlocksPerRow}");
        bool simd = UseSimd;
        fixed (sbyte* qx = x.Qs)
        fixed (TBlock* blocks = Data)
        {
            for (int r = r0; r < r1; r++)
            {
                TBlock* row = blocks + (long)r * BlocksPerRow;
                float sum = 0;
                for (int b = 0; b < BlocksPerRow; b++) sum += TBlock.DotQ8(in row[b], qx + b * 32, x.D[b], x.Sums[b], simd);
                y[r] = sum;
            }
        }
    }
}

/// <summary>
/// Per-channel (per output row) symmetric INT8: w[r,c] = scale[r]·q[r,c], scale[r] = max_c |w[r,c]| / 127.
/// Storage: Cols bytes plus one fp32 scale per row. FP32 activations.
/// </summary>
public sealed class Int8ChannelMatrix : WeightMatrix
{
    private readonly sbyte[] _q;
    private readonly float[] _scale;

    public Int8ChannelMatrix(WeightMatrix source) : base(source.Name, source.Rows, source.Cols)
    {
        _q = new sbyte[(long)Rows * Cols];
        _scale = new float[Rows];
        var row = new float[Cols];
        for (int r = 0; r < Rows; r++)
        {
            source.DequantizeRow(r, row);
            float amax = 0;
            foreach (float v in row) amax = Math.Max(amax, Math.Abs(v));
            float s = amax / 127f, inv = s != 0 ? 1f / s : 0f;
            _scale[r] = s;
            for (int c = 0; c < Cols; c++) _q[(long)r * Cols + c] = (sbyte)Math.Clamp(MathF.Round(row[c] * inv, MidpointRounding.AwayFromZero), -127, 127);
        }
    }

    /// <summary>Wraps already quantized rows: w[r,c] = scales[r]·codes[r·cols + c].</summary>
    public Int8ChannelMatrix(string name, int rows, int cols, float[] scales, sbyte[] codes) : base(name, rows, cols)
    {
        if (scales.Length != rows || codes.Length != (long)rows * cols) throw new ArgumentException($"{name}: {scales.Length} scales and {codes.Length} codes for [{rows},{cols}]");
        _scale = scales;
        _q = codes;
    }

    public ReadOnlySpan<float> Scales => _scale;
    public ReadOnlySpan<sbyte> Codes => _q;

    public override string TypeName => "int8-channel";
    public override long Bytes => (long)Rows * Cols + 4L * Rows;

    public override void DequantizeRow(int row, Span<float> destination)
    {
        float s = _scale[row];
        var q = _q.AsSpan(row * Cols, Cols);
        for (int c = 0; c < Cols; c++) destination[c] = s * q[c];
    }

    /// <summary>y[r] = scale[r]·Σ q[r,c]·x[c] (the scale applied once per row).</summary>
    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
        {
            var q = _q.AsSpan(r * Cols, Cols);
            float sum = 0;
            for (int c = 0; c < Cols; c++) sum += q[c] * x[c];
            y[r] = _scale[r] * sum;
        }
    }
}
