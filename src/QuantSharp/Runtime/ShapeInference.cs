using QuantSharp.Graph;
using QuantSharp.Runtime.Operators;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime;

/// <summary>
/// Static shape and dtype inference over a model's main graph. Nodes are visited in topological order; each one's
/// kernel (from the registry) sets its outputs' <see cref="Value.Type"/> through <see cref="OpKernel.InferTypes"/>.
/// Shape computations are constant-folded on the side: a node whose inputs are all known and small is run with
/// its own kernel, and its outputs become constant inputs of later nodes (so Reshape after
/// Shape→Gather→Concat gets a concrete shape). Shape/Size of a value with a known shape are constants; with symbolic
/// dimensions the shape value is tracked element by element (<see cref="Symbolic"/>), so a dynamic batch survives
/// Shape→Gather→Concat→Reshape. The graph itself is not changed; only value types are. Unknown ops and kernel
/// failures leave their outputs as they were.
/// </summary>
public static class ShapeInference
{
    /// <summary>Largest tensor (in elements) that is folded or kept as a constant.</summary>
    public const int MaxFoldElements = 1 << 16;

    /// <summary>Ops whose result differs from run to run; never folded.</summary>
    private static readonly HashSet<string> NonDeterministic = new(StringComparer.Ordinal)
    {
        "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial", "Dropout",
    };

    /// <summary>Ops whose output may be far larger than their inputs; folded only when the inferred size is small.</summary>
    private static readonly HashSet<string> Expanding = new(StringComparer.Ordinal)
    {
        "ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad", "EyeLike",
    };

    /// <summary>Infers the types of every node output of the main graph (see the class summary); never throws for model content.</summary>
    public static void Run(Model model, OperatorRegistry? registry = null)
    {
        registry ??= OperatorRegistry.Default;
        var g = model.Graph;
        var folded = new Dictionary<Value, Tensor>();
        Tensor? Constant(Value v) => v.Initializer ?? (folded.TryGetValue(v, out var t) ? t : null);
        var pool = new TensorPool();
        var options = new SessionOptions { IntraOpThreads = 1 };
        var symbolic = new Dictionary<Value, Symbolic.ShapeValue>();

        foreach (var node in GraphValidation.TopologicalOrder(g))
        {
            OpKernel? kernel;
            try { kernel = registry.TryCreate(model, node); }
            catch (Exception) { continue; }
            if (kernel is null) continue;

            var before = node.Outputs.Select(o => o?.Type).ToArray();
            try
            {
                kernel.InferTypes(new TypeInferenceContext(node, Constant));
            }
            catch (Exception)
            {
                Restore(node, before);
                continue;
            }
            for (int i = 0; i < node.Outputs.Count; i++)
                if (node.Outputs[i] is Value o) o.Type = Merge(before[i], o.Type);

            if (ShapeOfKnown(kernel, node) is Tensor shapeValue && node.Outputs[0] is Value so)
            {
                folded[so] = shapeValue;
                continue;
            }
            if (CanFold(node, Constant))
                Fold(kernel, node, Constant, folded, pool, options);
            if (node.Domain.Length == 0 && node.Outputs.Count > 0 && node.Outputs[0] is Value out0 && !folded.ContainsKey(out0))
            {
                try { Symbolic.Propagate(node, kernel, Constant, symbolic, folded); }
                catch (QuantSharpException) { }
            }
        }
    }

    /// <summary>Shape or Size of a value whose needed dimensions are all known.</summary>
    private static Tensor? ShapeOfKnown(OpKernel kernel, Node node)
    {
        var t = node.Input(0)?.Type;
        if (t?.Shape is null) return null;
        if (kernel is ShapeKernel sk)
        {
            var (s, e) = sk.Range(t.Shape.Length);
            var r = new long[e - s];
            for (int i = s; i < e; i++)
            {
                if (t.Shape[i].Value is not long v) return null;
                r[i - s] = v;
            }
            return new Tensor<long>(r, [r.Length]);
        }
        if (kernel is SizeKernel && Movement.KnownProduct(t.Shape) is long n)
            return Tensor<long>.Scalar(n);
        return null;
    }

    private static bool CanFold(Node node, Func<Value, Tensor?> constant)
    {
        if (NonDeterministic.Contains(node.OpType)) return false;
        if (node.Inputs.Count == 0 && node.OpType != "Constant") return false;
        long inputElements = 0;
        foreach (var v in node.Inputs)
        {
            if (v is null) continue;
            var c = constant(v);
            if (c is null) return false;
            inputElements += c.Length;
        }
        if (inputElements > MaxFoldElements) return false;
        bool outputsKnownSmall = true;
        foreach (var o in node.Outputs)
        {
            if (o is null) continue;
            var s = o.Type?.ConcreteShape();
            if (s is null || s.Aggregate(1L, (a, d) => a * d) > MaxFoldElements) { outputsKnownSmall = false; break; }
        }
        return outputsKnownSmall || !Expanding.Contains(node.OpType);
    }

    private static void Fold(OpKernel kernel, Node node, Func<Value, Tensor?> constant, Dictionary<Value, Tensor> folded,
        TensorPool pool, SessionOptions options)
    {
        var ctx = new KernelContext(pool, 1)
        {
            Node = node,
            Inputs = node.Inputs.Select(v => v is null ? null : constant(v)).ToArray(),
            Outputs = new Tensor?[node.Outputs.Count],
        };
        try
        {
            kernel.Initialize(new KernelInitContext(node, options));
            kernel.Compute(ctx);
        }
        catch (Exception)
        {
            return;
        }
        for (int i = 0; i < node.Outputs.Count; i++)
        {
            if (node.Outputs[i] is not Value o || ctx.Outputs[i] is not Tensor t || t.Length > MaxFoldElements) continue;
            folded[o] = t;
            o.Type = TensorTypeInfo.FromShape(t.DataType, t.Shape);
        }
    }

    /// <summary>
    /// The more precise of a declared type and an inferred one: inferred known dimensions win, declared ones fill the
    /// gaps (symbolic names included).
    /// </summary>
    private static TensorTypeInfo? Merge(TensorTypeInfo? declared, TensorTypeInfo? inferred)
    {
        if (inferred is null) return declared;
        if (declared is null) return inferred;
        if (inferred.Shape is null) return new TensorTypeInfo(inferred.ElementType, declared.Shape);
        if (declared.Shape is null || declared.Shape.Length != inferred.Shape.Length) return inferred;
        var dims = new Dimension[inferred.Shape.Length];
        for (int i = 0; i < dims.Length; i++)
            dims[i] = inferred.Shape[i].IsKnown || !(declared.Shape[i].IsKnown || declared.Shape[i].Symbol is not null)
                ? inferred.Shape[i] : declared.Shape[i];
        return new TensorTypeInfo(inferred.ElementType, dims);
    }

    private static void Restore(Node node, TensorTypeInfo?[] before)
    {
        for (int i = 0; i < node.Outputs.Count; i++)
            if (node.Outputs[i] is Value o) o.Type = before[i];
    }

    /// <summary>
    /// Partial evaluation of shape arithmetic: an int64/int32 value of rank 0 or 1 known element by element, each
    /// element a number, a symbolic dimension ("batch") or unknown. It follows Shape → Gather/Slice/Concat/
    /// Unsqueeze/Squeeze/Cast into Reshape, Expand and ConstantOfShape, so dynamic-batch models keep their symbols.
    /// Values whose elements all become numbers are materialised as folded constants for the kernels downstream.
    /// </summary>
    internal static class Symbolic
    {
        public sealed record ShapeValue(Dimension[] Elements, bool IsScalar);

        private static ShapeValue? Of(Value? v, Func<Value, Tensor?> constant, Dictionary<Value, ShapeValue> symbolic)
        {
            if (v is null) return null;
            if (symbolic.TryGetValue(v, out var s)) return s;
            var c = constant(v);
            if (c is (Tensor<long> or Tensor<int>) && c.Rank <= 1 && c.Length <= 64)
                return new ShapeValue(Movement.ToLongs(c, "shape").Select(x => new Dimension(x)).ToArray(), c.Rank == 0);
            return null;
        }

        public static void Propagate(Node node, OpKernel kernel, Func<Value, Tensor?> constant,
            Dictionary<Value, ShapeValue> symbolic, Dictionary<Value, Tensor> folded)
        {
            var out0 = node.Outputs[0]!;
            ShapeValue? In(int i) => Of(node.Input(i), constant, symbolic);
            ShapeValue? result = null;
            switch (node.OpType)
            {
                case "Shape" when node.Input(0)?.Type?.Shape is { } dims && kernel is ShapeKernel sk:
                {
                    var (s, e) = sk.Range(dims.Length);
                    result = new ShapeValue(dims[s..e], false);
                    break;
                }
                case "Gather" when In(0) is { IsScalar: false } data && node.Input(1) is Value iv && constant(iv) is { Rank: <= 1 } idx
                                   && node.GetInt("axis", 0) is 0 or -1:
                {
                    var picks = GatherKernel.Indices(idx, data.Elements.Length, "Gather");
                    result = new ShapeValue(picks.Select(p => data.Elements[p]).ToArray(), idx.Rank == 0);
                    break;
                }
                case "Unsqueeze" when In(0) is { IsScalar: true } sc && out0.Type?.Rank == 1:
                    result = sc with { IsScalar = false };
                    break;
                case "Squeeze" when In(0) is { IsScalar: false, Elements.Length: 1 } one && out0.Type?.Rank == 0:
                    result = one with { IsScalar = true };
                    break;
                case "Identity":
                    result = In(0);
                    break;
                case "Cast" when node.GetInt("to", 0) is (long)DataType.Int64 or (long)DataType.Int32:
                    result = In(0);
                    break;
                case "Concat" when node.GetInt("axis", 0) is 0 or -1:
                {
                    var parts = new List<Dimension>();
                    for (int i = 0; i < node.Inputs.Count; i++)
                    {
                        if (node.Input(i) is null) continue;
                        if (In(i) is not { IsScalar: false } p) return;
                        parts.AddRange(p.Elements);
                    }
                    result = new ShapeValue(parts.ToArray(), false);
                    break;
                }
                case "Slice" when In(0) is { IsScalar: false } data:
                    result = SliceOf(node, kernel, data, constant);
                    break;
            }
            if (result is null)
            {
                ApplyConsumer(node, constant, symbolic);
                return;
            }
            symbolic[out0] = result;
            var dt = out0.Type?.ElementType is DataType.Int32 ? DataType.Int32 : DataType.Int64;
            out0.Type ??= new TensorTypeInfo(dt, result.IsScalar ? [] : [result.Elements.Length]);
            if (result.Elements.All(d => d.IsKnown))
            {
                var values = result.Elements.Select(d => d.Value!.Value).ToArray();
                int[] shape = result.IsScalar ? [] : [values.Length];
                folded[out0] = dt == DataType.Int32
                    ? new Tensor<int>(values.Select(v => (int)v).ToArray(), shape)
                    : new Tensor<long>(values, shape);
            }
        }

        private static ShapeValue? SliceOf(Node node, OpKernel kernel, ShapeValue data, Func<Value, Tensor?> constant)
        {
            long[]? starts, ends, axes = null, steps = null;
            if (kernel.OpsetVersion < 10)
            {
                starts = node.GetInts("starts");
                ends = node.GetInts("ends");
                axes = node.GetInts("axes");
            }
            else
            {
                Tensor? C(int i) => node.Input(i) is Value v ? constant(v) : null;
                if (C(1) is not { } st || C(2) is not { } en) return null;
                if (node.Input(3) is not null && C(3) is null || node.Input(4) is not null && C(4) is null) return null;
                starts = Movement.ToLongs(st, "Slice starts");
                ends = Movement.ToLongs(en, "Slice ends");
                if (C(3) is { } a) axes = Movement.ToLongs(a, "Slice axes");
                if (C(4) is { } p) steps = Movement.ToLongs(p, "Slice steps");
            }
            if (starts is not { Length: 1 } || ends is not { Length: 1 }) return null;
            if (axes is not null && (axes.Length != 1 || axes[0] is not (0 or -1))) return null;
            var sl = SliceKernel.Resolve(data.Elements.Length, starts[0], ends[0], steps?[0] ?? 1);
            var r = new Dimension[sl.Count];
            for (int k = 0; k < r.Length; k++) r[k] = data.Elements[sl.Start + k * sl.Step];
            return new ShapeValue(r, false);
        }

        /// <summary>Refines the output type of ops that take a shape from a symbolic value.</summary>
        private static void ApplyConsumer(Node node, Func<Value, Tensor?> constant, Dictionary<Value, ShapeValue> symbolic)
        {
            var out0 = node.Outputs[0]!;
            switch (node.OpType)
            {
                case "Reshape" when Of(node.Input(1), constant, symbolic) is { IsScalar: false } target
                                    && node.Input(0)?.Type is { Shape: { } input } t:
                {
                    bool allowZero = node.GetInt("allowzero", 0) != 0;
                    var dims = ViewOps.InferReshape(input, target.Elements, allowZero);
                    out0.Type = Merge(new TensorTypeInfo(t.ElementType, dims), out0.Type);
                    break;
                }
                case "ConstantOfShape" when Of(node.Input(0), constant, symbolic) is { IsScalar: false } target && out0.Type is { } ct:
                    out0.Type = Merge(new TensorTypeInfo(ct.ElementType, target.Elements), out0.Type);
                    break;
                case "Expand" when Of(node.Input(1), constant, symbolic) is { IsScalar: false } target
                                   && node.Input(0)?.Type is { Shape: { } input } et:
                {
                    int rank = Math.Max(input.Length, target.Elements.Length);
                    var dims = new Dimension[rank];
                    for (int d = 0; d < rank; d++)
                    {
                        Dimension a = d < rank - input.Length ? new Dimension(1) : input[d - (rank - input.Length)];
                        Dimension b = d < rank - target.Elements.Length ? new Dimension(1) : target.Elements[d - (rank - target.Elements.Length)];
                        dims[d] = b.Value == 1 ? a : a.Value == 1 ? b : a.Equals(b) ? a : a.Value is long av && av != 1 ? a
                            : b.Value is long bv && bv != 1 ? b : Dimension.Unknown;
                    }
                    out0.Type = Merge(new TensorTypeInfo(et.ElementType, dims), out0.Type);
                    break;
                }
            }
        }
    }
}
