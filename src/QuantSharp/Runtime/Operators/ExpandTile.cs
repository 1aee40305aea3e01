using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>Expand: broadcasts the input against the `shape` input (bidirectional: the output is broadcast(input.shape, shape)).</summary>
[OnnxOperator("Expand", 8)]
public sealed class ExpandKernel : MovementKernel
{
    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        var target = Movement.ToLongs(ctx.Input(1), "Expand shape");
        var shape = target.Select(v => v < 0 ? throw new QuantSharpException($"Expand shape [{string.Join(",", target)}] has a negative dimension") : Movement.ToInt(v, "Expand dimension")).ToArray();
        var outShape = ShapeUtil.Broadcast(x.Shape, shape);
        var y = OutputLike<T>(ctx, 0, x, outShape);
        int rank = outShape.Length;
        var maps = new int[rank][];
        for (int d = 0; d < rank; d++)
        {
            int k = d - (rank - x.Rank);
            // Input axes of size 1 (or missing in front) repeat element 0.
            maps[d] = k < 0 ? new int[outShape[d]] : x.Shape[k] == 1 ? new int[outShape[d]] : Movement.Range(outShape[d]);
        }
        var srcShape = new int[rank];
        for (int d = 0; d < rank; d++) srcShape[d] = d < rank - x.Rank ? 1 : x.Shape[d - (rank - x.Rank)];
        Movement.MapGather(ctx, x.Data, srcShape, y.Data, outShape, maps, default!);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        var target = Movement.ConstLongs(ctx, 1);
        if (target is null || t.Shape is null)
        {
            if (t.Shape is not null && ctx.InputType(1)?.Shape is [{ Value: long n }])
                ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, Enumerable.Repeat(Dimension.Unknown, Math.Max((int)n, t.Shape.Length)).ToArray()));
            else ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
            return;
        }
        int rank = Math.Max(target.Length, t.Shape.Length);
        var dims = new Dimension[rank];
        for (int d = 0; d < rank; d++)
        {
            Dimension a = d < rank - t.Shape.Length ? new Dimension(1) : t.Shape[d - (rank - t.Shape.Length)];
            long b = d < rank - target.Length ? 1 : target[d - (rank - target.Length)];
            if (b == 1) dims[d] = a;
            else if (a.Value is long av && av != 1 && av != b)
                throw new QuantSharpException($"Expand cannot broadcast dimension {av} to {b}");
            else dims[d] = new Dimension(b);
        }
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, dims));
    }
}

/// <summary>
/// Tile: out[i] = in[i mod dim] per axis, the output being repeats[d] times larger. Opset 6+ takes a 1-D `repeats`
/// input; opset 1 takes `tiles` (a count) and `axis` inputs.
/// </summary>
[OnnxOperator("Tile", 1)]
public sealed class TileKernel : MovementKernel
{
    private long[]? Repeats(int rank, Func<int, Tensor?> input)
    {
        if (OpsetVersion < 6)
        {
            var tiles = input(1);
            var axis = input(2);
            if (tiles is null || axis is null) return null;
            var r = Enumerable.Repeat(1L, rank).ToArray();
            r[ShapeUtil.NormalizeAxis(Movement.ToLongs(axis, "Tile axis")[0], rank, "Tile axis")] = Movement.ToLongs(tiles, "Tile tiles")[0];
            return r;
        }
        var rep = input(1);
        if (rep is null) return null;
        var reps = Movement.ToLongs(rep, "Tile repeats");
        if (reps.Length != rank) throw new QuantSharpException($"Tile repeats has {reps.Length} entries for a rank-{rank} input");
        if (reps.Any(v => v < 0)) throw new QuantSharpException($"Tile repeats [{string.Join(",", reps)}] has a negative entry");
        return reps;
    }

    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        var reps = Repeats(x.Rank, ctx.OptionalInput) ?? throw new QuantSharpException("Tile needs its repeats input");
        var outShape = new int[x.Rank];
        var maps = new int[x.Rank][];
        for (int d = 0; d < x.Rank; d++)
        {
            outShape[d] = Movement.ToInt(x.Shape[d] * reps[d], "Tile output dimension");
            var m = new int[outShape[d]];
            for (int i = 0; i < m.Length; i++) m[i] = i % x.Shape[d];
            maps[d] = m;
        }
        var y = OutputLike<T>(ctx, 0, x, outShape);
        Movement.MapGather(ctx, x.Data, x.Shape, y.Data, outShape, maps, default!);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        if (t.Shape is null)
        {
            ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
            return;
        }
        long[]? reps;
        try { reps = Repeats(t.Shape.Length, i => ctx.ConstantInput(i)); }
        catch (QuantSharpException) { reps = null; }
        var dims = new Dimension[t.Shape.Length];
        for (int d = 0; d < dims.Length; d++)
            dims[d] = reps is null ? Dimension.Unknown : reps[d] == 1 ? t.Shape[d] : Movement.Mul(t.Shape[d], new Dimension(reps[d]));
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, dims));
    }
}
