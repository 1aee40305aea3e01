namespace QuantSharp.Graph;

/// <summary>
/// An operator application. Inputs may contain null for omitted optional inputs (an empty name in ONNX);
/// outputs likewise. Change inputs and outputs only through <see cref="GraphRewriter"/>.
/// </summary>
public sealed class Node
{
    internal readonly List<Value?> InputList = [];
    internal readonly List<Value?> OutputList = [];

    internal Node(string name, string opType, string domain)
    {
        Name = name;
        OpType = opType;
        Domain = domain;
    }

    public string Name { get; internal set; }
    public string OpType { get; }
    /// <summary>Operator domain; the default ONNX domain is "" ("ai.onnx" is normalised to "").</summary>
    public string Domain { get; }
    public string? DocString { get; set; }
    public IReadOnlyList<Value?> Inputs => InputList;
    public IReadOnlyList<Value?> Outputs => OutputList;
    public Dictionary<string, NodeAttribute> Attributes { get; } = new(StringComparer.Ordinal);

    /// <summary>The graph this node belongs to (null once removed).</summary>
    public Graph? Owner { get; internal set; }

    internal object? Extras { get; set; }

    public Value? Input(int i) => i < InputList.Count ? InputList[i] : null;
    public Value? Output(int i) => i < OutputList.Count ? OutputList[i] : null;

    public NodeAttribute? Attribute(string name) => Attributes.TryGetValue(name, out var a) ? a : null;

    public long GetInt(string name, long fallback) => Attribute(name) is { Kind: AttributeKind.Int } a ? a.Int : fallback;
    public float GetFloat(string name, float fallback) => Attribute(name) is { Kind: AttributeKind.Float } a ? a.Float : fallback;
    public string GetString(string name, string fallback) => Attribute(name) is { Kind: AttributeKind.String } a ? a.String : fallback;
    public long[]? GetInts(string name) => Attribute(name) is { Kind: AttributeKind.Ints } a ? a.Ints : null;
    public float[]? GetFloats(string name) => Attribute(name) is { Kind: AttributeKind.Floats } a ? a.Floats : null;

    /// <summary>"name (OpType)" or "name (domain:OpType)", for messages.</summary>
    public string Describe() => $"'{Name}' ({(Domain.Length == 0 ? "" : Domain + ":")}{OpType})";

    public override string ToString() => Describe();
}
