using System.Runtime.CompilerServices;
using QuantSharp.Llm.Kernels;

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

    /// <summary>For subclasses that hold the blocks in another layout (they override <see cref="Blocks"/> and the products).</summary>
    protected BlockMatrix(string name, int rows, int cols) : base(name, rows, cols)
    {
        BlocksPerRow = (cols + TBlock.Count - 1) / TBlock.Count;
        Data = [];
    }

    public int BlocksPerRow { get; }
    /// <summary>All blocks, row by row (the block structs' bytes are the ggml layout for Q8_0/Q4_0/Q4_1).</summary>
    public virtual ReadOnlySpan<TBlock> Blocks => Data;
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

/// <summary>A weight matrix held as <see cref="PackedQ8Weights"/> (Q8_0, Q4_0, Q4_1 of any block struct type).</summary>
public interface IPackedQ8Matrix
{
    PackedQ8Weights Packed { get; }
    /// <summary>The kernel path its products use.</summary>
    QKernelIsa Isa { get; set; }
}

/// <summary>
/// A Q8_0/Q4_0/Q4_1 matrix with a native int8-activation product, held in the kernels' packed layout
/// (<see cref="PackedQ8Weights"/>: 8-row groups, codes interleaved for vpdpbusd) instead of an array of block structs;
/// the block structs are rebuilt on demand by <see cref="GetBlock"/>. Products go through <see cref="QKernels"/> with
/// the instruction-set path <see cref="Isa"/> (default: the best one this CPU supports); every path gives identical floats.
/// </summary>
public sealed unsafe class Q8DotMatrix<TBlock> : BlockMatrix<TBlock>, IPackedQ8Matrix where TBlock : unmanaged, IQ8DotBlock<TBlock>
{
    public Q8DotMatrix(string name, int rows, int cols, TBlock[] blocks) : this(name, new PackedQ8Weights(PackedQ8Weights.FormatOf<TBlock>(), rows, cols))
    {
        if (blocks.Length != (long)rows * BlocksPerRow) throw new ArgumentException($"{name}: {blocks.Length} blocks for [{rows},{cols}]");
        for (int r = 0; r < rows; r++)
            for (int b = 0; b < BlocksPerRow; b++) SetBlock(r, b, blocks[(long)r * BlocksPerRow + b]);
    }

    /// <summary>Wraps packed weights (filled by the caller, e.g. a synthetic model generator).</summary>
    public Q8DotMatrix(string name, PackedQ8Weights packed) : base(name, packed.Rows, packed.Cols)
    {
        if (packed.Format != PackedQ8Weights.FormatOf<TBlock>()) throw new ArgumentException($"{name}: packed {packed.Format} weights for {TBlock.TypeName}");
        Packed = packed;
    }

    private void SetBlock(int r, int b, in TBlock block)
    {
        switch (Packed.Format)
        {
            case QFormat.Q8_0: Packed.SetBlock(r, b, System.Runtime.CompilerServices.Unsafe.As<TBlock, BlockQ8_0>(ref System.Runtime.CompilerServices.Unsafe.AsRef(in block))); break;
            case QFormat.Q4_0: Packed.SetBlock(r, b, System.Runtime.CompilerServices.Unsafe.As<TBlock, BlockQ4_0>(ref System.Runtime.CompilerServices.Unsafe.AsRef(in block))); break;
            default: Packed.SetBlock(r, b, System.Runtime.CompilerServices.Unsafe.As<TBlock, BlockQ4_1>(ref System.Runtime.CompilerServices.Unsafe.AsRef(in block))); break;
        }
    }

    public PackedQ8Weights Packed { get; }
    public override string TypeName => TBlock.TypeName;

    /// <summary>The block structs rebuilt from the packed form (a new array on every call: for export, not for products).</summary>
    public override ReadOnlySpan<TBlock> Blocks
    {
        get
        {
            var all = new TBlock[(long)Rows * BlocksPerRow];
            for (int r = 0; r < Rows; r++)
                for (int b = 0; b < BlocksPerRow; b++) all[(long)r * BlocksPerRow + b] = GetBlock(r, b);
            return all;
        }
    }
    public override long Bytes => Packed.Bytes;
    public override bool UsesQ8Activations => true;

    /// <summary>The kernel path used by the products (tests force each one).</summary>
    public QKernelIsa Isa { get; set; } = QKernels.Selected;

    /// <summary>Block <paramref name="block"/> of row <paramref name="row"/> in its block-struct form.</summary>
    public TBlock GetBlock(int row, int block) => Packed.GetBlock<TBlock>(row, block);

    public override void DequantizeRow(int row, Span<float> destination) => Packed.DequantizeRow(row, destination);

    /// <summary>FP32-activation product: each row dequantized and dotted with x (the comparison path).</summary>
    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int r0, int r1)
    {
        Span<float> tmp = Cols <= 8192 ? stackalloc float[Cols] : new float[Cols];
        for (int r = r0; r < r1; r++)
        {
            Packed.DequantizeRow(r, tmp);
            y[r] = System.Numerics.Tensors.TensorPrimitives.Dot(tmp, x[..Cols]);
        }
    }

    /// <summary>Rows [r0, r1) (r0 a multiple of 8 unless it is the whole tail) of W·x for one quantized token.</summary>
    public override void MatVecQ8(Q8Activations x, Span<float> y, int r0, int r1)
    {
        if (x.Blocks != BlocksPerRow) throw new ArgumentException($"{Name}: activation has {x.Blocks} blocks, row has {BlocksPerRow}");
        var batch = x.Batch;
        Span<float> tmp = stackalloc float[8];
        fixed (float* py = y)
        fixed (float* pt = tmp)
        {
            int g0 = (r0 + 7) / 8, g1 = r1 / 8;
            if (r1 == Rows) g1 = Packed.Groups;
            if (g0 < g1) QKernels.Gemm(Isa, Packed, batch, 0, 1, py, 0, g0, g1);
            // Rows of a group cut by the range: computed for the whole group, only the requested rows kept.
            for (int r = r0; r < Math.Min(r1, g0 * 8); r++) y[r] = GroupRow(batch, r, pt);
            for (int r = Math.Max(g1 * 8, r0); r < r1; r++) y[r] = GroupRow(batch, r, pt);
        }
    }

    private float GroupRow(Q8Batch x, int r, float* tmp)
    {
        int g = r / 8;
        QKernels.Gemm(Isa, Packed, x, 0, 1, tmp - g * 8, 0, g, g + 1);
        return tmp[r - g * 8];
    }

    /// <summary>Y[t, r] → y[t·ldy + r] for the quantized tokens [t0, t1) of <paramref name="x"/>, 8-row groups [g0, g1).</summary>
    public void Gemm(Q8Batch x, int t0, int t1, float* y, int ldy, int g0, int g1) => QKernels.Gemm(Isa, Packed, x, t0, t1, y, ldy, g0, g1);
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
