using Google.Protobuf;
using QuantSharp.Graph;
using QuantSharp.Onnx.Proto;
using QuantSharp.Tensors;
using IrGraph = QuantSharp.Graph.Graph;

namespace QuantSharp.Onnx;

/// <summary>
/// IR → ModelProto. Starts from the protos kept at import (Extras) and changes only what the IR says changed,
/// so an unmodified model is written back equal to what was read; parts the IR created are encoded fresh.
/// </summary>
internal static class OnnxExporter
{
    public static ModelProto Export(Model m)
    {
        var mp = (m.Extras as ModelExtras)?.Rest.Clone() ?? new ModelProto();
        if (!mp.HasIrVersion || mp.IrVersion != m.IrVersion) mp.IrVersion = m.IrVersion;
        if (mp.ProducerName != m.ProducerName) mp.ProducerName = m.ProducerName;
        if (mp.ProducerVersion != m.ProducerVersion) mp.ProducerVersion = m.ProducerVersion;
        if (mp.Domain != m.Domain) mp.Domain = m.Domain;
        if (mp.ModelVersion != m.ModelVersion) mp.ModelVersion = m.ModelVersion;
        if ((mp.HasDocString ? mp.DocString : null) != m.DocString)
        {
            if (m.DocString is null) mp.ClearDocString();
            else mp.DocString = m.DocString;
        }

        if (!mp.OpsetImport.Select(o => new OpsetImport(o.Domain, o.Version)).SequenceEqual(m.OpsetImports))
        {
            var old = mp.OpsetImport.ToList();
            mp.OpsetImport.Clear();
            foreach (var o in m.OpsetImports)
                mp.OpsetImport.Add(old.FirstOrDefault(x => x.Domain == o.Domain && x.Version == o.Version)
                    ?? new OperatorSetIdProto { Domain = o.Domain, Version = o.Version });
        }
        if (!mp.MetadataProps.Select(kv => new KeyValuePair<string, string>(kv.Key, kv.Value)).SequenceEqual(m.Metadata))
        {
            mp.MetadataProps.Clear();
            foreach (var kv in m.Metadata) mp.MetadataProps.Add(new StringStringEntryProto { Key = kv.Key, Value = kv.Value });
        }
        mp.Graph = ExportGraph(m.Graph);
        return mp;
    }

    private static GraphProto ExportGraph(IrGraph g)
    {
        var x = g.Extras as GraphExtras;
        var gp = x?.Rest.Clone() ?? new GraphProto();
        if (gp.Name != g.Name) gp.Name = g.Name;
        if ((gp.HasDocString ? gp.DocString : null) != g.DocString)
        {
            if (g.DocString is null) gp.ClearDocString();
            else gp.DocString = g.DocString;
        }
        foreach (var n in g.Nodes) gp.Node.Add(ExportNode(n));
        foreach (var v in g.Initializers) gp.Initializer.Add(ExportInitializer(v));
        ExportValueList(g.Inputs, x?.Inputs, gp.Input);
        ExportValueList(g.Outputs, x?.Outputs, gp.Output);
        ExportValueList(g.ValueInfos, x?.ValueInfos, gp.ValueInfo);
        return gp;
    }

    private static TensorProto ExportInitializer(Value v)
    {
        var t = v.Initializer!;
        if (v.Extras is ValueExtras { Initializer: { } kept } vx && ReferenceEquals(t, v.ImportedInitializer))
        {
            var tp = kept.Clone();
            if (tp.Name != v.Name) tp.Name = v.Name;
            if (!vx.InitializerHasData) tp.RawData = TensorProtoIO.FromTensor(t, v.Name).RawData;
            return tp;
        }
        return TensorProtoIO.FromTensor(t, v.Name);
    }

    /// <summary>
    /// Writes a graph input/output/value_info list. Each value reuses the entry read at the same position (or
    /// elsewhere in the list) under the same name, with its type and doc string replaced only if they changed.
    /// </summary>
    private static void ExportValueList(IReadOnlyList<Value> values, ValueInfoProto[]? originals, Google.Protobuf.Collections.RepeatedField<ValueInfoProto> into)
    {
        Dictionary<string, ValueInfoProto>? byName = null;
        for (int i = 0; i < values.Count; i++)
        {
            var v = values[i];
            ValueInfoProto? orig = null;
            if (originals is not null)
            {
                if (i < originals.Length && originals[i].Name == v.Name) orig = originals[i];
                else
                {
                    if (byName is null)
                    {
                        byName = new Dictionary<string, ValueInfoProto>(StringComparer.Ordinal);
                        foreach (var o in originals) byName.TryAdd(o.Name, o);
                    }
                    byName.TryGetValue(v.Name, out orig);
                }
            }
            into.Add(ExportValueInfo(v, orig));
        }
    }

    private static ValueInfoProto ExportValueInfo(Value v, ValueInfoProto? orig)
    {
        var vx = v.Extras as ValueExtras;
        if (orig is null)
        {
            var fresh = new ValueInfoProto { Name = v.Name };
            if (v.Type is not null) fresh.Type = ToTypeProto(v.Type);
            if (v.DocString is not null) fresh.DocString = v.DocString;
            return fresh;
        }
        var vi = orig.Clone();
        if (vi.Name != v.Name) vi.Name = v.Name;
        if (vx is null || !Equals(v.Type, vx.ImportedType))
            vi.Type = v.Type is null ? null : ToTypeProto(v.Type);
        if (vx is null || v.DocString != vx.ImportedDoc)
        {
            if (v.DocString is null) vi.ClearDocString();
            else vi.DocString = v.DocString;
        }
        return vi;
    }

    public static TypeProto ToTypeProto(TensorTypeInfo t)
    {
        var tt = new TypeProto.Types.Tensor { ElemType = (int)t.ElementType };
        if (t.Shape is not null)
        {
            var shape = new TensorShapeProto();
            foreach (var d in t.Shape)
            {
                var dim = new TensorShapeProto.Types.Dimension();
                if (d.Value is long val) dim.DimValue = val;
                else if (d.Symbol is not null) dim.DimParam = d.Symbol;
                shape.Dim.Add(dim);
            }
            tt.Shape = shape;
        }
        return new TypeProto { TensorType = tt };
    }

    private static NodeProto ExportNode(Node n)
    {
        var x = n.Extras as NodeExtras;
        var np = x?.Rest.Clone() ?? new NodeProto { OpType = n.OpType };
        foreach (var v in n.Inputs) np.Input.Add(v?.Name ?? "");
        foreach (var v in n.Outputs) np.Output.Add(v?.Name ?? "");
        if (np.Name != n.Name) np.Name = n.Name;
        if (np.OpType != n.OpType) np.OpType = n.OpType;
        if ((np.Domain == "ai.onnx" ? "" : np.Domain) != n.Domain) np.Domain = n.Domain;
        if ((np.HasDocString ? np.DocString : null) != n.DocString)
        {
            if (n.DocString is null) np.ClearDocString();
            else np.DocString = n.DocString;
        }

        // Unchanged attribute set: write the attributes as read, in file order. Otherwise in dictionary order
        // (insertion order, so a replaced attribute keeps its place).
        if (x is not null && x.Attributes.Length == n.Attributes.Count
            && x.Attributes.All(a => n.Attributes.TryGetValue(a.Name, out var cur) && ReferenceEquals(cur, a)))
        {
            foreach (var a in x.Attributes) np.Attribute.Add(ExportAttribute(a, n));
        }
        else
        {
            foreach (var a in n.Attributes.Values) np.Attribute.Add(ExportAttribute(a, n));
        }
        return np;
    }

    private static T OpaqueAs<T>(NodeAttribute a, Node n) where T : class =>
        a.Opaque as T ?? throw new QuantSharpException(
            $"node {n.Describe()} attribute '{a.Name}' of kind {a.Kind} needs a {typeof(T).Name} payload, not {a.Opaque?.GetType().Name ?? "nothing"}");

    private static AttributeProto ExportAttribute(NodeAttribute a, Node n)
    {
        // NodeAttribute is immutable: an imported one is written back exactly as read.
        if (a.Extras is AttributeExtras ax) return ax.Proto.Clone();

        var p = new AttributeProto { Name = a.Name };
        if (a.Kind != AttributeKind.Undefined) p.Type = (AttributeProto.Types.AttributeType)(int)a.Kind;
        if (a.DocString is not null) p.DocString = a.DocString;
        if (a.RefAttrName is not null)
        {
            // A reference to the calling function's attribute carries no value of its own.
            p.RefAttrName = a.RefAttrName;
            return p;
        }
        switch (a.Kind)
        {
            case AttributeKind.Float: p.F = a.Float; break;
            case AttributeKind.Int: p.I = a.Int; break;
            case AttributeKind.String: p.S = ByteString.CopyFromUtf8(a.String); break;
            case AttributeKind.Floats: p.Floats.Add(a.Floats); break;
            case AttributeKind.Ints: p.Ints.Add(a.Ints); break;
            case AttributeKind.Strings: p.Strings.Add(a.Strings.Select(ByteString.CopyFromUtf8)); break;
            case AttributeKind.Tensor:
                p.T = a.Tensor is not null ? TensorProtoIO.FromTensor(a.Tensor, "") : OpaqueAs<TensorProto>(a, n).Clone();
                break;
            case AttributeKind.Tensors:
                if (a.Opaque is not null) p.Tensors.Add(OpaqueAs<IEnumerable<TensorProto>>(a, n).Select(t => t.Clone()));
                else p.Tensors.Add(a.Tensors.Select(t => TensorProtoIO.FromTensor(t, "")));
                break;
            case AttributeKind.Graph: p.G = OpaqueAs<GraphProto>(a, n).Clone(); break;
            case AttributeKind.Graphs: p.Graphs.Add(OpaqueAs<IEnumerable<GraphProto>>(a, n).Select(x => x.Clone())); break;
            case AttributeKind.SparseTensor: p.SparseTensor = OpaqueAs<SparseTensorProto>(a, n).Clone(); break;
            case AttributeKind.SparseTensors: p.SparseTensors.Add(OpaqueAs<IEnumerable<SparseTensorProto>>(a, n).Select(x => x.Clone())); break;
            case AttributeKind.TypeProto: p.Tp = OpaqueAs<TypeProto>(a, n).Clone(); break;
            case AttributeKind.TypeProtos: p.TypeProtos.Add(OpaqueAs<IEnumerable<TypeProto>>(a, n).Select(x => x.Clone())); break;
        }
        return p;
    }
}
