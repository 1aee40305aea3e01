using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Pad: pads = [b1, b2, …, e1, e2, …] per axis (negative values crop). From the `paddings` (opset 1) or `pads`
/// (2–10) attribute, or the pads/constant_value inputs (11+) with an optional axes input (18+). Modes: constant,
/// reflect (mirror without repeating the edge), edge (repeat the edge), wrap (19+, circular).
/// </summary>
[OnnxOperator("Pad", 1)]
public sealed class PadKernel : MovementKernel
{
    private string Mode => Node.GetString("mode", "constant");

    /// <summary>Begin and end padding per axis of a rank-<paramref name="rank"/> input, or null when the pads are unknown.</summary>
    private (long[] Begin, long[] End)? Pads(int rank, Func<int, Tensor?> input)
    {
        long[]? pads;
        if (OpsetVersion < 11) pads = Node.GetInts(OpsetVersion < 2 ? "paddings" : "pads") ?? Node.GetInts("pads") ?? Node.GetInts("paddings");
        else pads = input(1) is { } p ? Movement.ToLongs(p, "Pad pads") : null;
        if (pads is null) return null;
        int[] axes;
        if (OpsetVersion >= 18 && Node.Input(3) is not null)
        {
            var a = input(3);
            if (a is null) return null;
            axes = Movement.NormalizeAxes(Movement.ToLongs(a, "Pad axes"), rank, "Pad axes");
        }
        else axes = Enumerable.Range(0, rank).ToArray();
        if (pads.Length != 2 * axes.Length)
            throw new QuantSharpException($"Pad pads has {pads.Length} entries; expected {2 * axes.Length} for {axes.Length} axes");
        var begin = new long[rank];
        var end = new long[rank];
        for (int i = 0; i < axes.Length; i++)
        {
            begin[axes[i]] = pads[i];
            end[axes[i]] = pads[i + axes.Length];
        }
        return (begin, end);
    }

    /// <summary>Source index along an axis for output position o (-1 = constant fill).</summary>
    internal static int[] AxisMap(string mode, int dim, int outLen, int begin)
    {
        var m = new int[outLen];
        for (int o = 0; o < outLen; o++)
        {
            long i = (long)o - begin;
            if (i >= 0 && i < dim) { m[o] = (int)i; continue; }
            switch (mode)
            {
                case "constant":
                    m[o] = -1;
                    break;
                case "edge":
                    m[o] = i < 0 ? 0 : dim - 1;
                    break;
                case "reflect":
                    if (dim == 1) { m[o] = 0; break; }
                    // Mirror about the first and last element: period 2(dim-1).
                    long period = 2L * (dim - 1);
                    long r = ((i % period) + period) % period;
                    m[o] = (int)(r < dim ? r : period - r);
                    break;
                case "wrap":
                    m[o] = (int)(((i % dim) + dim) % dim);
                    break;
                default:
                    throw new QuantSharpException($"Pad mode '{mode}' is not supported");
            }
        }
        return m;
    }

    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        var (begin, end) = Pads(x.Rank, ctx.OptionalInput) ?? throw new QuantSharpException("Pad needs its pads");
        string mode = Mode;
        if (mode == "wrap" && OpsetVersion < 19) throw new QuantSharpException($"Pad mode 'wrap' needs opset 19, model has {OpsetVersion}");
        T fill = default!;
        if (OpsetVersion < 11) fill = Movement.FromDouble<T>(Node.GetFloat("value", 0f));
        else if (ctx.OptionalInput(2) is { } cv) fill = Movement.ScalarAs<T>(cv, "Pad constant_value");
        else if (typeof(T) == typeof(string)) fill = (T)(object)string.Empty;
        var outShape = new int[x.Rank];
        var maps = new int[x.Rank][];
        for (int d = 0; d < x.Rank; d++)
        {
            long len = x.Shape[d] + begin[d] + end[d];
            if (len < 0) throw new QuantSharpException($"Pad pads [{begin[d]}, {end[d]}] remove more than axis {d}'s {x.Shape[d]} elements");
            outShape[d] = Movement.ToInt(len, "Pad output dimension");
            if (x.Shape[d] == 0 && mode != "constant" && outShape[d] > 0)
                throw new QuantSharpException($"Pad mode '{mode}' cannot pad the empty axis {d}");
            maps[d] = AxisMap(mode, x.Shape[d], outShape[d], (int)begin[d]);
        }
        var y = OutputLike<T>(ctx, 0, x, outShape);
        Movement.MapGather(ctx, x.Data, x.Shape, y.Data, outShape, maps, fill);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        if (t.Shape is null)
        {
            ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
            return;
        }
        var pads = Pads(t.Shape.Length, i => ctx.ConstantInput(i));
        var dims = new Dimension[t.Shape.Length];
        for (int d = 0; d < dims.Length; d++)
            dims[d] = pads is null ? Dimension.Unknown
                : pads.Value.Begin[d] == 0 && pads.Value.End[d] == 0 ? t.Shape[d]
                : Movement.Add(t.Shape[d], new Dimension(pads.Value.Begin[d] + pads.Value.End[d]));
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, dims));
    }
}
