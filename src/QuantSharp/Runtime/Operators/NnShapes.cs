using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>Shape-inference helpers shared by the convolution, pooling, GEMM and normalisation kernels.</summary>
internal static class NnShapes
{
    /// <summary>
    /// Output type of a sliding-window op whose input X is [N, C, spatial…]. Unknown N or C do not prevent
    /// inferring the spatial output (they are substituted by <paramref name="batchStandIn"/>/<paramref name="channelStandIn"/>
    /// for the computation and reported as in X); unknown spatial dims make every spatial output unknown.
    /// </summary>
    public static void InferWindow(TypeInferenceContext ctx, int outputIndex, int channelStandIn,
        Func<int[], ConvGeometry> resolve, Dimension? outputChannels)
    {
        if (ctx.InputType(0) is not { } xt) return;
        if (xt.Shape is not { Length: >= 3 } xs)
        {
            ctx.SetOutputType(outputIndex, new TensorTypeInfo(xt.ElementType, null));
            return;
        }
        var dims = new Dimension[xs.Length];
        dims[0] = xs[0];
        dims[1] = outputChannels ?? xs[1];
        var concrete = new int[xs.Length];
        concrete[0] = 1;
        concrete[1] = xs[1].Value is long c ? (int)c : channelStandIn;
        bool spatialKnown = true;
        for (int d = 2; d < xs.Length; d++)
        {
            if (xs[d].Value is long v && v >= 0 && v <= int.MaxValue) concrete[d] = (int)v;
            else spatialKnown = false;
        }
        if (spatialKnown)
        {
            var g = resolve(concrete);
            for (int d = 2; d < xs.Length; d++) dims[d] = g.OutputSpatial[d - 2];
        }
        else
        {
            for (int d = 2; d < xs.Length; d++) dims[d] = Dimension.Unknown;
        }
        ctx.SetOutputType(outputIndex, new TensorTypeInfo(xt.ElementType, dims));
    }

    /// <summary>Output of rank X's rank with batch from X, the given channel dimension and unknown spatial dims.</summary>
    public static void InferWindowUnknown(TypeInferenceContext ctx, int outputIndex, Dimension channels)
    {
        if (ctx.InputType(0) is not { } xt) return;
        if (xt.Shape is not { Length: >= 3 } xs)
        {
            ctx.SetOutputType(outputIndex, new TensorTypeInfo(xt.ElementType, null));
            return;
        }
        var dims = new Dimension[xs.Length];
        dims[0] = xs[0];
        dims[1] = channels;
        for (int d = 2; d < dims.Length; d++) dims[d] = Dimension.Unknown;
        ctx.SetOutputType(outputIndex, new TensorTypeInfo(xt.ElementType, dims));
    }

    /// <summary>A shape known statically: from the declared type or from a constant input.</summary>
    public static int[]? KnownShape(TypeInferenceContext ctx, int i) =>
        ctx.InputType(i)?.ConcreteShape() ?? ctx.ConstantInput(i)?.Shape;

    /// <summary>Same type as input 0 for output <paramref name="outputIndex"/>.</summary>
    public static void SameAsInput(TypeInferenceContext ctx, int outputIndex = 0)
    {
        if (ctx.InputType(0) is { } t) ctx.SetOutputType(outputIndex, t);
    }

    public static Tensor<float> FloatInput(KernelContext ctx, int i, string op)
    {
        var t = ctx.Input(i);
        if (t is Tensor<float> f) return f;
        throw new QuantSharpException($"{op} input {i} is {DataTypes.Name(t.DataType)}; only float is supported");
    }
}
