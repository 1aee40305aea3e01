using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Math;

/// <summary>What the integer codes of a scheme stand for.</summary>
public enum QuantCode
{
    /// <summary>Affine integers: x ≈ (q − zero_point) · scale with q in [QMin, QMax].</summary>
    Uniform,
    /// <summary>Sign codes q ∈ {−1, +1}: x ≈ q · scale (zero point 0). Zero is not representable; x ≥ 0 maps to +1.</summary>
    Binary,
    /// <summary>q ∈ {−1, 0, +1}: x ≈ q · scale, with |x| ≤ <see cref="QuantScheme.TernaryThreshold"/> · scale mapping to 0.</summary>
    Ternary,
}

/// <summary>
/// A quantization scheme: code kind, bit width, signedness, symmetry, range restrictions and granularity.
/// Integer range of a uniform scheme with b bits (b − 1 when <see cref="ReduceRange"/>):
/// signed [−2^(b−1), 2^(b−1) − 1], unsigned [0, 2^b − 1]; <see cref="NarrowRange"/> drops the lowest code
/// (int8 → [−127, 127], uint8 → [1, 255]) so that the range is symmetric about its middle.
/// </summary>
public sealed record QuantScheme
{
    /// <summary>Bit width of the codes, 2 to 16 (ignored by binary and ternary codes, which use 1 and 2 bits).</summary>
    public int Bits { get; init; } = 8;
    public bool Signed { get; init; } = true;
    /// <summary>Symmetric: the range is [−max|x|, max|x|] and the zero point is the middle of the integer range.</summary>
    public bool Symmetric { get; init; } = true;
    /// <summary>
    /// Use one bit less of range (ONNX Runtime's reduce_range, for hardware whose int8 dot products can overflow
    /// a 16-bit intermediate): int8 → [−64, 63], uint8 → [0, 127].
    /// </summary>
    public bool ReduceRange { get; init; }
    /// <summary>Drop the lowest code: int8 → [−127, 127], uint8 → [1, 255].</summary>
    public bool NarrowRange { get; init; }
    public QuantGranularity Granularity { get; init; } = QuantGranularity.PerTensor;
    /// <summary>Axis of per-axis and blocked granularity (may be negative, counted from the end).</summary>
    public int Axis { get; init; }
    /// <summary>Block length along <see cref="Axis"/> for blocked granularity; the last block may be shorter.</summary>
    public int BlockSize { get; init; }
    public QuantCode Code { get; init; } = QuantCode.Uniform;
    /// <summary>Ternary dead zone as a fraction of the scale: |x| ≤ t · scale → 0. The default 0.5 is round-to-nearest.</summary>
    public float TernaryThreshold { get; init; } = 0.5f;

    /// <summary>Bits of the integer range actually used (Bits − 1 with reduce_range).</summary>
    public int EffectiveBits => Code switch
    {
        QuantCode.Binary => 1,
        QuantCode.Ternary => 2,
        _ => ReduceRange ? Bits - 1 : Bits,
    };

    /// <summary>Smallest code.</summary>
    public int QMin => Code != QuantCode.Uniform ? -1
        : (Signed ? -(1 << (EffectiveBits - 1)) : 0) + (NarrowRange ? 1 : 0);

    /// <summary>Largest code.</summary>
    public int QMax => Code != QuantCode.Uniform ? 1
        : Signed ? (1 << (EffectiveBits - 1)) - 1 : (1 << EffectiveBits) - 1;

    /// <summary>Zero point of symmetric schemes: round_half_even((QMin + QMax) / 2); 0 for signed, 128 for uint8.</summary>
    public int MidPoint => (int)QuantMath.RoundHalfToEven((QMin + (double)QMax) / 2);

    /// <summary>
    /// The ONNX element type that holds the codes one per element, or null when there is none (other widths,
    /// binary and ternary codes, which are held as int32 and packed with <see cref="CodePacking"/>).
    /// </summary>
    public DataType? StorageType => Code != QuantCode.Uniform ? null : (Bits, Signed) switch
    {
        (8, true) => DataType.Int8,
        (8, false) => DataType.UInt8,
        (16, true) => DataType.Int16,
        (16, false) => DataType.UInt16,
        (4, true) => DataType.Int4,
        (4, false) => DataType.UInt4,
        _ => null,
    };

    /// <summary>Throws <see cref="QuantSharpException"/> when the scheme is inconsistent.</summary>
    public QuantScheme Validate()
    {
        if (Code == QuantCode.Uniform)
        {
            if (Bits < 2 || Bits > 16) throw new QuantSharpException($"quantization bit width {Bits} is outside [2, 16]");
            if (QMax - QMin < 1) throw new QuantSharpException($"scheme {this} leaves fewer than two codes");
        }
        if (Code == QuantCode.Ternary && !(TernaryThreshold >= 0 && TernaryThreshold < 1))
            throw new QuantSharpException($"ternary threshold {TernaryThreshold} is outside [0, 1)");
        if (Granularity == QuantGranularity.Blocked && BlockSize < 1)
            throw new QuantSharpException($"blocked quantization needs a block size ≥ 1, got {BlockSize}");
        return this;
    }

    /// <summary>A uniform per-tensor scheme.</summary>
    public static QuantScheme Integer(int bits, bool signed, bool symmetric) =>
        new QuantScheme { Bits = bits, Signed = signed, Symmetric = symmetric }.Validate();

    public static QuantScheme Int8Symmetric => Integer(8, true, true);
    public static QuantScheme UInt8Asymmetric => Integer(8, false, false);
    public static QuantScheme Int4Symmetric => Integer(4, true, true);
    public static QuantScheme Binary => new() { Code = QuantCode.Binary };
    public static QuantScheme Ternary(float threshold = 0.5f) => new QuantScheme { Code = QuantCode.Ternary, TernaryThreshold = threshold }.Validate();

    public QuantScheme PerTensor() => this with { Granularity = QuantGranularity.PerTensor, Axis = 0, BlockSize = 0 };
    public QuantScheme PerAxis(int axis) => this with { Granularity = QuantGranularity.PerAxis, Axis = axis, BlockSize = 0 };
    public QuantScheme PerBlock(int axis, int blockSize) =>
        (this with { Granularity = QuantGranularity.Blocked, Axis = axis, BlockSize = blockSize }).Validate();
}
