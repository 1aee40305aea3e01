using System.Numerics.Tensors;

namespace QuantSharp.Llm.HuggingFace;

/// <summary>
/// A [Rows, Cols] matrix read in place from a memory-mapped safetensors tensor of F32, F16 or BF16, optionally with
/// its rows reordered: row r of this matrix is stored row <c>rowMap[r]</c> (the q/k permutation between Hugging Face's
/// rotate-half RoPE layout and the interleaved layout <see cref="LlamaDecoder"/> uses). Products convert one stored row
/// to FP32 at a time, so half-precision checkpoints keep their 2-byte size in memory.
/// </summary>
public sealed unsafe class MappedMatrix : WeightMatrix
{
    private readonly byte* _data;
    private readonly int[]? _rowMap;
    // Keeps the mapping alive.
    private readonly SafetensorsFile _owner;
    [ThreadStatic] private static float[]? t_row;

    public MappedMatrix(string name, int rows, int cols, SafetensorsFile owner, SafetensorInfo tensor, int[]? rowMap = null) : base(name, rows, cols)
    {
        if (tensor.Elements != (long)rows * cols) throw new ArgumentException($"{name}: tensor {tensor.Name} has {tensor.Elements} values for [{rows},{cols}]");
        if (rowMap is not null && rowMap.Length != rows) throw new ArgumentException($"{name}: row map of {rowMap.Length} for {rows} rows");
        _owner = owner;
        _data = owner.Pointer(tensor);
        Dtype = tensor.Dtype;
        _rowMap = rowMap;
    }

    public SafetensorsDtype Dtype { get; }
    public override string TypeName => Dtype switch { SafetensorsDtype.F32 => "f32", SafetensorsDtype.F16 => "f16", _ => "bf16" };
    public override long Bytes => (long)Rows * Cols * SafetensorsFile.ElementSize(Dtype);

    private byte* RowPointer(int r) => _data + (long)(_rowMap is null ? r : _rowMap[r]) * Cols * SafetensorsFile.ElementSize(Dtype);

    public override void DequantizeRow(int row, Span<float> destination)
    {
        GC.KeepAlive(_owner);
        SafetensorsFile.ConvertToSingle(RowPointer(row), Dtype, destination[..Cols]);
    }

    /// <summary>y[r] = Σ_c W[r,c]·x[c]: F32 rows are dotted in place, half rows converted to FP32 first.</summary>
    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int r0, int r1)
    {
        GC.KeepAlive(_owner);
        if (Dtype == SafetensorsDtype.F32)
        {
            for (int r = r0; r < r1; r++) y[r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(RowPointer(r), Cols), x[..Cols]);
            return;
        }
        var buf = t_row is { } b && b.Length >= Cols ? b : t_row = new float[Cols];
        var row = buf.AsSpan(0, Cols);
        for (int r = r0; r < r1; r++)
        {
            SafetensorsFile.ConvertToSingle(RowPointer(r), Dtype, row);
            y[r] = TensorPrimitives.Dot(row, x[..Cols]);
        }
    }
}
