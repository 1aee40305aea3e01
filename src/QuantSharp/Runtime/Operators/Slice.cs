using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Slice: starts/ends/axes are attributes in opset 1–9 and inputs (with steps) from 10. Negative starts/ends count
/// from the end; they are clamped to [0, dim] for positive steps and [-1, dim-1] (end) / [0, dim-1] (start) for
/// negative steps, so the output length along an axis is max(0, ceil((end - start) / step)).
/// </summary>
[OnnxOperator("Slice", 1)]
public sealed class SliceKernel : MovementKernel
{
    internal readonly record struct AxisSlice(int Start, int Step, int Count);

    /// <summary>Clamped start and element count along one axis of length <paramref name="dim"/>.</summary>
    internal static AxisSlice Resolve(long dim, long start, long end, long step)
    {
        if (step == 0) throw new QuantSharpException("Slice step must not be 0");
        if (step == long.MinValue) step = long.MinValue + 1;
        if (start < 0) start += dim;
        if (end < 0) end += dim;
        long count;
        if (step > 0)
        {
            start = Math.Clamp(start, 0, dim);
            end = Math.Clamp(end, 0, dim);
            count = end <= start ? 0 : (end - start - 1) / step + 1;
        }
        else
        {
            start = Math.Max(0, Math.Min(start, dim - 1));
            end = Math.Max(-1, Math.Min(end, dim - 1));
            count = start <= end ? 0 : (start - end - 1) / -step + 1;
        }
        if (dim == 0) count = 0;
        if (count == 0) start = 0;
        return new AxisSlice((int)start, (int)Math.Clamp(step, int.MinValue, int.MaxValue), (int)count);
    }

    private (long[] Starts, long[] Ends, long[]? Axes, long[]? Steps)? Params(Func<int, Tensor?> input)
    {
        if (OpsetVersion < 10)
        {
            var s = Node.GetInts("starts") ?? throw new QuantSharpException("Slice-1 needs 'starts'");
            var e = Node.GetInts("ends") ?? throw new QuantSharpException("Slice-1 needs 'ends'");
            return (s, e, Node.GetInts("axes"), null);
        }
        var st = input(1);
        var en = input(2);
        if (st is null || en is null) return null;
        return (Movement.ToLongs(st, "Slice starts"), Movement.ToLongs(en, "Slice ends"),
            input(3) is { } a ? Movement.ToLongs(a, "Slice axes") : null,
            input(4) is { } p ? Movement.ToLongs(p, "Slice steps") : null);
    }

    /// <summary>Normalised axes and steps, checked against the starts' length.</summary>
    private static (int[] Axes, long[] Steps) AxesAndSteps(long[] starts, long[] ends, long[]? axes, long[]? steps, int rank)
    {
        if (ends.Length != starts.Length) throw new QuantSharpException($"Slice starts ({starts.Length}) and ends ({ends.Length}) differ in length");
        var ax = axes is null ? Enumerable.Range(0, starts.Length).ToArray() : Movement.NormalizeAxes(axes, rank, "Slice axes");
        if (ax.Length != starts.Length) throw new QuantSharpException($"Slice axes ({ax.Length}) and starts ({starts.Length}) differ in length");
        var sp = steps ?? Enumerable.Repeat(1L, starts.Length).ToArray();
        if (sp.Length != starts.Length) throw new QuantSharpException($"Slice steps ({sp.Length}) and starts ({starts.Length}) differ in length");
        foreach (int a in ax) if (a >= rank) throw new QuantSharpException($"Slice axis {a} is out of range for rank {rank}");
        return (ax, sp);
    }

    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        var (starts, ends, axesIn, stepsIn) = Params(ctx.OptionalInput) ?? throw new QuantSharpException("Slice needs starts and ends");
        var (axes, steps) = AxesAndSteps(starts, ends, axesIn, stepsIn, x.Rank);
        var maps = new int[x.Rank][];
        var outShape = (int[])x.Shape.Clone();
        for (int d = 0; d < x.Rank; d++) maps[d] = Movement.Range(x.Shape[d]);
        for (int i = 0; i < axes.Length; i++)
        {
            int d = axes[i];
            var s = Resolve(x.Shape[d], starts[i], ends[i], steps[i]);
            outShape[d] = s.Count;
            var m = new int[s.Count];
            for (int k = 0; k < s.Count; k++) m[k] = s.Start + k * s.Step;
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
        int rank = t.Shape.Length;
        var p = Params(i => ctx.ConstantInput(i));
        bool axesMissing = OpsetVersion >= 10 && ctx.HasInput(3) && ctx.ConstantInput(3) is null;
        bool stepsMissing = OpsetVersion >= 10 && ctx.HasInput(4) && ctx.ConstantInput(4) is null;
        if (p is null || axesMissing || stepsMissing)
        {
            // Values unknown: only the axes named by a constant `axes` input change; without it any may.
            var dims = (Dimension[])t.Shape.Clone();
            long[]? axesOnly = OpsetVersion >= 10 ? Movement.ConstLongs(ctx, 3) : null;
            if (axesOnly is not null)
                foreach (int a in Movement.NormalizeAxes(axesOnly, rank, "Slice axes")) dims[a] = Dimension.Unknown;
            else for (int d = 0; d < rank; d++) dims[d] = Dimension.Unknown;
            ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, dims));
            return;
        }
        var (starts, ends, axesIn, stepsIn) = p.Value;
        var (axes, steps) = AxesAndSteps(starts, ends, axesIn, stepsIn, rank);
        var outDims = (Dimension[])t.Shape.Clone();
        for (int i = 0; i < axes.Length; i++)
        {
            int d = axes[i];
            outDims[d] = t.Shape[d].Value is long dim ? new Dimension(Resolve(dim, starts[i], ends[i], steps[i]).Count) : Dimension.Unknown;
        }
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, outDims));
    }
}
