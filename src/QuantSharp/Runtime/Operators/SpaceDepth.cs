using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// DepthToSpace on NCHW with block b: DCR mode views X as [N, b, b, C/b², H, W] and permutes to
/// [N, C/b², H, b, W, b]; CRD mode (opset 11+) views it as [N, C/b², b, b, H, W] and permutes to [N, C/b², H, b, W, b].
/// </summary>
[OnnxOperator("DepthToSpace", 1)]
public sealed class DepthToSpaceKernel : MovementKernel
{
    private int Block => Movement.ToInt(Node.GetInt("blocksize", 0), "DepthToSpace blocksize");

    private bool Crd => OpsetVersion >= 11 && Node.GetString("mode", "DCR") == "CRD";

    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        if (x.Rank != 4) throw new QuantSharpException($"DepthToSpace needs a 4-D input, got {ShapeUtil.Format(x.Shape)}");
        int b = Block, n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        if (b < 1 || c % (b * b) != 0) throw new QuantSharpException($"DepthToSpace channels {c} are not a multiple of blocksize² ({b}²)");
        int oc = c / (b * b);
        var y = OutputLike<T>(ctx, 0, x, [n, oc, h * b, w * b]);
        if (Crd) TransposeKernel.Transpose(ctx, x.Data, [n, oc, b, b, h, w], [0, 1, 4, 2, 5, 3], y.Data);
        else TransposeKernel.Transpose(ctx, x.Data, [n, b, b, oc, h, w], [0, 3, 4, 1, 5, 2], y.Data);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        if (t.Shape is not { Length: 4 } s)
        {
            ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, [Dimension.Unknown, Dimension.Unknown, Dimension.Unknown, Dimension.Unknown]));
            return;
        }
        long b = Block;
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType,
            [s[0], s[1].Value is long c ? new Dimension(c / (b * b)) : Dimension.Unknown, Movement.Mul(s[2], new Dimension(b)), Movement.Mul(s[3], new Dimension(b))]));
    }
}

/// <summary>SpaceToDepth on NCHW with block b: X viewed as [N, C, H/b, b, W/b, b] is permuted to [N, b, b, C, H/b, W/b].</summary>
[OnnxOperator("SpaceToDepth", 1)]
public sealed class SpaceToDepthKernel : MovementKernel
{
    private int Block => Movement.ToInt(Node.GetInt("blocksize", 0), "SpaceToDepth blocksize");

    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        if (x.Rank != 4) throw new QuantSharpException($"SpaceToDepth needs a 4-D input, got {ShapeUtil.Format(x.Shape)}");
        int b = Block, n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        if (b < 1 || h % b != 0 || w % b != 0) throw new QuantSharpException($"SpaceToDepth spatial size {h}x{w} is not a multiple of blocksize {b}");
        var y = OutputLike<T>(ctx, 0, x, [n, c * b * b, h / b, w / b]);
        TransposeKernel.Transpose(ctx, x.Data, [n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4], y.Data);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        if (t.Shape is not { Length: 4 } s)
        {
            ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, [Dimension.Unknown, Dimension.Unknown, Dimension.Unknown, Dimension.Unknown]));
            return;
        }
        long b = Block;
        Dimension Div(Dimension d) => d.Value is long v ? new Dimension(v / b) : Dimension.Unknown;
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, [s[0], Movement.Mul(s[1], new Dimension(b * b)), Div(s[2]), Div(s[3])]));
    }
}

/// <summary>
/// GatherND (opset 11, batch_dims from 12): with indices of shape [..., k], each index tuple selects
/// data[b.., i1..ik] (a slice of the remaining dimensions); the first batch_dims dimensions are shared by data
/// and indices. Negative indices count from the end.
/// </summary>
[OnnxOperator("GatherND", 11)]
public sealed class GatherNDKernel : MovementKernel
{
    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        var idxT = ctx.Input(1);
        var idx = Movement.ToLongs(idxT, "GatherND indices");
        int batchDims = (int)Node.GetInt("batch_dims", 0);
        int q = idxT.Rank, r = x.Rank;
        if (q < 1) throw new QuantSharpException("GatherND indices must have rank ≥ 1");
        int k = idxT.Shape[q - 1];
        if (batchDims < 0 || batchDims >= Math.Min(q, r) || k > r - batchDims)
            throw new QuantSharpException($"GatherND indices {ShapeUtil.Format(idxT.Shape)} do not fit data {ShapeUtil.Format(x.Shape)} with batch_dims {batchDims}");
        for (int d = 0; d < batchDims; d++)
            if (idxT.Shape[d] != x.Shape[d]) throw new QuantSharpException($"GatherND batch dimension {d} differs: {idxT.Shape[d]} vs {x.Shape[d]}");
        var outShape = idxT.Shape[..(q - 1)].Concat(x.Shape[(batchDims + k)..]).ToArray();
        var y = OutputLike<T>(ctx, 0, x, outShape);
        int batch = Movement.Product(x.Shape, 0, batchDims);
        int slice = Movement.Product(x.Shape, batchDims + k, r);
        int perBatchData = Movement.Product(x.Shape, batchDims, r);
        int tuples = batch == 0 ? 0 : idx.Length / Math.Max(k, 1) / batch;
        if (k == 0) tuples = Movement.Product(idxT.Shape, batchDims, q - 1);
        var strides = ShapeUtil.Strides(x.Shape[batchDims..]);
        for (int bi = 0; bi < batch; bi++)
            for (int t = 0; t < tuples; t++)
            {
                int off = bi * perBatchData;
                for (int j = 0; j < k; j++)
                {
                    int dim = x.Shape[batchDims + j];
                    long v = idx[(bi * tuples + t) * k + j];
                    if (v < 0) v += dim;
                    if (v < 0 || v >= dim) throw new QuantSharpException($"GatherND index {idx[(bi * tuples + t) * k + j]} is out of range for axis length {dim}");
                    off += (int)v * strides[j];
                }
                x.Data.AsSpan(off, slice).CopyTo(y.Data.AsSpan((bi * tuples + t) * slice, slice));
            }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        var idx = ctx.InputType(1)?.Shape;
        int batchDims = (int)Node.GetInt("batch_dims", 0);
        if (t.Shape is null || idx is not { Length: > 0 } || idx[^1].Value is not long k)
        {
            ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
            return;
        }
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, idx[..^1].Concat(t.Shape[(batchDims + (int)k)..]).ToArray()));
    }
}
