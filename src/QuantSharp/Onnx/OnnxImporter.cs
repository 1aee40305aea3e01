using QuantSharp.Graph;
using QuantSharp.Onnx.Proto;
using QuantSharp.Tensors;
using IrGraph = QuantSharp.Graph.Graph;

namespace QuantSharp.Onnx;

/// <summary>ModelProto → IR. Works on its own deep copy of the proto and keeps every unmodelled part in Extras.</summary>
internal static class OnnxImporter
{
    /// <summary>Newest IR version whose fields this reader knows.</summary>
    public const long NewestIrVersion = 13;

    /// <summary>
    /// Builds the IR. When <paramref name="owned"/> is false the proto belongs to the caller and is deep-copied
    /// first (tensor bytes are immutable ByteStrings and are shared, not copied); its pieces become the Extras.
    /// </summary>
    public static Model Import(ModelProto original, string? baseDir, bool owned)
    {
        if (!original.HasIrVersion || original.IrVersion <= 0)
            throw new ModelFormatException("missing or invalid ir_version");
        if (original.IrVersion > NewestIrVersion)
            throw new ModelFormatException($"IR version {original.IrVersion} is newer than the newest this reader knows ({NewestIrVersion})");
        if (original.Graph is null) throw new ModelFormatException("the model has no graph");
        // Since IR 3 every model names its operator sets; a file cut short after its graph lacks them.
        if (original.IrVersion >= 3 && original.OpsetImport.Count == 0)
            throw new ModelFormatException("the model imports no operator set (opset_import is empty)");

        var rest = owned ? original : original.Clone();
        var gp = rest.Graph;
        rest.Graph = null;

        var graph = ImportGraph(gp, baseDir);
        var m = new Model(graph)
        {
            IrVersion = rest.IrVersion,
            ProducerName = rest.ProducerName,
            ProducerVersion = rest.ProducerVersion,
            Domain = rest.Domain,
            ModelVersion = rest.ModelVersion,
            DocString = rest.HasDocString ? rest.DocString : null,
            Extras = new ModelExtras(rest),
        };
        foreach (var o in rest.OpsetImport) m.OpsetImports.Add(new OpsetImport(o.Domain, o.Version));
        foreach (var kv in rest.MetadataProps) m.Metadata.Add(new KeyValuePair<string, string>(kv.Key, kv.Value));
        return m;
    }

    private static IrGraph ImportGraph(GraphProto gp, string? baseDir)
    {
        var g = new IrGraph { Name = gp.Name, DocString = gp.HasDocString ? gp.DocString : null };
        var e = g.Edit();
        var inputs = gp.Input.ToArray();
        var outputs = gp.Output.ToArray();
        var valueInfos = gp.ValueInfo.ToArray();
        var initializers = gp.Initializer.ToArray();
        var nodes = gp.Node.ToArray();
        gp.Input.Clear();
        gp.Output.Clear();
        gp.ValueInfo.Clear();
        gp.Initializer.Clear();
        gp.Node.Clear();
        g.Extras = new GraphExtras(gp, inputs, outputs, valueInfos);

        // Declared types by value, in priority order: graph input, value_info, graph output.
        var declared = new Dictionary<Value, ValueInfoProto>();
        void Declare(Value v, ValueInfoProto vi)
        {
            if (!declared.TryGetValue(v, out var old) || (old.Type?.TensorType is null && vi.Type?.TensorType is not null))
                declared[v] = vi;
        }

        foreach (var vi in inputs)
        {
            var v = e.GetOrCreateNamed(vi.Name);
            e.RegisterGraphInput(v);
            Declare(v, vi);
        }

        var initProtos = new Dictionary<Value, (TensorProto Proto, bool HasData)>();
        foreach (var tp in initializers)
        {
            var v = e.GetOrCreateNamed(tp.Name);
            var t = TensorProtoIO.ToTensor(tp, baseDir);
            e.RegisterInitializer(v, t);
            v.ImportedInitializer = t;
            initProtos[v] = DropReproducibleData(tp, t);
        }

        foreach (var np in nodes) ImportNode(e, np, baseDir);

        foreach (var vi in valueInfos)
        {
            var v = e.GetOrCreateNamed(vi.Name);
            e.RegisterValueInfo(v);
            Declare(v, vi);
        }
        foreach (var vi in outputs)
        {
            var v = e.GetOrCreateNamed(vi.Name);
            e.AddOutput(v);
            Declare(v, vi);
        }

        var docs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var list in new[] { inputs, valueInfos, outputs })
            foreach (var x in list)
                if (x.HasDocString) docs.TryAdd(x.Name, x.DocString);

        foreach (var v in g.Values.Values)
        {
            declared.TryGetValue(v, out var vi);
            var type = TypeFromProto(vi?.Type);
            if (type is null && v.Initializer is Tensor t) type = TensorTypeInfo.FromShape(t.DataType, t.Shape);
            v.Type = type;
            var doc = docs.GetValueOrDefault(v.Name);
            v.DocString = doc;
            var init = initProtos.TryGetValue(v, out var ip) ? ip : default;
            v.Extras = new ValueExtras(type, doc, init.Proto, init.HasData);
        }
        return g;
    }

    /// <summary>
    /// For raw_data initializers whose bytes are exactly what encoding the decoded tensor gives, drops the bytes
    /// from the kept proto (the tensor holds them) so the model's weights are not held twice.
    /// </summary>
    private static (TensorProto, bool) DropReproducibleData(TensorProto tp, Tensor t)
    {
        if (!tp.HasRawData || tp.DataLocation == TensorProto.Types.DataLocation.External) return (tp, true);
        // Types whose held form is their stored form were copied byte for byte; bool and 4-bit types may differ
        // (a true byte other than 1, a non-zero padding nibble), so those are compared.
        if (t.DataType is DataType.Bool or DataType.Int4 or DataType.UInt4
            && !TensorProtoIO.FromTensor(t, tp.Name).RawData.Equals(tp.RawData))
            return (tp, true);
        tp.ClearRawData();
        return (tp, false);
    }

    private static void ImportNode(GraphRewriter e, NodeProto np, string? baseDir)
    {
        var inputs = np.Input.Select(n => n.Length == 0 ? null : e.GetOrCreateNamed(n)).ToArray();
        var outputs = np.Output.Select(n => n.Length == 0 ? null : e.GetOrCreateNamed(n)).ToArray();
        var attrs = np.Attribute.ToArray();
        np.Input.Clear();
        np.Output.Clear();
        np.Attribute.Clear();
        Node node;
        try
        {
            node = e.AddImportedNode(np.Name, np.OpType, np.Domain, inputs, outputs);
        }
        catch (QuantSharpException ex)
        {
            throw new ModelFormatException($"node '{np.Name}' ({np.OpType}): {ex.Message}", ex);
        }
        node.DocString = np.HasDocString ? np.DocString : null;
        var imported = new NodeAttribute[attrs.Length];
        for (int i = 0; i < attrs.Length; i++)
        {
            try
            {
                imported[i] = ImportAttribute(attrs[i], baseDir);
            }
            catch (QuantSharpException ex)
            {
                throw new ModelFormatException($"node {node.Describe()} attribute '{attrs[i].Name}': {ex.Message}", ex);
            }
            node.Attributes[imported[i].Name] = imported[i];
        }
        node.Extras = new NodeExtras(np, imported);
    }

    /// <summary>The attribute's kind: its type field, or for IR 1 files (no type field) the value field that is set.</summary>
    private static AttributeKind KindOf(AttributeProto a)
    {
        if (a.HasType && a.Type != AttributeProto.Types.AttributeType.Undefined) return (AttributeKind)(int)a.Type;
        if (a.HasF) return AttributeKind.Float;
        if (a.HasI) return AttributeKind.Int;
        if (a.HasS) return AttributeKind.String;
        if (a.T is not null) return AttributeKind.Tensor;
        if (a.G is not null) return AttributeKind.Graph;
        if (a.SparseTensor is not null) return AttributeKind.SparseTensor;
        if (a.Tp is not null) return AttributeKind.TypeProto;
        if (a.Floats.Count > 0) return AttributeKind.Floats;
        if (a.Ints.Count > 0) return AttributeKind.Ints;
        if (a.Strings.Count > 0) return AttributeKind.Strings;
        if (a.Tensors.Count > 0) return AttributeKind.Tensors;
        if (a.Graphs.Count > 0) return AttributeKind.Graphs;
        if (a.SparseTensors.Count > 0) return AttributeKind.SparseTensors;
        if (a.TypeProtos.Count > 0) return AttributeKind.TypeProtos;
        return AttributeKind.Undefined;
    }

    /// <summary>A tensor attribute value, or null (kept opaque) when its dtype is one the runtime does not hold.</summary>
    private static Tensor? TryTensor(TensorProto tp, string? baseDir) =>
        TensorProtoIO.IsSupported((DataType)tp.DataType) ? TensorProtoIO.ToTensor(tp, baseDir) : null;

    private static NodeAttribute ImportAttribute(AttributeProto a, string? baseDir)
    {
        var kind = KindOf(a);
        var ref_ = a.HasRefAttrName ? a.RefAttrName : null;
        var doc = a.HasDocString ? a.DocString : null;
        var extras = new AttributeExtras(a);
        switch (kind)
        {
            case AttributeKind.Float: return new NodeAttribute(a.Name, kind) { Float = a.F, RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.Int: return new NodeAttribute(a.Name, kind) { Int = a.I, RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.String: return new NodeAttribute(a.Name, kind) { String = a.S.ToStringUtf8(), RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.Floats: return new NodeAttribute(a.Name, kind) { Floats = a.Floats.ToArray(), RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.Ints: return new NodeAttribute(a.Name, kind) { Ints = a.Ints.ToArray(), RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.Strings:
                return new NodeAttribute(a.Name, kind) { Strings = a.Strings.Select(s => s.ToStringUtf8()).ToArray(), RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.Tensor:
            {
                var t = a.T is null ? null : TryTensor(a.T, baseDir);
                return new NodeAttribute(a.Name, kind) { Tensor = t, Opaque = t is null ? a.T : null, RefAttrName = ref_, DocString = doc, Extras = extras };
            }
            case AttributeKind.Tensors:
            {
                var ts = a.Tensors.Select(x => TryTensor(x, baseDir)).ToArray();
                bool all = ts.All(x => x is not null);
                return new NodeAttribute(a.Name, kind)
                {
                    Tensors = all ? ts.Select(x => x!).ToArray() : [],
                    Opaque = all ? null : a.Tensors.ToArray(),
                    RefAttrName = ref_, DocString = doc, Extras = extras,
                };
            }
            case AttributeKind.Graph: return new NodeAttribute(a.Name, kind) { Opaque = a.G, RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.Graphs: return new NodeAttribute(a.Name, kind) { Opaque = a.Graphs.ToArray(), RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.SparseTensor: return new NodeAttribute(a.Name, kind) { Opaque = a.SparseTensor, RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.SparseTensors: return new NodeAttribute(a.Name, kind) { Opaque = a.SparseTensors.ToArray(), RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.TypeProto: return new NodeAttribute(a.Name, kind) { Opaque = a.Tp, RefAttrName = ref_, DocString = doc, Extras = extras };
            case AttributeKind.TypeProtos: return new NodeAttribute(a.Name, kind) { Opaque = a.TypeProtos.ToArray(), RefAttrName = ref_, DocString = doc, Extras = extras };
            default: return new NodeAttribute(a.Name, AttributeKind.Undefined) { RefAttrName = ref_, DocString = doc, Extras = extras };
        }
    }

    /// <summary>The tensor type of a value declaration, or null for no type or a non-tensor type (sequence, map, optional …).</summary>
    public static TensorTypeInfo? TypeFromProto(TypeProto? tp)
    {
        if (tp?.TensorType is not { } tt) return null;
        Dimension[]? shape = null;
        if (tt.Shape is not null)
        {
            shape = new Dimension[tt.Shape.Dim.Count];
            for (int i = 0; i < shape.Length; i++)
            {
                var d = tt.Shape.Dim[i];
                shape[i] = d.ValueCase switch
                {
                    TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => new Dimension(d.DimValue),
                    TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => new Dimension(null, d.DimParam),
                    _ => Dimension.Unknown,
                };
            }
        }
        return new TensorTypeInfo((DataType)tt.ElemType, shape);
    }
}
