using QuantSharp.Tensors;

namespace QuantSharp.Graph;

/// <summary>
/// A tensor-valued edge of the graph. Nodes hold their inputs and outputs as references to Value objects; the
/// name is only for files and messages. A value has at most one producer (a node, or none for graph inputs and
/// initializers) and any number of uses.
/// </summary>
public sealed class Value
{
    internal readonly List<Use> UsesList = [];

    internal Value(string name) => Name = name;

    public string Name { get; internal set; }

    /// <summary>Declared or inferred type; null when unknown.</summary>
    public TensorTypeInfo? Type { get; set; }

    public string? DocString { get; set; }

    /// <summary>The node computing this value, or null for graph inputs and initializers.</summary>
    public Node? Producer { get; internal set; }

    /// <summary>Index of this value among its producer's outputs.</summary>
    public int ProducerOutputIndex { get; internal set; }

    /// <summary>Constant data when this value is an initializer, else null.</summary>
    public Tensor? Initializer { get; internal set; }

    public bool IsInitializer => Initializer is not null;

    /// <summary>Every (node, input index) that reads this value, in no particular order.</summary>
    public IReadOnlyList<Use> Uses => UsesList;

    /// <summary>Importer/exporter state kept so that writing the model back loses nothing (ONNX proto remnants).</summary>
    internal object? Extras { get; set; }

    /// <summary>The initializer tensor as decoded at import, to detect whether it was replaced since.</summary>
    internal Tensor? ImportedInitializer { get; set; }

    public override string ToString() => Name;
}

/// <summary>One use of a value: input <see cref="InputIndex"/> of <see cref="Node"/>.</summary>
public readonly record struct Use(Node Node, int InputIndex);
