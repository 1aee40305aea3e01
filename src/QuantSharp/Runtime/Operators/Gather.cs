using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Gather: out[a.., i.., b..] = data[a.., indices[i..], b..] along `axis`; output shape is
/// data[:axis] + indices.shape + data[axis+1:]. Negative indices count from the end (opset 11+ semantics, also
/// accepted earlier).
/// </summary>
[OnnxOperator("Gather", 1)]
public sealed class GatherKernel : MovementKernel
{
    internal static int[] Indices(Tensor idx, int dim, string op)
    {
        var raw = Movement.ToLongs(idx, $"{op} indices");
        var r = new int[raw.Length];
        for (int i = 0; i < raw.Length; i++)
        {
            long v = raw[i] < 0 ? raw[i] + dim : raw[i];
            if (v < 0 || v >= dim) throw new QuantSharpException($"{op} index {raw[i]} is out of range for axis length {dim}");
            r[i] = (int)v;
        }
        return r;
    }

    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        var idxT = ctx.Input(1);
        int axis = ShapeUtil.NormalizeAxis(Node.GetInt("axis", 0), x.Rank, "Gather axis");
        int dim = x.Shape[axis];
        var idx = Indices(idxT, dim, "Gather");
        var outShape = x.Shape[..axis].Concat(idxT.Shape).Concat(x.Shape[(axis + 1)..]).ToArray();
        var y = OutputLike<T>(ctx, 0, x, outShape);
        int outer = Movement.Product(x.Shape, 0, axis);
        int inner = Movement.Product(x.Shape, axis + 1, x.Rank);
        int n = idx.Length;
        if (inner == 0 || n == 0 || outer == 0) return;
        ctx.ParallelFor(outer * n, Math.Max(1, 4096 / inner), (start, end) =>
        {
            for (int w = start; w < end; w++)
            {
                int o = w / n, j = w % n;
                x.Data.AsSpan((o * dim + idx[j]) * inner, inner).CopyTo(y.Data.AsSpan(w * inner, inner));
            }
        });
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        var idx = ctx.InputType(1)?.Shape;
        if (t.Shape is null || idx is null)
        {
            ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
            return;
        }
        int axis = ShapeUtil.NormalizeAxis(Node.GetInt("axis", 0), t.Shape.Length, "Gather axis");
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, t.Shape[..axis].Concat(idx).Concat(t.Shape[(axis + 1)..]).ToArray()));
    }
}

/// <summary>
/// GatherElements: output has the indices' shape; out[i0..in] = data[i0.., indices[i0..in], ..in] with the index
/// replacing the coordinate along `axis`. Negative indices count from the end.
/// </summary>
[OnnxOperator("GatherElements", 11)]
public sealed class GatherElementsKernel : MovementKernel
{
    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        var idxT = ctx.Input(1);
        int rank = x.Rank;
        if (idxT.Rank != rank) throw new QuantSharpException($"GatherElements indices rank {idxT.Rank} differs from data rank {rank}");
        int axis = ShapeUtil.NormalizeAxis(Node.GetInt("axis", 0), rank, "GatherElements axis");
        for (int d = 0; d < rank; d++)
            if (d != axis && idxT.Shape[d] > x.Shape[d])
                throw new QuantSharpException($"GatherElements indices {ShapeUtil.Format(idxT.Shape)} exceed data {ShapeUtil.Format(x.Shape)} on axis {d}");
        var idx = GatherKernel.Indices(idxT, x.Shape[axis], "GatherElements");
        var y = OutputLike<T>(ctx, 0, x, (int[])idxT.Shape.Clone());
        if (y.Length == 0) return;
        var strides = ShapeUtil.Strides(x.Shape);
        var coord = new int[rank];
        for (int i = 0; i < idx.Length; i++)
        {
            int off = 0;
            for (int d = 0; d < rank; d++) off += (d == axis ? idx[i] : coord[d]) * strides[d];
            y.Data[i] = x.Data[off];
            for (int d = rank - 1; d >= 0; d--)
            {
                if (++coord[d] < idxT.Shape[d]) break;
                coord[d] = 0;
            }
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, ctx.InputType(1)?.Shape));
    }
}
