using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Math;

/// <summary>
/// Scales and zero points of a scheme, laid out as ONNX QuantizeLinear/DequantizeLinear expect them:
/// <see cref="ParamShape"/> is [] per tensor, [C] per axis, and the input's shape with the axis dimension
/// replaced by ceil(D / block_size) for blocked granularity (row-major). Record equality compares the arrays by
/// reference; compare <see cref="Scale"/> and <see cref="ZeroPoint"/> element-wise.
/// </summary>
public sealed record QuantParams(QuantScheme Scheme, float[] Scale, int[] ZeroPoint, int[] ParamShape)
{
    /// <summary>Smallest scale ever produced: the smallest normal float32, so that x / scale never divides by zero or a subnormal.</summary>
    public const float MinScale = 1.17549435E-38f;

    public int Count => Scale.Length;

    /// <summary>Per-tensor parameters.</summary>
    public static QuantParams PerTensor(QuantScheme scheme, float scale, int zeroPoint) => new(scheme, [scale], [zeroPoint], []);

    /// <summary>
    /// Scale and zero point of one group from its observed range [min, max]:
    /// <list type="number">
    /// <item>a non-finite bound (NaN, ±∞) is ignored, i.e. replaced by 0;</item>
    /// <item>the range is widened to contain 0 (min ≤ 0 ≤ max) so that 0 is exactly representable;</item>
    /// <item>symmetric (and binary/ternary): A = max(|min|, |max|); uniform codes get scale = 2A / (qmax − qmin),
    ///   zero point = round_half_even((qmin + qmax) / 2) (0 for signed, 128 for uint8, like ONNX Runtime);
    ///   binary and ternary codes get scale = A and zero point 0;</item>
    /// <item>asymmetric: scale = (max − min) / (qmax − qmin), zero point = clamp(round_half_even(qmin − min / scale), qmin, qmax);</item>
    /// <item>a zero range (max = min = 0 after widening: all values 0 or nothing finite observed) gives scale = 1 and the
    ///   zero point of the empty range (the middle for symmetric schemes, clamp(0, qmin, qmax) otherwise), so 0 still maps to 0;</item>
    /// <item>a positive range whose scale would underflow is given <see cref="MinScale"/>.</item>
    /// </list>
    /// Because the zero point is an integer, quantize(0) = zero point and dequantize gives exactly 0.
    /// </summary>
    public static (float Scale, int ZeroPoint) Compute(double min, double max, QuantScheme scheme)
    {
        if (!double.IsFinite(min)) min = 0;
        if (!double.IsFinite(max)) max = 0;
        if (min > max) throw new QuantSharpException($"quantization range min {min} exceeds max {max}");
        min = System.Math.Min(min, 0);
        max = System.Math.Max(max, 0);
        int qmin = scheme.QMin, qmax = scheme.QMax;
        if (scheme.Code != QuantCode.Uniform)
        {
            double a = System.Math.Max(-min, max);
            return (a == 0 ? 1f : ClampScale((float)a), 0);
        }
        if (scheme.Symmetric)
        {
            double a = System.Math.Max(-min, max);
            if (a == 0) return (1f, scheme.MidPoint);
            return (ClampScale((float)(2 * a / (qmax - qmin))), scheme.MidPoint);
        }
        if (max == min) return (1f, System.Math.Clamp(0, qmin, qmax));
        float scale = ClampScale((float)((max - min) / (qmax - qmin)));
        double zp = QuantMath.RoundHalfToEven(qmin - min / scale);
        return (scale, (int)System.Math.Clamp(zp, qmin, qmax));
    }

    private static float ClampScale(float s) => float.IsFinite(s) ? System.Math.Max(s, MinScale) : float.MaxValue;

    /// <summary>Per-tensor parameters from a range (see <see cref="Compute"/>).</summary>
    public static QuantParams FromRange(double min, double max, QuantScheme scheme)
    {
        var (s, z) = Compute(min, max, scheme);
        return PerTensor(scheme, s, z);
    }

    /// <summary>
    /// Parameters of any granularity computed from data: the finite min and max of every parameter group
    /// (whole tensor, slice along the axis, or block) go through <see cref="Compute"/>. Groups with no finite
    /// value get the zero-range result.
    /// </summary>
    public static QuantParams FromData(ReadOnlySpan<float> x, ReadOnlySpan<int> shape, QuantScheme scheme)
    {
        scheme.Validate();
        if (ShapeUtil.Product(shape) != x.Length)
            throw new QuantSharpException($"{x.Length} values do not match shape {ShapeUtil.Format(shape)}");
        int[] paramShape = ParamShapeFor(shape, scheme);
        var layout = LayoutFor(shape, paramShape, scheme);
        int n = layout.ParamCount;
        var mins = new double[n];
        var maxs = new double[n];
        Array.Fill(mins, double.PositiveInfinity);
        Array.Fill(maxs, double.NegativeInfinity);
        for (int row = 0, idx = 0; row < layout.Rows; row++)
        {
            int pb = layout.RowParamBase(row), ps = layout.ParamInnerStride;
            for (int i = 0; i < layout.Inner; i++, idx++)
            {
                float v = x[idx];
                if (!float.IsFinite(v)) continue;
                int p = pb + i * ps;
                if (v < mins[p]) mins[p] = v;
                if (v > maxs[p]) maxs[p] = v;
            }
        }
        var scale = new float[n];
        var zp = new int[n];
        for (int p = 0; p < n; p++)
        {
            bool empty = mins[p] > maxs[p];
            (scale[p], zp[p]) = Compute(empty ? 0 : mins[p], empty ? 0 : maxs[p], scheme);
        }
        return new QuantParams(scheme, scale, zp, paramShape);
    }

    /// <summary>Shape of the scale tensor for <paramref name="shape"/> under the scheme's granularity.</summary>
    public static int[] ParamShapeFor(ReadOnlySpan<int> shape, QuantScheme scheme)
    {
        switch (scheme.Granularity)
        {
            case QuantGranularity.PerTensor: return [];
            case QuantGranularity.PerAxis:
                return [shape[ShapeUtil.NormalizeAxis(scheme.Axis, shape.Length)]];
            default:
                int a = ShapeUtil.NormalizeAxis(scheme.Axis, shape.Length);
                var ps = shape.ToArray();
                ps[a] = (shape[a] + scheme.BlockSize - 1) / scheme.BlockSize;
                return ps;
        }
    }

    /// <summary>The element → parameter mapping of these parameters over a tensor of <paramref name="shape"/>.</summary>
    public QuantParamLayout Layout(ReadOnlySpan<int> shape) => LayoutFor(shape, ParamShape, Scheme);

    private static QuantParamLayout LayoutFor(ReadOnlySpan<int> shape, int[] paramShape, QuantScheme scheme)
    {
        if (scheme.Granularity == QuantGranularity.PerTensor)
            return new QuantParamLayout(QuantGranularity.PerTensor, 0, 1, 1, ShapeUtil.Product(shape), 0, 1);
        if (scheme.Granularity == QuantGranularity.PerAxis && paramShape.Length != 1)
            throw new QuantSharpException($"per-axis parameters need a 1-D scale, got {ShapeUtil.Format(paramShape)}");
        return QuantParamLayout.Resolve(shape, paramShape, scheme.Axis,
            scheme.Granularity == QuantGranularity.Blocked ? scheme.BlockSize : 0);
    }

    /// <summary>The scales as a float tensor of <see cref="ParamShape"/> (an ONNX y_scale / x_scale initializer).</summary>
    public Tensor<float> ScaleTensor() => new((float[])Scale.Clone(), (int[])ParamShape.Clone());

    /// <summary>The zero points as a tensor of the scheme's storage type and <see cref="ParamShape"/> (an ONNX y_zero_point).</summary>
    public Tensor ZeroPointTensor() =>
        QuantOps.ToStorage(new Tensor<int>((int[])ZeroPoint.Clone(), (int[])ParamShape.Clone()), Scheme);
}
