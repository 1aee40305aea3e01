namespace QuantSharp.Runtime.Lowering;

/// <summary>How an integer operator turns its int32 accumulator into the 8-bit output.</summary>
public enum RequantizationMode
{
    /// <summary>y = round(acc · M + B) + zp with M = s_x·s_w / s_y and B = bias / s_y in float (default).</summary>
    Float,
    /// <summary>
    /// Integer only: M normalised to [0.5, 1) as a Q31 integer and a right shift, the bias rounded into the
    /// accumulator's scale; y = zp + ((acc + bias) · q31 + 2^(s−1)) >> s.
    /// </summary>
    FixedPoint,
}

/// <summary>Whether and how an <see cref="InferenceSession"/> runs quantized (QDQ / QLinear) models in the integer domain.</summary>
public sealed record IntegerExecutionOptions
{
    /// <summary>Lower DequantizeLinear → op → QuantizeLinear patterns to integer operators (only models that contain them change).</summary>
    public bool Enabled { get; init; } = true;

    public RequantizationMode Requantization { get; init; } = RequantizationMode.Float;

    /// <summary>
    /// Let the int8 GEMM use generated machine code (the 512-bit VNNI / AMX kernels of Kernels/Jit) when the CPU
    /// has it; false keeps the managed kernels. The QUANTSHARP_JIT=0 environment variable turns it off process-wide.
    /// </summary>
    public bool GeneratedCode { get; init; } = true;
}
