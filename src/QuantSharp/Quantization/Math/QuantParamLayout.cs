using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Math;

/// <summary>How scale and zero-point tensors map onto the elements of the tensor they quantize.</summary>
public enum QuantGranularity
{
    /// <summary>One scale for the whole tensor (scale has one element).</summary>
    PerTensor,
    /// <summary>One scale per index along <see cref="QuantParamLayout.Axis"/> (scale is 1-D of that length).</summary>
    PerAxis,
    /// <summary>
    /// Scale has the tensor's rank, equal dimensions except along the axis, where it has ceil(D / block_size):
    /// element index d along the axis uses scale index d / block_size (the last block may be shorter).
    /// </summary>
    Blocked,
}

/// <summary>
/// The ONNX QuantizeLinear/DequantizeLinear granularity resolved against concrete shapes. The quantized tensor
/// is viewed as [Outer, AxisDim, Inner]; a "row" is one (outer, axis index) pair covering Inner contiguous
/// elements. Element (row, i) uses parameter index <c>RowParamBase(row) + i · ParamInnerStride</c>.
/// </summary>
public sealed record QuantParamLayout(QuantGranularity Granularity, int Axis, int Outer, int AxisDim, int Inner, int BlockSize, int ParamAxisDim)
{
    public int Rows => Outer * AxisDim;

    /// <summary>1 for blocked layouts (the parameters vary along the inner dims too), else 0.</summary>
    public int ParamInnerStride => Granularity == QuantGranularity.Blocked ? 1 : 0;

    /// <summary>Number of parameters (scales) this layout expects.</summary>
    public int ParamCount => Granularity switch
    {
        QuantGranularity.PerTensor => 1,
        QuantGranularity.PerAxis => AxisDim,
        _ => Outer * ParamAxisDim * Inner,
    };

    public int RowParamBase(int row)
    {
        switch (Granularity)
        {
            case QuantGranularity.PerTensor: return 0;
            case QuantGranularity.PerAxis: return row % AxisDim;
            default:
                int o = row / AxisDim, d = row % AxisDim;
                return (o * ParamAxisDim + d / BlockSize) * Inner;
        }
    }

    /// <summary>Parameter index of flat element <paramref name="index"/> (for reference code; kernels walk rows).</summary>
    public int ParamIndex(int index)
    {
        int row = index / Inner, i = index % Inner;
        return RowParamBase(row) + i * ParamInnerStride;
    }

    /// <summary>
    /// Resolves the granularity: block_size &gt; 0 → blocked along <paramref name="axis"/>; otherwise a scale
    /// with one element → per-tensor, a 1-D scale → per-axis (its length must equal the axis dimension).
    /// </summary>
    /// <param name="what">Names the tensors in messages, e.g. "y_scale".</param>
    public static QuantParamLayout Resolve(ReadOnlySpan<int> shape, ReadOnlySpan<int> paramShape, long axis, long blockSize, string what = "scale")
    {
        int length = ShapeUtil.Product(shape);
        int paramCount = ShapeUtil.Product(paramShape);
        if (blockSize < 0) throw new QuantSharpException($"block_size {blockSize} must not be negative");
        if (blockSize == 0)
        {
            if (paramCount == 1 && paramShape.Length <= 1)
                return new QuantParamLayout(QuantGranularity.PerTensor, 0, 1, 1, length, 0, 1);
            if (paramShape.Length != 1)
                throw new QuantSharpException($"{what} of shape {ShapeUtil.Format(paramShape)} must be a scalar or 1-D (per-axis) when block_size is 0");
            int a = ShapeUtil.NormalizeAxis(axis, shape.Length);
            if (paramShape[0] != shape[a])
                throw new QuantSharpException($"{what} has {paramShape[0]} elements but axis {axis} of {ShapeUtil.Format(shape)} has {shape[a]}");
            var (outer, inner) = Split(shape, a);
            return new QuantParamLayout(QuantGranularity.PerAxis, a, outer, shape[a], inner, 0, shape[a]);
        }
        int ax = ShapeUtil.NormalizeAxis(axis, shape.Length);
        if (paramShape.Length != shape.Length)
            throw new QuantSharpException($"blocked {what} of shape {ShapeUtil.Format(paramShape)} must have the rank of the input {ShapeUtil.Format(shape)}");
        if (blockSize > int.MaxValue) throw new QuantSharpException($"block_size {blockSize} is too large");
        for (int d = 0; d < shape.Length; d++)
        {
            long want = d == ax ? (shape[d] + blockSize - 1) / blockSize : shape[d];
            if (paramShape[d] != want)
                throw new QuantSharpException(
                    $"blocked {what} of shape {ShapeUtil.Format(paramShape)} does not match input {ShapeUtil.Format(shape)} with axis {axis} and block_size {blockSize} (dimension {d} should be {want})");
        }
        var (o2, i2) = Split(shape, ax);
        return new QuantParamLayout(QuantGranularity.Blocked, ax, o2, shape[ax], i2, (int)blockSize, paramShape[ax]);
    }

    private static (int Outer, int Inner) Split(ReadOnlySpan<int> shape, int axis)
    {
        int outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= shape[d];
        for (int d = axis + 1; d < shape.Length; d++) inner *= shape[d];
        return (outer, inner);
    }
}
