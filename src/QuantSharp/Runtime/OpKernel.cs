using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime;

/// <summary>
/// Marks an <see cref="OpKernel"/> as implementing <paramref name="opType"/> for operator-set versions
/// [<paramref name="sinceVersion"/>, <see cref="MaxVersion"/>] of <see cref="Domain"/> ("" = default ONNX domain).
/// A class may carry several of these (e.g. for ops whose semantics did not change across versions).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class OnnxOperatorAttribute(string opType, int sinceVersion = 1) : Attribute
{
    public string OpType { get; } = opType;
    public int SinceVersion { get; } = sinceVersion;
    public int MaxVersion { get; init; } = int.MaxValue;
    public string Domain { get; init; } = "";
}

/// <summary>
/// Executes one node. A fresh instance is created per node when a session is built: read attributes and
/// constant inputs in <see cref="Initialize"/> (pack weights there), then <see cref="Compute"/> runs per inference.
/// Compute must be safe to call again with other inputs, but is never called concurrently on one instance.
/// </summary>
public abstract class OpKernel
{
    public Node Node { get; internal set; } = null!;

    /// <summary>The model's opset version for this node's domain.</summary>
    public int OpsetVersion { get; internal set; }

    /// <summary>Called once when the session is created.</summary>
    public virtual void Initialize(KernelInitContext ctx) { }

    public abstract void Compute(KernelContext ctx);

    /// <summary>
    /// Shape and dtype inference: set each output's type from the inputs' types (and constant inputs).
    /// Leave outputs unset when they cannot be known statically.
    /// </summary>
    public virtual void InferTypes(TypeInferenceContext ctx) { }
}

/// <summary>What a kernel sees when the session is created.</summary>
public sealed class KernelInitContext
{
    internal KernelInitContext(Node node, SessionOptions options) { Node = node; Options = options; }

    public Node Node { get; }
    public SessionOptions Options { get; }

    /// <summary>Input i's constant data if it is an initializer (or folded constant), else null.</summary>
    public Tensor? Constant(int i) => Node.Input(i)?.Initializer;
}

/// <summary>What a kernel sees during shape inference.</summary>
public sealed class TypeInferenceContext
{
    private readonly Func<Value, Tensor?> _constant;

    internal TypeInferenceContext(Node node, Func<Value, Tensor?> constant)
    {
        Node = node;
        _constant = constant;
    }

    public Node Node { get; }
    public int InputCount => Node.Inputs.Count;
    public TensorTypeInfo? InputType(int i) => Node.Input(i)?.Type;
    public bool HasInput(int i) => Node.Input(i) is not null;

    /// <summary>Input i's value when known at load time (initializer or constant-folded shape computation).</summary>
    public Tensor? ConstantInput(int i) => Node.Input(i) is Value v ? _constant(v) : null;

    public void SetOutputType(int i, TensorTypeInfo type)
    {
        if (Node.Output(i) is Value v) v.Type = type;
    }

    public void SetOutputType(int i, DataType dt, ReadOnlySpan<int> shape) => SetOutputType(i, TensorTypeInfo.FromShape(dt, shape));
}
