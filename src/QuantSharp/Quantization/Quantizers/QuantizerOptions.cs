using System.Text.RegularExpressions;
using QuantSharp.Quantization.Calibration;
using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Quantizers;

/// <summary>Which quantizer runs.</summary>
public enum QuantizationMode { Static, Dynamic, WeightOnly }

/// <summary>
/// Naming of the quantized model. ONNX stores a value's name in full at its producer and at every reader, so on
/// small models names are a large share of the file. Identical constants are shared in every style but Descriptive.
/// </summary>
public enum QuantizedNames
{
    /// <summary>
    /// Values the quantizer creates get short names ("0" … "z", "10" …, by a base-36 counter) and nodes it creates
    /// "Q", "D", "C" with a counter; the float model's value and node names and the graph's inputs and outputs keep
    /// theirs (default).
    /// </summary>
    Short,
    /// <summary>Names derived from the quantized tensor (<c>w_q</c>, <c>w_s</c>, <c>w_z</c>, <c>w_DQ</c>, <c>x_Q</c>, …), for reading the graph.</summary>
    Descriptive,
    /// <summary>
    /// As Short, and the float model's internal values are renamed too; node names and the graph's input and output
    /// names stay, so a value is found as the output of its (named) producer. A model with subgraphs (If, Loop, Scan),
    /// which may read outer values by name, is named as with Short.
    /// </summary>
    Minimal,
}

/// <summary>How weight-only quantization is written.</summary>
public enum WeightOnlyFormat
{
    /// <summary>Quantized initializer + DequantizeLinear (with block_size at opset 21 for blocked weights).</summary>
    DequantizeLinear,
    /// <summary>com.microsoft MatMulNBits for MatMul with a 2-D constant weight (other nodes use DequantizeLinear).</summary>
    MatMulNBits,
}

/// <summary>A fixed range or fixed parameters for one activation tensor, replacing what calibration finds.</summary>
public sealed record TensorOverride
{
    public double? Min { get; init; }
    public double? Max { get; init; }
    /// <summary>Scale and zero point used as given (both must be set).</summary>
    public float? Scale { get; init; }
    public int? ZeroPoint { get; init; }
}

/// <summary>Options shared by every quantizer.</summary>
public record QuantizerOptions
{
    /// <summary>Op types to quantize; null means the quantizer's default list.</summary>
    public IReadOnlyCollection<string>? OpTypes { get; init; }
    /// <summary>When not empty, only nodes whose name matches one of these patterns are quantized.</summary>
    public IReadOnlyList<string> IncludeNodes { get; init; } = [];
    /// <summary>Nodes whose name matches one of these patterns stay float. Patterns: '*' and '?' wildcards, or "re:REGEX".</summary>
    public IReadOnlyList<string> ExcludeNodes { get; init; } = [];
    /// <summary>Weight element type: Int8 (default), UInt8, Int4 or UInt4.</summary>
    public DataType WeightType { get; init; } = DataType.Int8;
    public bool WeightSymmetric { get; init; } = true;
    /// <summary>Per-channel (per output channel) weight scales; per-tensor otherwise.</summary>
    public bool PerChannel { get; init; } = true;
    /// <summary>How the values and nodes of the quantized model are named (see <see cref="QuantizedNames"/>).</summary>
    public QuantizedNames Names { get; init; } = QuantizedNames.Short;

    internal bool Selected(string nodeName, out string? why)
    {
        why = null;
        if (IncludeNodes.Count > 0 && !IncludeNodes.Any(p => NamePattern.Matches(p, nodeName)))
        {
            why = "not in the include list";
            return false;
        }
        if (ExcludeNodes.FirstOrDefault(p => NamePattern.Matches(p, nodeName)) is { } ex)
        {
            why = $"excluded by pattern '{ex}'";
            return false;
        }
        return true;
    }

    internal virtual void Validate()
    {
        if (WeightType is not (DataType.Int8 or DataType.UInt8 or DataType.Int4 or DataType.UInt4))
            throw new QuantSharpException($"weight type {DataTypes.Name(WeightType)} is not supported (int8, uint8, int4, uint4)");
    }
}

/// <summary>Static (calibrated) QDQ quantization.</summary>
public sealed record StaticQuantizerOptions : QuantizerOptions
{
    /// <summary>Activation element type: UInt8 (default), Int8 or Int16.</summary>
    public DataType ActivationType { get; init; } = DataType.UInt8;
    public bool ActivationSymmetric { get; init; }
    public CalibrationOptions Calibration { get; init; } = new();
    /// <summary>Per-tensor overrides of activation ranges or parameters, by tensor name.</summary>
    public IReadOnlyDictionary<string, TensorOverride> TensorOverrides { get; init; } = new Dictionary<string, TensorOverride>();
    /// <summary>Fold BatchNormalization into the preceding Conv first.</summary>
    public bool FoldBatchNorm { get; init; } = true;

    internal override void Validate()
    {
        base.Validate();
        if (ActivationType is not (DataType.UInt8 or DataType.Int8 or DataType.Int16))
            throw new QuantSharpException($"activation type {DataTypes.Name(ActivationType)} is not supported (uint8, int8, int16)");
        Calibration.Validate();
    }
}

/// <summary>Dynamic quantization: weights offline, activations at run time (DynamicQuantizeLinear + MatMulInteger).</summary>
public sealed record DynamicQuantizerOptions : QuantizerOptions
{
    internal override void Validate()
    {
        base.Validate();
        if (WeightType is not (DataType.Int8 or DataType.UInt8))
            throw new QuantSharpException($"dynamic quantization needs 8-bit weights (MatMulInteger), got {DataTypes.Name(WeightType)}");
    }
}

/// <summary>Weight-only quantization (activations stay float).</summary>
public sealed record WeightOnlyQuantizerOptions : QuantizerOptions
{
    /// <summary>Block length along the reduction axis; 0 means per-channel (or per-tensor) scales.</summary>
    public int BlockSize { get; init; } = 32;
    public WeightOnlyFormat Format { get; init; } = WeightOnlyFormat.DequantizeLinear;
    /// <summary>
    /// Element type of the stored weight scales: Float or Float16. Null (default) means Float16 for 4-bit weights
    /// (one scale per block of 32 costs 0.5 bit per weight instead of 1) and Float for 8-bit weights. Float16 scales
    /// make DequantizeLinear (opset 19+) produce float16, so a Cast to float follows it.
    /// </summary>
    public DataType? ScaleType { get; init; }

    /// <summary>The scale type in effect (see <see cref="ScaleType"/>).</summary>
    public DataType EffectiveScaleType => ScaleType ?? (WeightType is DataType.Int4 or DataType.UInt4 ? DataType.Float16 : DataType.Float);

    internal override void Validate()
    {
        base.Validate();
        if (ScaleType is { } st && st is not (DataType.Float or DataType.Float16))
            throw new QuantSharpException($"weight scale type {DataTypes.Name(st)} is not supported (float, float16)");
        if (BlockSize < 0) throw new QuantSharpException($"block size {BlockSize} must not be negative");
        if (BlockSize > 0 && (BlockSize < 16 || (BlockSize & (BlockSize - 1)) != 0))
            throw new QuantSharpException($"block size {BlockSize} must be a power of two ≥ 16 (32, 64, 128 …)");
    }
}

/// <summary>Node-name patterns: '*' and '?' wildcards matched against the whole name, or "re:REGEX" (searched).</summary>
public static class NamePattern
{
    public static bool Matches(string pattern, string name)
    {
        if (pattern.StartsWith("re:", StringComparison.Ordinal))
        {
            try
            {
                return Regex.IsMatch(name, pattern[3..], RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException e)
            {
                throw new QuantSharpException($"node pattern '{pattern}' is not a valid regular expression: {e.Message}");
            }
        }
        string re = "^" + Regex.Escape(pattern).Replace("\\*", ".*").Replace("\\?", ".") + "$";
        return Regex.IsMatch(name, re, RegexOptions.CultureInvariant);
    }
}
