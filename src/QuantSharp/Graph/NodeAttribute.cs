using QuantSharp.Tensors;

namespace QuantSharp.Graph;

/// <summary>Attribute kinds; numeric values follow ONNX's AttributeProto.AttributeType.</summary>
public enum AttributeKind
{
    Undefined = 0, Float = 1, Int = 2, String = 3, Tensor = 4, Graph = 5, SparseTensor = 11, TypeProto = 13,
    Floats = 6, Ints = 7, Strings = 8, Tensors = 9, Graphs = 10, SparseTensors = 12, TypeProtos = 14,
}

/// <summary>
/// A typed node attribute. Subgraphs, sparse tensors and type protos are carried opaquely
/// (<see cref="Opaque"/>) so that models using them round-trip; the runtime does not execute subgraphs.
/// </summary>
public sealed class NodeAttribute
{
    public NodeAttribute(string name, AttributeKind kind) { Name = name; Kind = kind; }

    public string Name { get; }
    public AttributeKind Kind { get; }
    public float Float { get; init; }
    public long Int { get; init; }
    public string String { get; init; } = "";
    public Tensor? Tensor { get; init; }
    public float[] Floats { get; init; } = [];
    public long[] Ints { get; init; } = [];
    public string[] Strings { get; init; } = [];
    public Tensor[] Tensors { get; init; } = [];
    /// <summary>Payload of kinds the IR does not model (graphs, sparse tensors, type protos), as read from the file.</summary>
    public object? Opaque { get; init; }
    /// <summary>ref_attr_name inside function bodies.</summary>
    public string? RefAttrName { get; init; }
    public string? DocString { get; init; }
    internal object? Extras { get; set; }

    public static NodeAttribute Of(string name, long v) => new(name, AttributeKind.Int) { Int = v };
    public static NodeAttribute Of(string name, float v) => new(name, AttributeKind.Float) { Float = v };
    public static NodeAttribute Of(string name, string v) => new(name, AttributeKind.String) { String = v };
    public static NodeAttribute Of(string name, long[] v) => new(name, AttributeKind.Ints) { Ints = v };
    public static NodeAttribute Of(string name, float[] v) => new(name, AttributeKind.Floats) { Floats = v };
    public static NodeAttribute Of(string name, Tensor v) => new(name, AttributeKind.Tensor) { Tensor = v };

    public override string ToString() => Kind switch
    {
        AttributeKind.Int => $"{Name}={Int}",
        AttributeKind.Float => $"{Name}={Float}",
        AttributeKind.String => $"{Name}=\"{String}\"",
        AttributeKind.Ints => $"{Name}=[{string.Join(",", Ints)}]",
        AttributeKind.Floats => $"{Name}=[{string.Join(",", Floats)}]",
        _ => $"{Name}:{Kind}",
    };
}
