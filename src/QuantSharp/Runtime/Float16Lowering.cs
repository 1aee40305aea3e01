using QuantSharp.Graph;
using QuantSharp.Runtime.Operators;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime;

/// <summary>
/// Rewrites a float16/bfloat16 model to compute in float ("stored fp16, computed in fp32"): initializers and
/// tensor attributes become float, Cast/dtype attributes naming float16 or bfloat16 name float, float16 graph
/// inputs get a Cast(to=FLOAT) and float16 graph outputs a Cast back, so the graph's interface keeps its
/// declared types. The kernels then only see float. Rounding to 16 bits happens at the outputs only.
/// </summary>
public static class Float16Lowering
{
    private static bool IsHalf(DataType t) => t is DataType.Float16 or DataType.BFloat16;

    private static bool IsHalf(TensorTypeInfo? t) => t is not null && IsHalf(t.ElementType);

    /// <summary>
    /// Whether the model is a float16/bfloat16 model: it stores half-precision weights, or it has half-precision
    /// inputs and every graph output's type is declared (so the lowered graph can restore the declared output
    /// types). Graphs that merely move half tensors (Reshape, Cast to float16) run on the half kernels as they are.
    /// </summary>
    public static bool IsNeeded(Model model)
    {
        var g = model.Graph;
        if (g.Initializers.Any(v => IsHalf(v.Initializer!.DataType))) return true;
        return g.RuntimeInputs.Any(v => IsHalf(v.Type)) && g.Outputs.All(v => v.Type is not null);
    }

    /// <summary>Rewrites <paramref name="model"/> in place. Returns the number of changes made.</summary>
    public static int Apply(Model model)
    {
        var g = model.Graph;
        var e = g.Edit();
        int changes = 0;
        // Outputs keep their declared dtype; an undeclared output produced by a Cast keeps the Cast's target.
        var outputTypes = g.Outputs.Select(v => v.Type ?? (v.Producer is { OpType: "Cast" } c && c.Attribute("to") is not null
            ? new TensorTypeInfo(Conversions.TargetType(c), null) : null)).ToArray();
        var graphInputs = new HashSet<Value>(g.RuntimeInputs);

        // 0. QuantizeLinear divides in the precision of its scale's type (ONNX); a float16/bfloat16 scale is about
        //    to become float, so that precision is kept as the node's precision attribute.
        foreach (var n in g.Nodes)
        {
            if (n.OpType != "QuantizeLinear" || n.Domain.Length != 0 || n.Attribute("precision") is not null) continue;
            var scaleType = n.Input(1) is { } sv ? sv.Initializer?.DataType ?? sv.Type?.ElementType : null;
            if (scaleType is { } st && IsHalf(st))
            {
                n.Attributes["precision"] = NodeAttribute.Of("precision", (long)st);
                changes++;
            }
        }

        // 1. Constant data.
        foreach (var v in g.Initializers.ToArray())
        {
            if (!IsHalf(v.Initializer!.DataType)) continue;
            e.SetInitializer(v, Conversions.Convert(v.Initializer, DataType.Float));
            changes++;
        }

        // 2. Attributes: tensors (Constant, ConstantOfShape …) and dtype numbers (Cast's to, RandomNormal's dtype,
        //    DequantizeLinear's output_dtype …).
        foreach (var n in g.Nodes)
        {
            foreach (var a in n.Attributes.Values.ToArray())
            {
                if (a.Kind == AttributeKind.Tensor && a.Tensor is { } t && IsHalf(t.DataType))
                {
                    n.Attributes[a.Name] = NodeAttribute.Of(a.Name, Conversions.Convert(t, DataType.Float));
                    changes++;
                }
                else if (a.Kind == AttributeKind.Int && (a.Name is "dtype" or "output_dtype" || (a.Name == "to" && n.OpType == "Cast"))
                    && IsHalf((DataType)a.Int))
                {
                    n.Attributes[a.Name] = NodeAttribute.Of(a.Name, (long)DataType.Float);
                    changes++;
                }
                else if (a.Kind == AttributeKind.String && a.Name == "to" && n.OpType == "Cast"
                    && a.String.ToUpperInvariant() is "FLOAT16" or "BFLOAT16")
                {
                    n.Attributes[a.Name] = NodeAttribute.Of(a.Name, "FLOAT");
                    changes++;
                }
            }
        }

        // 3. Intermediate value types.
        foreach (var v in g.Values.Values)
        {
            if (graphInputs.Contains(v) || !IsHalf(v.Type)) continue;
            v.Type = v.Type! with { ElementType = DataType.Float };
        }

        // 4. Float16 graph inputs: readers get a float copy; a graph output that is the input itself stays as fed.
        foreach (var v in graphInputs)
        {
            if (!IsHalf(v.Type) || v.Uses.Count == 0) continue;
            var cast = e.AddNode("Cast", [v], name: v.Name + "_to_float",
                attributes: [NodeAttribute.Of("to", (long)DataType.Float)], before: g.Nodes.Count > 0 ? g.Nodes[0] : null);
            var f = cast.Outputs[0]!;
            f.Type = v.Type! with { ElementType = DataType.Float };
            e.ReplaceAllUses(v, f, use => use.Node != cast);
            changes++;
        }

        // 5. Float16 graph outputs: the computed float value is renamed and a Cast back produces the declared name.
        var converted = new Dictionary<Value, Value>();
        for (int i = 0; i < g.Outputs.Count; i++)
        {
            var v = g.Outputs[i];
            if (outputTypes[i] is not { } declared || !IsHalf(declared) || graphInputs.Contains(v)) continue;
            if (converted.TryGetValue(v, out var done)) { e.SetOutput(i, done); continue; }
            string name = v.Name;
            e.RenameValue(v, name + "_float");
            var outV = e.CreateValue(name, declared);
            e.AddNode("Cast", [v], name: name + "_to_" + DataTypes.Name(declared.ElementType),
                attributes: [NodeAttribute.Of("to", (long)declared.ElementType)], outputs: [outV]);
            e.SetOutput(i, outV);
            converted[v] = outV;
            changes++;
        }
        return changes;
    }
}
