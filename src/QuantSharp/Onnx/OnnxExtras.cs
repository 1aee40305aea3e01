using QuantSharp.Graph;
using QuantSharp.Onnx.Proto;

namespace QuantSharp.Onnx;

// What the importer keeps in the IR's internal Extras properties so that writing a model back loses nothing.
// Everything here is immutable once imported (the exporter clones before changing a proto), so a cloned IR may
// share these objects with its original.

/// <summary>Model.Extras: the ModelProto without its graph (functions, training_info, unknown fields … stay).</summary>
internal sealed record ModelExtras(ModelProto Rest);

/// <summary>
/// Graph.Extras: the GraphProto without nodes, initializers and value lists, plus the value list entries as read,
/// matched back to values by position and exact name on export.
/// </summary>
internal sealed record GraphExtras(GraphProto Rest, ValueInfoProto[] Inputs, ValueInfoProto[] Outputs, ValueInfoProto[] ValueInfos);

/// <summary>Node.Extras: the NodeProto without inputs, outputs and attributes, and the attributes as imported, in file order.</summary>
internal sealed record NodeExtras(NodeProto Rest, NodeAttribute[] Attributes);

/// <summary>NodeAttribute.Extras: the AttributeProto as read. A NodeAttribute is immutable, so it is written back verbatim.</summary>
internal sealed record AttributeExtras(AttributeProto Proto);

/// <summary>
/// Value.Extras: the type and doc string as imported (to tell whether a pass changed them), and the initializer's
/// TensorProto. When <paramref name="InitializerHasData"/> is false the proto's raw_data was dropped to save memory
/// because encoding the imported tensor reproduces it byte for byte.
/// </summary>
internal sealed record ValueExtras(TensorTypeInfo? ImportedType, string? ImportedDoc, TensorProto? Initializer, bool InitializerHasData);
