using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators.Quantization;

/// <summary>
/// DynamicQuantizeLinear (opset 11), uint8 only, all arithmetic in float32:
/// <code>
/// rmin = min(0, min(x)), rmax = max(0, max(x))
/// y_scale = (rmax − rmin) / 255
/// y_zero_point = round_half_even(clip(0 − rmin / y_scale, 0, 255))
/// y = saturate(round_half_even(x / y_scale) + y_zero_point)
/// </code>
/// When the range is empty (x all zero, or empty) the scale is taken as 1 (as ONNX Runtime does) so that the
/// zero point is 0 and every code is 0 instead of dividing 0 by 0. NaN elements are ignored by min/max.
/// </summary>
[OnnxOperator("DynamicQuantizeLinear", 11)]
public sealed class DynamicQuantizeLinearKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input<float>(0).Data;
        var (scale, zp) = ComputeParameters(x);
        var y = ctx.Output<byte>(0, (int[])ctx.Input(0).Shape.Clone()).Data;
        ctx.ParallelFor(x.Length, 16384, (start, end) =>
        {
            for (int i = start; i < end; i++)
                y[i] = (byte)QuantMath.Quantize(x[i], scale, zp, 0, 255);
        });
        if (ctx.WantsOutput(1)) ctx.Output<float>(1, []).Data[0] = scale;
        if (ctx.WantsOutput(2)) ctx.Output<byte>(2, []).Data[0] = (byte)zp;
    }

    /// <summary>The uint8 scale and zero point DynamicQuantizeLinear derives from <paramref name="x"/>.</summary>
    public static (float Scale, int ZeroPoint) ComputeParameters(ReadOnlySpan<float> x)
    {
        float min = 0f, max = 0f;
        foreach (float v in x)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
        float scale = (max - min) / 255f;
        if (scale == 0f) scale = 1f;
        float initial = 0f - min / scale;
        int zp = (int)QuantMath.RoundHalfToEven(Math.Clamp(initial, 0f, 255f));
        return (scale, zp);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        ctx.SetOutputType(0, new TensorTypeInfo(DataType.UInt8, ctx.InputType(0)?.Shape));
        ctx.SetOutputType(1, DataType.Float, []);
        ctx.SetOutputType(2, DataType.UInt8, []);
    }
}
