using System.Runtime.InteropServices;

namespace QuantSharp.Llm.Formats;

/// <summary>The 8-byte header of a per-tensor UINT8 matrix: fp32 scale, uint8 zero point, 3 padding bytes (always 0).</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct U8TensorHeader
{
    public float Scale;
    public byte Zero;
    public fixed byte Pad[3];

    /// <summary>
    /// The seed's min/max rule over the whole tensor: range [min(0, x_min), max(0, x_max)], scale = (max − min)/255,
    /// zero = clamp(round(−min/scale), 0, 255).
    /// </summary>
    public static U8TensorHeader FromRange(float min, float max)
    {
        min = Math.Min(min, 0);
        max = Math.Max(max, 0);
        float scale = (max - min) / 255f;
        return new U8TensorHeader { Scale = scale, Zero = (byte)Math.Clamp(scale != 0 ? MathF.Round(-min / scale, MidpointRounding.AwayFromZero) : 0, 0, 255) };
    }

    /// <summary>q = clamp(round(x/scale) + zero, 0, 255).</summary>
    public readonly byte Code(float x) => (byte)Math.Clamp((Scale != 0 ? (int)MathF.Round(x / Scale, MidpointRounding.AwayFromZero) : 0) + Zero, 0, 255);

    public readonly float Value(byte q) => Scale * (q - Zero);
}

/// <summary>
/// Per-tensor asymmetric UINT8 (the seed's scheme, kept for comparison): one <see cref="U8TensorHeader"/> for the whole
/// matrix and one byte per weight, w = scale·(q − zero). Storage Rows·Cols + 8 bytes. FP32 activations:
/// y[r] = scale·(Σ_c q[r,c]·x[c] − zero·Σ_c x[c]).
/// </summary>
public sealed class U8TensorMatrix : WeightMatrix
{
    private readonly byte[] _q;

    public U8TensorMatrix(string name, int rows, int cols, U8TensorHeader header, byte[] codes) : base(name, rows, cols)
    {
        if (codes.Length != (long)rows * cols) throw new ArgumentException($"{name}: {codes.Length} codes for [{rows},{cols}]");
        Header = header;
        _q = codes;
    }

    /// <summary>The reference quantizer: min/max over every weight, then round to nearest.</summary>
    public static U8TensorMatrix Quantize(WeightMatrix source)
    {
        int rows = source.Rows, cols = source.Cols;
        var values = new float[(long)rows * cols];
        for (int r = 0; r < rows; r++) source.DequantizeRow(r, values.AsSpan(r * cols, cols));
        float min = 0, max = 0;
        foreach (float v in values)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        var h = U8TensorHeader.FromRange(min, max);
        var q = new byte[values.Length];
        for (int i = 0; i < values.Length; i++) q[i] = h.Code(values[i]);
        return new U8TensorMatrix(source.Name, rows, cols, h, q);
    }

    public U8TensorHeader Header { get; }
    public ReadOnlySpan<byte> Codes => _q;
    public override string TypeName => "u8-tensor";
    public override long Bytes => (long)Rows * Cols + Marshal.SizeOf<U8TensorHeader>();

    public override void DequantizeRow(int row, Span<float> destination)
    {
        var q = _q.AsSpan(row * Cols, Cols);
        for (int c = 0; c < Cols; c++) destination[c] = Header.Value(q[c]);
    }

    public override void MatVec(ReadOnlySpan<float> x, Span<float> y, int r0, int r1)
    {
        float sx = 0;
        for (int c = 0; c < Cols; c++) sx += x[c];
        for (int r = r0; r < r1; r++)
        {
            var q = _q.AsSpan(r * Cols, Cols);
            float sum = 0;
            for (int c = 0; c < Cols; c++) sum += q[c] * x[c];
            y[r] = Header.Scale * (sum - Header.Zero * sx);
        }
    }
}
