using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime;

/// <summary>Options for an <see cref="InferenceSession"/>.</summary>
public sealed record SessionOptions
{
    /// <summary>Threads a kernel may use inside one operator (work is split over output tiles).</summary>
    public int IntraOpThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>Kernel table; defaults to every kernel in QuantSharp.</summary>
    public OperatorRegistry Registry { get; init; } = OperatorRegistry.Default;

    /// <summary>
    /// Called with every graph input and every node output as soon as it is computed (calibration uses this to
    /// feed observers). The tensor's buffer is recycled later: read it during the call, do not keep it.
    /// </summary>
    public Action<Value, Tensor>? ValueObserver { get; init; }

    /// <summary>Check inputs' dtype and fixed dimensions against the model's declarations.</summary>
    public bool ValidateInputs { get; init; } = true;

    /// <summary>
    /// Fuse float operators when the session is created (BatchNormalization folded into Conv, Relu / Clip into the
    /// Conv epilogue), on a copy of the model; see <see cref="Lowering.FloatFusion"/>. Not applied when
    /// <see cref="ValueObserver"/> is set (it must see every original value).
    /// </summary>
    public bool FuseFloatOperators { get; init; } = true;

    /// <summary>Run quantized (QDQ) models in the integer domain (on a copy of the model); see <see cref="Lowering.IntegerLowering"/>.</summary>
    public Lowering.IntegerExecutionOptions IntegerExecution { get; init; } = new();
}
