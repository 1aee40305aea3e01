using QuantSharp.Tensors;

namespace QuantSharp.Graph;

/// <summary>
/// A computation graph: nodes linked through <see cref="Value"/> objects, graph inputs and outputs,
/// initializers. Read it freely; change it through <see cref="Edit"/> (a <see cref="GraphRewriter"/>).
/// </summary>
public sealed class Graph
{
    internal readonly List<Node> NodeList = [];
    internal readonly List<Value> InputList = [];
    internal readonly List<Value> OutputList = [];
    internal readonly List<Value> InitializerList = [];
    internal readonly List<Value> ValueInfoList = [];
    internal readonly Dictionary<string, Value> ValuesByName = new(StringComparer.Ordinal);

    public string Name { get; set; } = "";
    public string? DocString { get; set; }

    /// <summary>Nodes in their current order (topological after <see cref="GraphRewriter.SortTopologically"/>).</summary>
    public IReadOnlyList<Node> Nodes => NodeList;

    /// <summary>Graph inputs as declared. Before IR 4, initializers may also be listed here.</summary>
    public IReadOnlyList<Value> Inputs => InputList;

    public IReadOnlyList<Value> Outputs => OutputList;

    /// <summary>Values with constant data, in file order.</summary>
    public IReadOnlyList<Value> Initializers => InitializerList;

    /// <summary>Intermediate values whose type was declared in the file's value_info, in file order.</summary>
    public IReadOnlyList<Value> ValueInfos => ValueInfoList;

    /// <summary>Every value by name (inputs, initializers, node outputs).</summary>
    public IReadOnlyDictionary<string, Value> Values => ValuesByName;

    /// <summary>Graph inputs the caller must feed: declared inputs that are not initializers.</summary>
    public IEnumerable<Value> RuntimeInputs => InputList.Where(v => !v.IsInitializer);

    internal object? Extras { get; set; }

    public Value? FindValue(string name) => ValuesByName.TryGetValue(name, out var v) ? v : null;

    public Node? FindNode(string name) => NodeList.FirstOrDefault(n => n.Name == name);

    public GraphRewriter Edit() => new(this);
}

/// <summary>An operator set import: domain ("" for the default ONNX domain) and version.</summary>
public sealed record OpsetImport(string Domain, long Version);

/// <summary>A model: the main graph plus file-level information.</summary>
public sealed class Model
{
    public Model(Graph graph) => Graph = graph;

    public Graph Graph { get; }
    public long IrVersion { get; set; } = 10;
    public List<OpsetImport> OpsetImports { get; } = [];
    public string ProducerName { get; set; } = "";
    public string ProducerVersion { get; set; } = "";
    public string Domain { get; set; } = "";
    public long ModelVersion { get; set; }
    public string? DocString { get; set; }
    public List<KeyValuePair<string, string>> Metadata { get; } = [];

    /// <summary>Where the model was read from (for messages and external data), if anywhere.</summary>
    public string? SourcePath { get; set; }

    internal object? Extras { get; set; }

    /// <summary>The imported version of a domain's operator set ("ai.onnx" and "" are the same), or null.</summary>
    public long? Opset(string domain)
    {
        if (domain == "ai.onnx") domain = "";
        foreach (var o in OpsetImports)
            if ((o.Domain == "ai.onnx" ? "" : o.Domain) == domain) return o.Version;
        return null;
    }

    public void SetOpset(string domain, long version)
    {
        if (domain == "ai.onnx") domain = "";
        int i = OpsetImports.FindIndex(o => (o.Domain == "ai.onnx" ? "" : o.Domain) == domain);
        if (i >= 0) OpsetImports[i] = OpsetImports[i] with { Version = version };
        else OpsetImports.Add(new OpsetImport(domain, version));
    }

    /// <summary>Total bytes of initializer data at their stored precision (int4 counts half a byte).</summary>
    public long InitializerBytes() => Graph.Initializers.Sum(v =>
        (long)v.Initializer!.Length * DataTypes.BitsPerElement(v.Initializer.DataType) / 8);
}
