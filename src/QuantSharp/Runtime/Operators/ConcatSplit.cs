using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>Concat: joins the inputs along `axis` (default 1 in opset 1, required later; negative from 11).</summary>
[OnnxOperator("Concat", 1)]
public sealed class ConcatKernel : MovementKernel
{
    private long AxisAttr => Node.GetInt("axis", OpsetVersion < 4 ? 1 : long.MinValue) is long a && a != long.MinValue
        ? a : throw new QuantSharpException("Concat needs an 'axis' attribute");

    protected override void Run<T>(KernelContext ctx)
    {
        var inputs = new List<Tensor<T>>();
        for (int i = 0; i < ctx.InputCount; i++)
            if (ctx.OptionalInput(i) is { } t) inputs.Add(t as Tensor<T> ?? throw new QuantSharpException($"Concat input {i} is {DataTypes.Name(t.DataType)}, unlike input 0"));
        var first = inputs[0];
        int rank = first.Rank;
        int axis = ShapeUtil.NormalizeAxis(AxisAttr, rank, "Concat axis");
        var outShape = (int[])first.Shape.Clone();
        long total = 0;
        foreach (var t in inputs)
        {
            if (t.Rank != rank) throw new QuantSharpException($"Concat inputs have ranks {rank} and {t.Rank}");
            for (int d = 0; d < rank; d++)
                if (d != axis && t.Shape[d] != first.Shape[d])
                    throw new QuantSharpException($"Concat inputs {ShapeUtil.Format(first.Shape)} and {ShapeUtil.Format(t.Shape)} differ outside axis {axis}");
            total += t.Shape[axis];
        }
        outShape[axis] = Movement.ToInt(total, "Concat axis length");
        var y = OutputLike<T>(ctx, 0, first, outShape);
        int outer = Movement.Product(outShape, 0, axis);
        int inner = Movement.Product(outShape, axis + 1, rank);
        int outRow = outShape[axis] * inner;
        int at = 0;
        foreach (var t in inputs)
        {
            int chunk = t.Shape[axis] * inner;
            if (chunk > 0)
                for (int o = 0; o < outer; o++) t.Data.AsSpan(o * chunk, chunk).CopyTo(y.Data.AsSpan(o * outRow + at, chunk));
            at += chunk;
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        TensorTypeInfo? first = null;
        for (int i = 0; i < ctx.InputCount; i++) if (ctx.InputType(i) is { } t) { first = t; break; }
        if (first is null) return;
        Dimension[]? dims = null;
        Dimension sum = 0;
        for (int i = 0; i < ctx.InputCount; i++)
        {
            if (!ctx.HasInput(i)) continue;
            var s = ctx.InputType(i)?.Shape;
            if (s is null) { sum = Dimension.Unknown; continue; }
            if (dims is null)
            {
                dims = (Dimension[])s.Clone();
                int ax = ShapeUtil.NormalizeAxis(AxisAttr, s.Length, "Concat axis");
                sum = s[ax];
                continue;
            }
            int a = ShapeUtil.NormalizeAxis(AxisAttr, s.Length, "Concat axis");
            sum = Movement.Add(sum, s[a]);
            for (int d = 0; d < dims.Length && d < s.Length; d++)
                if (d != a && !dims[d].IsKnown && s[d].IsKnown) dims[d] = s[d];
        }
        if (dims is null)
        {
            ctx.SetOutputType(0, Movement.Unranked(first.ElementType));
            return;
        }
        dims[ShapeUtil.NormalizeAxis(AxisAttr, dims.Length, "Concat axis")] = sum;
        ctx.SetOutputType(0, new TensorTypeInfo(first.ElementType, dims));
    }
}

/// <summary>
/// Split: cuts the input along `axis` into the outputs. Sizes come from the `split` input (opset 1 and 13+), the
/// `split` attribute (opset 1–12), `num_outputs` (18+, last chunk smaller when uneven), or equal parts.
/// </summary>
[OnnxOperator("Split", 1)]
public sealed class SplitKernel : MovementKernel
{
    private int[] Sizes(int dim, int outputs, Func<int, Tensor?> input)
    {
        long[]? split = null;
        if ((OpsetVersion < 2 || OpsetVersion >= 13) && input(1) is { } s) split = Movement.ToLongs(s, "Split split");
        else if (OpsetVersion < 13) split = Node.GetInts("split");
        if (split is not null && split.Length > 0)
        {
            if (split.Length != outputs) throw new QuantSharpException($"Split has {outputs} outputs but split [{string.Join(",", split)}] has {split.Length} entries");
            if (split.Sum() != dim || split.Any(v => v < 0)) throw new QuantSharpException($"Split sizes [{string.Join(",", split)}] do not add up to the axis length {dim}");
            return split.Select(v => (int)v).ToArray();
        }
        if (OpsetVersion >= 18 && Node.Attribute("num_outputs") is not null)
        {
            long n = Node.GetInt("num_outputs", outputs);
            if (n != outputs || n < 1) throw new QuantSharpException($"Split num_outputs {n} differs from the node's {outputs} outputs");
            // ceil(dim / n) per chunk; the last one takes what is left.
            int chunk = (int)((dim + n - 1) / n);
            var r = new int[outputs];
            int left = dim;
            for (int i = 0; i < outputs; i++)
            {
                r[i] = Math.Min(chunk, left);
                left -= r[i];
            }
            return r;
        }
        if (dim % outputs != 0) throw new QuantSharpException($"Split cannot cut axis length {dim} into {outputs} equal parts");
        return Enumerable.Repeat(dim / outputs, outputs).ToArray();
    }

    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        int axis = ShapeUtil.NormalizeAxis(Node.GetInt("axis", 0), x.Rank, "Split axis");
        int outputs = ctx.OutputCount;
        var sizes = Sizes(x.Shape[axis], outputs, ctx.OptionalInput);
        int outer = Movement.Product(x.Shape, 0, axis);
        int inner = Movement.Product(x.Shape, axis + 1, x.Rank);
        int inRow = x.Shape[axis] * inner;
        int at = 0;
        for (int k = 0; k < outputs; k++)
        {
            var shape = (int[])x.Shape.Clone();
            shape[axis] = sizes[k];
            int chunk = sizes[k] * inner;
            if (ctx.WantsOutput(k))
            {
                var y = OutputLike<T>(ctx, k, x, shape);
                if (chunk > 0)
                    for (int o = 0; o < outer; o++) x.Data.AsSpan(o * inRow + at, chunk).CopyTo(y.Data.AsSpan(o * chunk, chunk));
            }
            at += chunk;
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        int outputs = Node.Outputs.Count;
        if (t.Shape is null)
        {
            for (int k = 0; k < outputs; k++) ctx.SetOutputType(k, Movement.Unranked(t.ElementType));
            return;
        }
        int axis = ShapeUtil.NormalizeAxis(Node.GetInt("axis", 0), t.Shape.Length, "Split axis");
        bool splitIsInput = (OpsetVersion < 2 || OpsetVersion >= 13) && ctx.HasInput(1);
        var splitConst = splitIsInput ? ctx.ConstantInput(1) : null;
        int[]? sizes = null;
        if (splitConst is not null && splitConst.Length == outputs)
            sizes = Movement.ToLongs(splitConst, "Split split").Select(v => (int)v).ToArray();
        else if (t.Shape[axis].Value is long dim && !splitIsInput)
            sizes = Sizes((int)dim, outputs, _ => null);
        else if (!splitIsInput && OpsetVersion < 13 && Node.GetInts("split") is { } attr && attr.Length == outputs)
            sizes = attr.Select(v => (int)v).ToArray();
        for (int k = 0; k < outputs; k++)
        {
            var dims = (Dimension[])t.Shape.Clone();
            dims[axis] = sizes is null ? Dimension.Unknown : new Dimension(sizes[k]);
            ctx.SetOutputType(k, new TensorTypeInfo(t.ElementType, dims));
        }
    }
}
