using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>Shape: the input's dimensions as a 1-D int64 tensor, restricted to [start, end) from opset 15 (clamped, negative from the end).</summary>
[OnnxOperator("Shape", 1)]
public sealed class ShapeKernel : OpKernel
{
    /// <summary>The clamped [start, end) range of dimensions reported for a rank-<paramref name="rank"/> input.</summary>
    internal (int Start, int End) Range(int rank)
    {
        if (OpsetVersion < 15) return (0, rank);
        long s = Node.GetInt("start", 0);
        long e = Node.GetInt("end", long.MaxValue);
        if (s < 0) s += rank;
        if (e < 0) e += rank;
        s = Math.Clamp(s, 0, rank);
        e = Math.Clamp(e, 0, rank);
        return ((int)s, (int)Math.Max(s, e));
    }

    /// <summary>The output for an input of shape <paramref name="shape"/>.</summary>
    internal Tensor<long> Evaluate(int[] shape)
    {
        var (s, e) = Range(shape.Length);
        var r = new long[e - s];
        for (int i = s; i < e; i++) r[i - s] = shape[i];
        return new Tensor<long>(r, [r.Length]);
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var (s, e) = Range(x.Rank);
        var y = ctx.Output<long>(0, [e - s]);
        for (int i = s; i < e; i++) y.Data[i - s] = x.Shape[i];
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var t = ctx.InputType(0);
        if (t?.Shape is null)
        {
            ctx.SetOutputType(0, new TensorTypeInfo(DataType.Int64, [Dimension.Unknown]));
            return;
        }
        var (s, e) = Range(t.Shape.Length);
        ctx.SetOutputType(0, DataType.Int64, [e - s]);
    }
}

/// <summary>Size: the input's element count as an int64 scalar.</summary>
[OnnxOperator("Size", 1)]
public sealed class SizeKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var y = ctx.Output<long>(0, []);
        y.Data[0] = ctx.Input(0).Length;
    }

    public override void InferTypes(TypeInferenceContext ctx) => ctx.SetOutputType(0, DataType.Int64, []);
}
