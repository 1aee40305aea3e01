using System.Globalization;
using System.Text.Json;
using QuantSharp.Graph;

namespace QuantSharp.Quantization.Quantizers;

/// <summary>What happened to one node: quantized (with a short description) or left float (with the reason).</summary>
public sealed record NodeDecision(string Node, string OpType, bool Quantized, string Detail);

/// <summary>Summary of a quantization run.</summary>
public sealed class QuantizationSummary
{
    public QuantizationMode Mode { get; init; }
    public List<NodeDecision> Nodes { get; } = [];
    public int QuantizedNodes => Nodes.Count(n => n.Quantized);
    public int FloatNodes => Nodes.Count(n => !n.Quantized);
    /// <summary>Serialized ONNX size before and after.</summary>
    public long InputBytes { get; set; }
    public long OutputBytes { get; set; }
    /// <summary>Initializer data at stored precision before and after.</summary>
    public long InputWeightBytes { get; set; }
    public long OutputWeightBytes { get; set; }
    public double Seconds { get; set; }
    public double CalibrationSeconds { get; set; }
    public int CalibrationSamples { get; set; }
    public string? Calibrator { get; set; }
    public int FoldedBatchNorms { get; set; }
    public int QuantizedActivations { get; set; }
    public int QuantizedWeights { get; set; }
    public long Opset { get; set; }

    internal void Add(Node n, bool quantized, string detail) => Nodes.Add(new NodeDecision(n.Name, n.OpType, quantized, detail));

    /// <summary>"static", "dynamic" or "weight-only" (as the CLI's --mode).</summary>
    public string ModeName => Mode == QuantizationMode.WeightOnly ? "weight-only" : Mode.ToString().ToLowerInvariant();

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public void WriteText(TextWriter w)
    {
        w.WriteLine($"mode:        {ModeName}{(Calibrator is null ? "" : $", calibrator {Calibrator} on {CalibrationSamples} samples ({CalibrationSeconds.ToString("0.00", Inv)} s)")}");
        if (FoldedBatchNorms > 0) w.WriteLine($"folded:      {FoldedBatchNorms} BatchNormalization into Conv");
        w.WriteLine($"nodes:       {QuantizedNodes} quantized, {FloatNodes} left float");
        foreach (var g in Nodes.Where(n => n.Quantized).GroupBy(n => n.OpType).OrderBy(g => g.Key, StringComparer.Ordinal))
            w.WriteLine($"  quantized  {g.Key} x{g.Count()}");
        foreach (var g in Nodes.Where(n => !n.Quantized).GroupBy(n => (n.OpType, n.Detail)).OrderBy(g => g.Key.OpType, StringComparer.Ordinal))
            w.WriteLine($"  float      {g.Key.OpType} x{g.Count()}: {g.Key.Detail}");
        w.WriteLine($"tensors:     {QuantizedActivations} activations with Q/DQ, {QuantizedWeights} weights stored quantized; opset {Opset}");
        double pct = InputBytes == 0 ? 0 : 100.0 * OutputBytes / InputBytes;
        w.WriteLine($"size:        {InputBytes} → {OutputBytes} bytes ({pct.ToString("0.0", Inv)} %); weights {InputWeightBytes} → {OutputWeightBytes} bytes");
        w.WriteLine($"time:        {Seconds.ToString("0.00", Inv)} s");
    }

    public void WriteJson(Utf8JsonWriter j)
    {
        j.WriteString("mode", ModeName);
        j.WriteNumber("input_bytes", InputBytes);
        j.WriteNumber("output_bytes", OutputBytes);
        j.WriteNumber("size_ratio", InputBytes == 0 ? 0 : System.Math.Round((double)OutputBytes / InputBytes, 5));
        j.WriteNumber("input_weight_bytes", InputWeightBytes);
        j.WriteNumber("output_weight_bytes", OutputWeightBytes);
        j.WriteNumber("quantized_nodes", QuantizedNodes);
        j.WriteNumber("float_nodes", FloatNodes);
        j.WriteNumber("quantized_activations", QuantizedActivations);
        j.WriteNumber("quantized_weights", QuantizedWeights);
        j.WriteNumber("folded_batchnorms", FoldedBatchNorms);
        j.WriteNumber("opset", Opset);
        if (Calibrator is null) j.WriteNull("calibrator"); else j.WriteString("calibrator", Calibrator);
        j.WriteNumber("calibration_samples", CalibrationSamples);
        j.WriteNumber("calibration_s", System.Math.Round(CalibrationSeconds, 3));
        j.WriteNumber("seconds", System.Math.Round(Seconds, 3));
        j.WriteStartArray("nodes");
        foreach (var n in Nodes)
        {
            j.WriteStartObject();
            j.WriteString("name", n.Node);
            j.WriteString("op", n.OpType);
            j.WriteBoolean("quantized", n.Quantized);
            j.WriteString("detail", n.Detail);
            j.WriteEndObject();
        }
        j.WriteEndArray();
    }
}

/// <summary>A quantized model and what was done to it.</summary>
public sealed record QuantizationResult(Model Model, QuantizationSummary Summary);
