using System.Diagnostics;
using QuantSharp.Data;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Quantization.Calibration;
using QuantSharp.Quantization.Math;
using QuantSharp.Quantization.Passes;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Quantizers;

/// <summary>
/// Entry points of post-training quantization. Each returns a new model (the input is never changed) and a
/// <see cref="QuantizationSummary"/>. Models that are already quantized, or have nothing the quantizer handles,
/// give a <see cref="QuantSharpException"/> rather than a file.
/// </summary>
public static partial class Quantizer
{
    /// <summary>Ops with a weight input: the weight is stored quantized, activations around them get Q/DQ.</summary>
    public static IReadOnlyList<string> ComputeOps { get; } = ["Conv", "Gemm", "MatMul"];

    /// <summary>Ops that move or select values without changing them: their output reuses their input's parameters.</summary>
    public static IReadOnlyList<string> SharedScaleOps { get; } = ["Reshape", "Transpose", "Flatten", "MaxPool", "Squeeze", "Unsqueeze"];

    /// <summary>
    /// Other ops whose inputs and output get Q/DQ, as in ONNX Runtime's QDQ quantizer. Constant float inputs of Add
    /// and Mul (a position embedding, GELU's constants) and LayerNormalization's constant scale and bias are stored
    /// as int8 (per tensor, symmetric) with a DequantizeLinear.
    /// </summary>
    public static IReadOnlyList<string> OtherStaticOps { get; } =
        ["Add", "Mul", "AveragePool", "GlobalAveragePool", "Softmax", "Concat", "Relu", "Clip", "LeakyRelu", "Sigmoid", "LayerNormalization"];

    /// <summary>The default op list of static quantization.</summary>
    public static IReadOnlyList<string> DefaultStaticOps { get; } = [.. ComputeOps, .. SharedScaleOps, .. OtherStaticOps];

    private static readonly HashSet<string> QuantizedOps = new(StringComparer.Ordinal)
    {
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger",
        "ConvInteger", "MatMulNBits", "QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearAveragePool",
        "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSoftmax", "QGemm", "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
    };

    /// <summary>Throws when the model already holds quantization operators.</summary>
    public static void EnsureNotQuantized(Model model)
    {
        var q = model.Graph.Nodes.Where(n => QuantizedOps.Contains(n.OpType)).ToList();
        if (q.Count > 0)
            throw new QuantSharpException(
                $"model '{model.SourcePath ?? model.Graph.Name}' is already quantized: it has {q.Count} quantization node(s) such as {q[0].Describe()}; quantize the float model instead");
    }

    /// <summary>Static quantization calibrated on the first samples of a data set.</summary>
    public static QuantizationResult QuantizeStatic(Model model, IDataset calibration, ImagePreprocessing? preprocessing, StaticQuantizerOptions options) =>
        QuantizeStatic(model, (m, tensors) => Calibrator.Calibrate(m, calibration, preprocessing, tensors, options.Calibration), options);

    /// <summary>Static quantization calibrated on the given input batches.</summary>
    public static QuantizationResult QuantizeStatic(Model model, IEnumerable<IReadOnlyDictionary<string, Tensor>> batches, int samples, StaticQuantizerOptions options) =>
        QuantizeStatic(model, (m, tensors) => Calibrator.Calibrate(m, batches, tensors, options.Calibration, samples), options);

    private sealed class TensorPlan
    {
        public Value? ShareFrom;
        public QuantParams? Params;
    }

    /// <summary>Static QDQ quantization; <paramref name="calibrate"/> runs the prepared float model and observes the given tensors.</summary>
    public static QuantizationResult QuantizeStatic(Model model, Func<Model, IReadOnlyCollection<string>, CalibrationResult> calibrate, StaticQuantizerOptions options)
    {
        options.Validate();
        var sw = Stopwatch.StartNew();
        EnsureNotQuantized(model);
        var summary = new QuantizationSummary { Mode = QuantizationMode.Static, Calibrator = options.Calibration.Calibrator.ToString() };
        summary.InputBytes = OnnxModelIO.ToBytes(model).LongLength;
        summary.InputWeightBytes = model.InitializerBytes();

        var m = model.Clone();
        var g = m.Graph;
        GraphPasses.ConstantsToInitializers(m);
        GraphPasses.FoldConstantReshapes(m);
        if (options.FoldBatchNorm) summary.FoldedBatchNorms = GraphPasses.FoldBatchNormalization(m);
        g.Edit().SortTopologically();
        TryInferShapes(m);

        var ops = new HashSet<string>(options.OpTypes ?? DefaultStaticOps, StringComparer.Ordinal);
        var plan = new Dictionary<Value, TensorPlan>();
        var fusedActivations = new HashSet<Node>();
        var weightNodes = new List<Node>();
        var constInputs = new List<(Node Node, int Index)>();
        var quantizedNodes = new HashSet<Node>();

        bool IsFloatActivation(Value? v) => v is not null && !v.IsInitializer && GraphPasses.ConstantOf(v) is null &&
            (v.Type is null || v.Type.ElementType == DataType.Float);
        void Mark(Value? v)
        {
            if (IsFloatActivation(v) && !plan.ContainsKey(v!)) plan[v!] = new TensorPlan();
        }

        foreach (var n in g.Nodes)
        {
            if (n.OpType == "Constant") continue;
            if (n.Domain.Length != 0 || !ops.Contains(n.OpType))
            {
                summary.Add(n, false, "op type not quantized");
                continue;
            }
            if (!options.Selected(n.Name, out var why))
            {
                summary.Add(n, false, why!);
                continue;
            }
            if (n.OpType is "Conv" or "Gemm" or "MatMul")
            {
                int wIndex = 1;
                var w = n.Input(wIndex);
                bool constWeight = w?.Initializer is Tensor<float> && (n.OpType != "MatMul" || w.Initializer.Rank >= 2);
                Mark(n.Input(0));
                if (!constWeight) Mark(w);
                if (constWeight) weightNodes.Add(n);
                var y = n.Output(0)!;
                if (y.Uses.Count == 1 && !g.Outputs.Contains(y) && y.Uses[0].Node is var act && IsReluLike(act) &&
                    ops.Contains(act.OpType) && options.Selected(act.Name, out _))
                    fusedActivations.Add(act);
                // A model output computed by Conv/Gemm/MatMul stays float: ONNX Runtime runs DQ → Gemm/MatMul with a
                // float output (QGemm, MatMulIntegerToFloat), and the logits keep full precision.
                else if (!g.Outputs.Contains(y) || y.Uses.Count > 0) Mark(y);
                quantizedNodes.Add(n);
                summary.Add(n, true, constWeight ? "weights stored quantized" : "activations quantized");
            }
            else if (SharedScaleOps.Contains(n.OpType))
            {
                var x = n.Input(0);
                if (x is not null && plan.ContainsKey(x) && IsFloatActivation(n.Output(0)) && !plan.ContainsKey(n.Output(0)!))
                {
                    plan[n.Output(0)!] = new TensorPlan { ShareFrom = x };
                    quantizedNodes.Add(n);
                    summary.Add(n, true, "shares its input's scale");
                }
                else summary.Add(n, false, "input not quantized");
            }
            else
            {
                if (fusedActivations.Contains(n)) summary.Add(n, true, "fused with the preceding node; range taken after it");
                else
                {
                    int inputs = n.OpType is "Clip" or "Softmax" or "AveragePool" or "GlobalAveragePool" or "Relu" or "LeakyRelu" or "Sigmoid" ? 1 : n.Inputs.Count;
                    for (int i = 0; i < inputs; i++)
                    {
                        var v = n.Input(i);
                        if (v is null) continue;
                        if (n.OpType == "LayerNormalization" && i > 0)
                        {
                            if (GraphPasses.ConstantOf(v) is Tensor<float>) constInputs.Add((n, i));
                            continue;
                        }
                        if (IsFloatActivation(v)) Mark(v);
                        else if (n.OpType is "Add" or "Mul" && GraphPasses.ConstantOf(v) is Tensor<float>) constInputs.Add((n, i));
                    }
                    summary.Add(n, true, "inputs and output quantized");
                }
                Mark(n.Output(0));
                quantizedNodes.Add(n);
            }
        }
        if (plan.Count == 0 && weightNodes.Count == 0)
            throw new QuantSharpException(
                $"model '{model.SourcePath ?? g.Name}' has nothing to quantize: none of its {g.Nodes.Count} nodes is a selected op of type {string.Join(", ", ops.Order(StringComparer.Ordinal))}");

        // Activation schemes and calibration of every tensor that owns its parameters.
        var aScheme = ActivationScheme(options);
        var own = plan.Where(kv => kv.Value.ShareFrom is null).Select(kv => kv.Key).ToList();
        var toCalibrate = own.Where(v => !(options.TensorOverrides.TryGetValue(v.Name, out var o) && o.Scale is not null) && KnownRange(v) is null)
            .Select(v => v.Name).ToList();
        CalibrationResult? calib = toCalibrate.Count > 0 ? calibrate(m, toCalibrate) : null;
        if (calib is not null)
        {
            summary.CalibrationSeconds = calib.Seconds;
            summary.CalibrationSamples = calib.Samples;
        }
        foreach (var v in own)
        {
            options.TensorOverrides.TryGetValue(v.Name, out var ov);
            if (ov?.Scale is float s)
            {
                plan[v].Params = QuantParams.PerTensor(aScheme, s, ov.ZeroPoint ?? aScheme.MidPoint);
                continue;
            }
            var (lo, hi) = KnownRange(v) ?? calib!.Range(v.Name, aScheme);
            if (ov?.Min is double omin) lo = omin;
            if (ov?.Max is double omax) hi = omax;
            plan[v].Params = QuantParams.FromRange(lo, hi, aScheme);
        }
        QuantParams Resolve(Value v)
        {
            var p = plan[v];
            while (p.Params is null) p.Params = Resolve(p.ShareFrom!);
            return p.Params;
        }
        foreach (var v in plan.Keys) Resolve(v);

        var e = g.Edit();
        // A Relu/Clip fused into the preceding node is dropped when the QuantizeLinear after it clips the same way:
        // zero point = qmin means every x ≤ 0 quantizes to the code of 0, and for Clip the largest representable
        // value (qmax − zp) · scale must not exceed its upper bound (ONNX Runtime's QDQ quantizer does the same).
        foreach (var act in fusedActivations)
        {
            var outV = act.Output(0)!;
            var inV = act.Input(0)!;
            var p = plan[outV].Params!;
            if (p.ZeroPoint[0] != aScheme.QMin || plan.ContainsKey(inV)) continue;
            if (act.OpType == "Clip")
            {
                double upper = act.Attribute("max") is { Kind: AttributeKind.Float } ma ? ma.Float
                    : GraphPasses.ConstantOf(act.Input(2)) is { Length: 1 } mt ? mt.GetDouble(0) : double.PositiveInfinity;
                if ((aScheme.QMax - p.ZeroPoint[0]) * (double)p.Scale[0] > upper * (1 + 1e-6)) continue;
            }
            plan[inV] = plan[outV];
            plan.Remove(outV);
            string name = outV.Name;
            e.Bypass(act, inV);
            e.RenameValue(inV, name);
            int at = summary.Nodes.FindIndex(d => d.Node == act.Name);
            if (at >= 0) summary.Nodes[at] = summary.Nodes[at] with { Detail = "removed: the QuantizeLinear after it clips the same range" };
        }
        var b = new QdqBuilder(e, options.Names != QuantizedNames.Descriptive);
        var wScheme = WeightScheme(options);
        bool perAxisUsed = false;
        foreach (var n in weightNodes)
        {
            var w = n.Input(1)!;
            int axis = WeightOutputAxis(n, w.Initializer!.Rank);
            var scheme = options.PerChannel ? wScheme.PerAxis(axis) : wScheme;
            perAxisUsed |= options.PerChannel;
            var (wOut, wParams) = b.Weight(w, scheme);
            e.SetInput(n, 1, wOut);
            summary.QuantizedWeights++;
            var bias = n.Input(2);
            var x = n.Input(0);
            bool biasOk = bias?.Initializer is Tensor<float> bt && bt.Rank == 1 && x is not null && plan.ContainsKey(x) &&
                bt.Length == w.Initializer.Shape[axis] &&
                (n.OpType == "Conv" || (n.GetFloat("alpha", 1f) == 1f && n.GetFloat("beta", 1f) == 1f));
            if (biasOk)
            {
                e.SetInput(n, 2, b.Bias(bias!, Resolve(x!).Scale[0], wParams));
                summary.QuantizedWeights++;
            }
        }
        var constScheme = QuantScheme.Int8Symmetric with { NarrowRange = true };
        foreach (var (n, i) in constInputs)
        {
            var v = n.Input(i)!;
            if (!v.IsInitializer) continue;
            var (cOut, _) = b.Weight(v, constScheme);
            e.SetInput(n, i, cOut);
            summary.QuantizedWeights++;
        }
        var storage = aScheme.StorageType!.Value;
        var paramValues = new Dictionary<QuantParams, (Value S, Value Z)>(ReferenceEqualityComparer.Instance);
        foreach (var (v, p) in plan)
        {
            var qp = p.Params!;
            if (!paramValues.TryGetValue(qp, out var sz))
            {
                sz = (e.AddInitializer(QdqBuilder.BaseName(v) + "_s", qp.ScaleTensor()), e.AddInitializer(QdqBuilder.BaseName(v) + "_z", QdqBuilder.ZeroPointTensor(qp)));
                paramValues[qp] = sz;
            }
            b.ActivationQdq(v, sz.S, sz.Z, storage);
            summary.QuantizedActivations++;
        }

        long opset = storage is DataType.Int16 || options.WeightType is DataType.Int4 or DataType.UInt4 ? 21 : perAxisUsed ? 13 : 10;
        GraphPasses.RaiseOpset(m, opset);
        Finish(m, model, options, summary, sw);
        return new QuantizationResult(m, summary);
    }

    /// <summary>
    /// The output range an op guarantees whatever its input: Softmax and Sigmoid give [0, 1]. Such tensors take that
    /// range (Softmax: [0, 255/256], see below) instead of a calibrated one. A calibrator that clips (entropy,
    /// percentile, MSE) would otherwise cut the rare large values, and those are what matters: on the example
    /// transformer the entropy calibrator set the attention Softmax outputs to [0, 0.5], saturating every attention
    /// weight above 0.5 and costing 0.6 point.
    /// </summary>
    public static (double Min, double Max)? KnownRange(Value v) => v.Producer switch
    {
        // [0, 255/256] gives scale 1/256 with zero point 0 (uint8) or −128 (int8): the output parameters ONNX Runtime's
        // QLinearSoftmax (which its QDQ fusion substitutes) works with. With scale 1/255 ONNX Runtime's logits on the
        // example transformer drifted from QuantSharp's (only 91 % within one step); with 1/256 they agree.
        { Domain: "", OpType: "Softmax" } => (0, 255.0 / 256),
        { Domain: "", OpType: "Sigmoid" } => (0, 1),
        _ => null,
    };

    /// <summary>Relu, or Clip with a lower bound of exactly 0 (ReLU6 and the like).</summary>
    public static bool IsReluLike(Node n)
    {
        if (n.Domain.Length != 0) return false;
        if (n.OpType == "Relu") return true;
        if (n.OpType != "Clip") return false;
        if (n.Attribute("min") is { Kind: Graph.AttributeKind.Float } a) return a.Float == 0f;
        return GraphPasses.ConstantOf(n.Input(1)) is { Length: 1 } t && t.GetDouble(0) == 0;
    }

    /// <summary>The output-channel axis of a weight: 0 for Conv, for Gemm 0 with transB else 1, for MatMul the last.</summary>
    public static int WeightOutputAxis(Node n, int rank) => n.OpType switch
    {
        "Conv" => 0,
        "Gemm" => n.GetInt("transB", 0) != 0 ? 0 : 1,
        _ => rank - 1,
    };

    /// <summary>The reduction (input-channel) axis of a weight: 1 for Conv, for Gemm 1 with transB else 0, for MatMul rank − 2.</summary>
    public static int WeightReductionAxis(Node n, int rank) => n.OpType switch
    {
        "Conv" => 1,
        "Gemm" => n.GetInt("transB", 0) != 0 ? 1 : 0,
        _ => rank - 2,
    };

    internal static QuantScheme ActivationScheme(StaticQuantizerOptions o) => o.ActivationType switch
    {
        DataType.UInt8 => QuantScheme.Integer(8, false, o.ActivationSymmetric),
        DataType.Int8 => QuantScheme.Integer(8, true, o.ActivationSymmetric),
        _ => QuantScheme.Integer(16, true, o.ActivationSymmetric),
    };

    /// <summary>
    /// Weight scheme: signed symmetric weights use the narrow range (int8 [−127, 127], int4 [−7, 7]) so that
    /// +max and −max quantize alike, as ONNX Runtime does.
    /// </summary>
    internal static QuantScheme WeightScheme(QuantizerOptions o)
    {
        var (bits, signed) = o.WeightType switch
        {
            DataType.Int8 => (8, true),
            DataType.UInt8 => (8, false),
            DataType.Int4 => (4, true),
            _ => (4, false),
        };
        var s = QuantScheme.Integer(bits, signed, o.WeightSymmetric);
        return signed && o.WeightSymmetric ? s with { NarrowRange = true } : s;
    }

    private static void TryInferShapes(Model m)
    {
        try
        {
            ShapeInference.Run(m);
        }
        catch (QuantSharpException)
        {
            // Types stay as declared; tensors of unknown type are treated as float and checked during calibration.
        }
    }

    /// <summary>
    /// Removes what is no longer read, shares identical constants and shortens names as <see cref="QuantizerOptions.Names"/>
    /// says (<paramref name="source"/> is the float model whose names Short keeps),
    /// validates and fills in the summary's sizes.
    /// </summary>
    private static void Finish(Model m, Model source, QuantizerOptions options, QuantizationSummary summary, Stopwatch sw)
    {
        var e = m.Graph.Edit();
        e.RemoveUnused();
        if (options.Names != QuantizedNames.Descriptive)
        {
            QdqCompaction.ShareIdenticalInitializers(m);
            // Subgraphs (If, Loop, Scan) may read outer values by name, so a model with any keeps the float model's names.
            bool subgraphs = m.Graph.Nodes.Any(n => n.Attributes.Values.Any(a => a.Kind is AttributeKind.Graph or AttributeKind.Graphs));
            bool renameAll = options.Names == QuantizedNames.Minimal && !subgraphs;
            QdqCompaction.ShortenGeneratedNames(m, renameAll ? new HashSet<string>() : QdqCompaction.ValueNames(source));
        }
        e.SortTopologically();
        GraphValidation.EnsureValid(m.Graph);
        m.ProducerName = "QuantSharp";
        m.Metadata.Add(new KeyValuePair<string, string>("quantsharp_mode", summary.Mode.ToString().ToLowerInvariant()));
        summary.Opset = m.Opset("") ?? 0;
        summary.OutputBytes = OnnxModelIO.ToBytes(m).LongLength;
        summary.OutputWeightBytes = m.InitializerBytes();
        summary.Seconds = sw.Elapsed.TotalSeconds;
    }
}
