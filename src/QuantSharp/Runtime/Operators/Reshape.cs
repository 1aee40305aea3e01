using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>Helpers shared by the kernels that only change a tensor's shape (the data is copied as is).</summary>
internal static class ViewOps
{
    /// <summary>Output 0 = input 0's elements under <paramref name="shape"/> (a copy: buffers are never shared).</summary>
    public static void CopyAs(KernelContext ctx, Tensor x, int[] shape)
    {
        if (ShapeUtil.Product(shape) != x.Length)
            throw new QuantSharpException($"cannot view {ShapeUtil.Format(x.Shape)} as {ShapeUtil.Format(shape)}");
        var y = ctx.Output(0, x.DataType, shape);
        Array.Copy(x.Buffer, y.Buffer, x.Length);
    }

    /// <summary>
    /// Reshape's target: 0 copies the input dimension (unless <paramref name="allowZero"/>), -1 (at most one) is
    /// inferred so the element count is kept.
    /// </summary>
    public static int[] ResolveReshape(int[] input, long[] shape, bool allowZero)
    {
        var r = new int[shape.Length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            long s = shape[i];
            if (s == -1)
            {
                if (infer >= 0) throw new QuantSharpException($"reshape target [{string.Join(",", shape)}] has more than one -1");
                if (allowZero && Array.IndexOf(shape, 0L) >= 0)
                    throw new QuantSharpException($"reshape target [{string.Join(",", shape)}] has both -1 and 0 with allowzero=1");
                infer = i;
                continue;
            }
            if (s == 0 && !allowZero)
            {
                if (i >= input.Length)
                    throw new QuantSharpException($"reshape target [{string.Join(",", shape)}] copies dimension {i} of a rank-{input.Length} input");
                s = input[i];
            }
            if (s < 0) throw new QuantSharpException($"reshape target [{string.Join(",", shape)}] has invalid dimension {shape[i]}");
            r[i] = Movement.ToInt(s, "reshape dimension");
            known *= r[i];
        }
        long total = ShapeUtil.Product(input);
        if (infer >= 0)
        {
            if (known == 0 || total % known != 0)
                throw new QuantSharpException($"cannot reshape {ShapeUtil.Format(input)} to [{string.Join(",", shape)}]");
            r[infer] = (int)(total / known);
        }
        else if (known != total)
            throw new QuantSharpException($"cannot reshape {ShapeUtil.Format(input)} ({total} elements) to {ShapeUtil.Format(r)}");
        return r;
    }

    /// <summary>Reshape's output dimensions from the input's declared dimensions (symbolic where possible).</summary>
    public static Dimension[] InferReshape(Dimension[]? input, long[] shape, bool allowZero) =>
        InferReshape(input, shape.Select(v => new Dimension(v)).ToArray(), allowZero);

    /// <summary>
    /// Reshape over possibly symbolic dimensions: 0 copies the input dimension, -1 is the input's product over the
    /// other target dimensions, where equal symbols cancel; a single symbol left over with the known parts equal
    /// stays that symbol (e.g. [batch, 16, 5, 5] to [-1, 400] gives [batch, 400]).
    /// </summary>
    public static Dimension[] InferReshape(Dimension[]? input, Dimension[] target, bool allowZero)
    {
        var r = new Dimension[target.Length];
        int infer = -1;
        for (int i = 0; i < target.Length; i++)
        {
            var t = target[i];
            if (t.Value == -1) { infer = i; continue; }
            r[i] = t.Value == 0 && !allowZero ? (input is not null && i < input.Length ? input[i] : Dimension.Unknown) : t;
        }
        if (infer < 0) return r;
        r[infer] = Dimension.Unknown;
        if (input is null) return r;
        // A dimension copied by 0 cancels against itself, even when nothing is known about it.
        bool Copied(int i) => !allowZero && i < target.Length && i < input.Length && target[i].Value == 0;
        var symbols = new List<string>();
        long num = 1, den = 1;
        for (int i = 0; i < input.Length; i++)
        {
            var d = input[i];
            if (Copied(i)) continue;
            if (d.Value is long v) num *= v;
            else if (d.Symbol is string s) symbols.Add(s);
            else return r;
        }
        for (int i = 0; i < r.Length; i++)
        {
            if (i == infer || Copied(i)) continue;
            if (r[i].Value is long v) den *= v;
            else if (r[i].Symbol is string s && symbols.Remove(s)) { }
            else return r;
        }
        if (den <= 0 || num % den != 0) return r;
        if (symbols.Count == 0) r[infer] = new Dimension(num / den);
        else if (symbols.Count == 1 && num == den) r[infer] = new Dimension(null, symbols[0]);
        return r;
    }
}

/// <summary>Flatten: [d0..d(axis-1)] and [d(axis)..] become the two output dimensions (negative axis from opset 11).</summary>
[OnnxOperator("Flatten", 1)]
public sealed class FlattenKernel : OpKernel
{
    private int Axis(int rank)
    {
        long a = Node.GetInt("axis", 1);
        if (a < 0) a += rank;
        if (a < 0 || a > rank) throw new QuantSharpException($"Flatten axis {Node.GetInt("axis", 1)} is out of range for rank {rank}");
        return (int)a;
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        int axis = Axis(x.Rank);
        ViewOps.CopyAs(ctx, x, [Movement.Product(x.Shape, 0, axis), Movement.Product(x.Shape, axis, x.Rank)]);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        if (t.Shape is null)
        {
            ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, [Dimension.Unknown, Dimension.Unknown]));
            return;
        }
        int axis = Axis(t.Shape.Length);
        Dimension a = 1, b = 1;
        for (int i = 0; i < axis; i++) a = Movement.Mul(a, t.Shape[i]);
        for (int i = axis; i < t.Shape.Length; i++) b = Movement.Mul(b, t.Shape[i]);
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, [a, b]));
    }
}

/// <summary>Reshape: target shape from the `shape` attribute (opset 1–4) or input 1 (opset 5+); allowzero from 14.</summary>
[OnnxOperator("Reshape", 1)]
public sealed class ReshapeKernel : OpKernel
{
    private bool AllowZero => OpsetVersion >= 14 && Node.GetInt("allowzero", 0) != 0;

    private long[] Target(Func<int, Tensor?> input)
    {
        if (OpsetVersion < 5)
            return Node.GetInts("shape") ?? throw new QuantSharpException("Reshape-1 needs a 'shape' attribute");
        var s = input(1) ?? throw new QuantSharpException("Reshape needs the shape input");
        if (s.Rank != 1) throw new QuantSharpException($"Reshape shape input must be 1-D, got {ShapeUtil.Format(s.Shape)}");
        return Movement.ToLongs(s, "Reshape shape");
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var shape = ViewOps.ResolveReshape(x.Shape, Target(ctx.OptionalInput), AllowZero);
        ViewOps.CopyAs(ctx, x, shape);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        long[]? target = OpsetVersion < 5 ? Node.GetInts("shape") : Movement.ConstLongs(ctx, 1);
        if (target is null)
        {
            // The shape input's length gives the output rank even when its values are unknown.
            if (OpsetVersion >= 5 && ctx.InputType(1)?.Shape is [{ Value: long n }])
                ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, Enumerable.Repeat(Dimension.Unknown, (int)n).ToArray()));
            else ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
            return;
        }
        if (t.ConcreteShape() is { } cs)
        {
            ctx.SetOutputType(0, t.ElementType, ViewOps.ResolveReshape(cs, target, AllowZero));
            return;
        }
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, ViewOps.InferReshape(t.Shape, target, AllowZero)));
    }
}

/// <summary>Squeeze: removes the listed size-1 axes (all size-1 axes when none are listed). Axes: attribute before 13, input from 13.</summary>
[OnnxOperator("Squeeze", 1)]
public sealed class SqueezeKernel : OpKernel
{
    private long[]? Axes(Func<int, Tensor?> input) =>
        OpsetVersion < 13 ? Node.GetInts("axes") : input(1) is { } a ? Movement.ToLongs(a, "Squeeze axes") : null;

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var axes = Axes(ctx.OptionalInput);
        var keep = new List<int>();
        if (axes is null)
        {
            foreach (int d in x.Shape) if (d != 1) keep.Add(d);
        }
        else
        {
            var ax = Movement.NormalizeAxes(axes, x.Rank, "Squeeze axes");
            for (int i = 0; i < x.Rank; i++)
            {
                if (Array.IndexOf(ax, i) < 0) keep.Add(x.Shape[i]);
                else if (x.Shape[i] != 1)
                    throw new QuantSharpException($"Squeeze axis {i} of {ShapeUtil.Format(x.Shape)} has size {x.Shape[i]}, not 1");
            }
        }
        ViewOps.CopyAs(ctx, x, keep.ToArray());
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        bool hasAxes = OpsetVersion < 13 ? Node.GetInts("axes") is not null : ctx.HasInput(1);
        long[]? axes = OpsetVersion < 13 ? Node.GetInts("axes") : Movement.ConstLongs(ctx, 1);
        if (t.Shape is null || (hasAxes && axes is null))
        {
            ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
            return;
        }
        var keep = new List<Dimension>();
        if (axes is null)
        {
            foreach (var d in t.Shape)
            {
                if (d.Value is not long v)
                {
                    ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
                    return;
                }
                if (v != 1) keep.Add(d);
            }
        }
        else
        {
            var ax = Movement.NormalizeAxes(axes, t.Shape.Length, "Squeeze axes");
            for (int i = 0; i < t.Shape.Length; i++) if (Array.IndexOf(ax, i) < 0) keep.Add(t.Shape[i]);
        }
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, keep.ToArray()));
    }
}

/// <summary>Unsqueeze: inserts size-1 axes at the listed positions of the output. Axes: attribute before 13, input from 13.</summary>
[OnnxOperator("Unsqueeze", 1)]
public sealed class UnsqueezeKernel : OpKernel
{
    private long[] Axes(Func<int, Tensor?> input)
    {
        if (OpsetVersion < 13) return Node.GetInts("axes") ?? throw new QuantSharpException("Unsqueeze needs an 'axes' attribute");
        var a = input(1) ?? throw new QuantSharpException("Unsqueeze needs the axes input");
        return Movement.ToLongs(a, "Unsqueeze axes");
    }

    /// <summary>Output shape: 1 at each normalised axis (against the output rank), the input's dims elsewhere in order.</summary>
    internal static T[] Expand<T>(IReadOnlyList<T> input, long[] axes, T one)
    {
        int rank = input.Count + axes.Length;
        var ax = Movement.NormalizeAxes(axes, rank, "Unsqueeze axes");
        var r = new T[rank];
        int k = 0;
        for (int i = 0; i < rank; i++) r[i] = Array.IndexOf(ax, i) >= 0 ? one : input[k++];
        return r;
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        ViewOps.CopyAs(ctx, x, Expand(x.Shape, Axes(ctx.OptionalInput), 1));
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        long[]? axes = OpsetVersion < 13 ? Node.GetInts("axes") : Movement.ConstLongs(ctx, 1);
        if (t.Shape is null || axes is null)
        {
            ctx.SetOutputType(0, Movement.Unranked(t.ElementType));
            return;
        }
        ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, Expand(t.Shape, axes, new Dimension(1))));
    }
}
