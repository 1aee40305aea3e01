using QuantSharp.Graph;
using QuantSharp.Runtime.Operators;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime;

/// <summary>
/// Static shape and dtype inference over a model's main graph. Nodes are visited in topological order; each one's
/// kernel (from the registry) sets its outputs' <see cref="Value.Type"/> through <see cref="OpKernel.InferTypes"/>.
/// Shape computations are constant-folded on the side: a node whose inputs are all known and small is run with
/// its own kernel, and its outputs become constant inputs of later nodes (so Reshape after
/// Shape→Gather→Concat gets a concrete shape). Shape/Size of a value with a known shape are constants. The graph
/// itself is not changed; only value types are. Unknown ops and kernel failures leave their outputs as they were.
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

    public static void Run(Model model, OperatorRegistry? registry = null)
    {
        registry ??= OperatorRegistry.Default;
        var g = model.Graph;
        var folded = new Dictionary<Value, Tensor>();
        Tensor? Constant(Value v) => v.Initializer ?? (folded.TryGetValue(v, out var t) ? t : null);
        var pool = new TensorPool();
        var options = new SessionOptions { IntraOpThreads = 1 };

        foreach (var node in TopologicalOrder(g))
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

    /// <summary>Nodes so that each follows the producers of its inputs, without reordering the graph itself.</summary>
    private static List<Node> TopologicalOrder(Graph.Graph g)
    {
        var nodes = g.Nodes;
        var index = new Dictionary<Node, int>(nodes.Count);
        for (int i = 0; i < nodes.Count; i++) index[nodes[i]] = i;
        var pending = new int[nodes.Count];
        for (int i = 0; i < nodes.Count; i++)
            foreach (var v in nodes[i].Inputs)
                if (v?.Producer is Node p && index.ContainsKey(p)) pending[i]++;
        var ready = new SortedSet<int>();
        for (int i = 0; i < nodes.Count; i++) if (pending[i] == 0) ready.Add(i);
        var order = new List<Node>(nodes.Count);
        while (ready.Count > 0)
        {
            int i = ready.Min;
            ready.Remove(i);
            order.Add(nodes[i]);
            foreach (var o in nodes[i].Outputs)
            {
                if (o is null) continue;
                foreach (var u in o.Uses)
                    if (index.TryGetValue(u.Node, out int j) && --pending[j] == 0) ready.Add(j);
            }
        }
        // Nodes on a cycle are left out: their inputs never become available.
        return order;
    }
}
