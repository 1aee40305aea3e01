using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using QuantSharp.Data;
using QuantSharp.Graph;
using QuantSharp.Quantization.Calibration;
using QuantSharp.Quantization.Quantizers;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;

namespace QuantSharp.Cli.Commands;

/// <summary>
/// `quantsharp bench MODEL`: times the float model against its quantized version on QuantSharp's runtime (the
/// quantized one executed in the integer domain), on the same random input, iterations interleaved so that
/// machine load affects both alike. Reports latency p50/p90 per batch, throughput and the speed-up.
/// </summary>
public sealed class BenchCommand : Command
{
    public override string Name => "bench";
    public override string Summary => "time a float model against its quantized (integer-executed) version";
    public override string Usage =>
        "bench MODEL [--quantized Q.onnx | --calib SPEC [--scale S] [--mean M] [--std S]] [--batch B] [--threads T]\n" +
        "                  [--iterations N] [--warmup W] [--qdq] [--fixed-point] [--profile] [--json]";
    public override string Details =>
        "Without --quantized the model is quantized first (static INT8 QDQ: uint8 activations, int8 per-channel\n" +
        "weights), calibrated on --calib SPEC with the preprocessing flags, or on random normal inputs without it.\n" +
        "Every iteration runs each variant once on the same input, in turn. Latency is per batch of model execution;\n" +
        "throughput is samples per second at the p50 latency. --qdq also times the quantized model without integer\n" +
        "lowering (dequantize → float op → quantize), --fixed-point uses integer-only requantization.\n" +
        "--profile also reports, per variant, the mean time per run spent in each operator type (integer operators\n" +
        "are prefixed 'int.'), measured around every node's kernel over the timed iterations.";

    public override IReadOnlyList<OptionSpec> Options { get; } =
    [
        new("--quantized", "-q", true, false, "the quantized model to compare (default: quantize MODEL now)", "Q.onnx"),
        new("--calib", null, true, false, "calibration dataset spec when quantizing here", "SPEC"),
        new("--samples", null, true, false, "calibration samples when quantizing here (default 256)", "N"),
        .. QuantizeSupport.PreprocessingOptions,
        new("--batch", "-b", true, false, "samples per batch (default 1)", "B"),
        new("--threads", "-t", true, false, "threads per operator (default: all cores)", "T"),
        new("--iterations", "-n", true, false, "timed iterations per variant (default 50)", "N"),
        new("--warmup", null, true, false, "untimed iterations first (default 3)", "W"),
        new("--qdq", null, false, false, "also time the quantized model without integer lowering"),
        new("--fixed-point", null, false, false, "integer-only fixed-point requantization"),
        new("--profile", null, false, false, "report time per operator type for each variant"),
        new("--json", null, false, false, "print one JSON object with the results"),
    ];

    private sealed record Variant(string Name, InferenceSession Session, List<double> Ms, OpProfile? Profile);

    public override int Execute(CliArguments args, CliContext ctx)
    {
        string modelPath = args.SinglePositional("a MODEL file");
        int batch = args.Int("--batch", 1, 1, 1 << 16);
        int threads = args.Int("--threads", Environment.ProcessorCount, 1, 1024);
        int iterations = args.Int("--iterations", 50, 1, 1 << 20);
        int warmup = args.Int("--warmup", 3, 0, 1 << 20);
        int samples = args.Int("--samples", 256, 1, int.MaxValue);
        bool json = args.Flag("--json");
        bool profile = args.Flag("--profile");
        var model = ModelFiles.Load(modelPath);
        var input = model.Graph.RuntimeInputs.SingleOrDefault()
            ?? throw new UsageException($"'bench' needs a model with one input; {modelPath} has {model.Graph.RuntimeInputs.Count()}");
        int[] shape = InputShape(input, batch);
        var rng = new Random(1234);

        var sw = Stopwatch.StartNew();
        Model quantized;
        string source;
        if (args.Value("--quantized") is string qPath)
        {
            quantized = ModelFiles.Load(qPath);
            source = qPath;
        }
        else
        {
            var options = new StaticQuantizerOptions
            {
                Calibration = new CalibrationOptions { Samples = samples, BatchSize = 32, IntraOpThreads = threads },
            };
            if (args.Value("--calib") is string spec)
            {
                var dataset = DatasetSpec.Open(spec);
                quantized = Quantizer.QuantizeStatic(model, dataset, QuantizeSupport.Preprocessing(args, model, dataset), options).Model;
                source = $"quantized here (static INT8, calibrated on {spec})";
            }
            else
            {
                int[] calibShape = InputShape(input, 32);
                var batches = Enumerable.Range(0, (samples + 31) / 32)
                    .Select(_ => (IReadOnlyDictionary<string, Tensor>)new Dictionary<string, Tensor> { [input.Name] = RandomNormal(rng, calibShape) });
                quantized = Quantizer.QuantizeStatic(model, batches, samples, options).Model;
                source = "quantized here (static INT8, calibrated on random normal inputs)";
            }
        }
        double quantizeSeconds = sw.Elapsed.TotalSeconds;

        var mode = args.Flag("--fixed-point") ? RequantizationMode.FixedPoint : RequantizationMode.Float;
        Variant Make(string name, Model m, IntegerExecutionOptions integer)
        {
            var p = profile ? new OpProfile(m) : null;
            var options = new SessionOptions { IntraOpThreads = threads, IntegerExecution = integer };
            if (p is not null) options = options with { Registry = p.Registry };
            return new Variant(name, new InferenceSession(m, options), [], p);
        }
        var variants = new List<Variant>
        {
            Make("fp32", model, new IntegerExecutionOptions()),
            Make("int8", quantized, new IntegerExecutionOptions { Requantization = mode }),
        };
        if (args.Flag("--qdq")) variants.Add(Make("qdq-float", quantized, new IntegerExecutionOptions { Enabled = false }));
        int integerNodes = variants[1].Session.Model.Graph.Nodes.Count(n => n.Domain == IntegerLowering.Domain);
        var x = RandomNormal(rng, shape);
        var feeds = new Dictionary<string, Tensor> { [input.Name] = x };

        for (int i = 0; i < warmup; i++)
            foreach (var v in variants) v.Session.Run(feeds);
        foreach (var v in variants) v.Profile?.Reset();
        for (int i = 0; i < iterations; i++)
            foreach (var v in variants)
            {
                long t0 = Stopwatch.GetTimestamp();
                v.Session.Run(feeds);
                v.Ms.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            }
        foreach (var v in variants) v.Session.Dispose();

        double P(List<double> ms, double q)
        {
            var s = ms.Order().ToArray();
            return s[Math.Min(s.Length - 1, (int)Math.Floor(q * (s.Length - 1) + 0.5))];
        }
        double fp32P50 = P(variants[0].Ms, 0.5);
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "";

        if (json)
        {
            using var ms = new MemoryStream();
            using (var j = new Utf8JsonWriter(ms))
            {
                j.WriteStartObject();
                j.WriteString("model", modelPath);
                j.WriteString("quantized", source);
                j.WriteNumber("batch", shape[0]);
                j.WriteNumber("threads", threads);
                j.WriteNumber("iterations", iterations);
                j.WriteNumber("integer_nodes", integerNodes);
                j.WriteString("requantization", mode.ToString());
                j.WriteString("load_average", load);
                j.WriteStartArray("results");
                foreach (var v in variants)
                {
                    double p50 = P(v.Ms, 0.5);
                    j.WriteStartObject();
                    j.WriteString("variant", v.Name);
                    j.WriteNumber("p50_ms", Math.Round(p50, 4));
                    j.WriteNumber("p90_ms", Math.Round(P(v.Ms, 0.9), 4));
                    j.WriteNumber("mean_ms", Math.Round(v.Ms.Average(), 4));
                    j.WriteNumber("throughput", Math.Round(shape[0] * 1000.0 / p50, 2));
                    j.WriteNumber("speedup_vs_fp32", Math.Round(fp32P50 / p50, 3));
                    if (v.Profile is { } prof)
                    {
                        j.WriteStartObject("profile_ms_per_run");
                        foreach (var (op, opMs, _) in prof.PerRun(iterations)) j.WriteNumber(op, Math.Round(opMs, 4));
                        j.WriteEndObject();
                    }
                    j.WriteEndObject();
                }
                j.WriteEndArray();
                j.WriteEndObject();
            }
            ctx.Out.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
            return Program.ExitOk;
        }
        var inv = CultureInfo.InvariantCulture;
        ctx.Out.WriteLine($"model:       {modelPath}");
        ctx.Out.WriteLine($"quantized:   {source}{(args.Value("--quantized") is null ? string.Format(inv, " in {0:F1} s", quantizeSeconds) : "")}");
        ctx.Out.WriteLine($"integer:     {integerNodes} integer nodes, {mode} requantization, int8 GEMM kernel {QuantSharp.Runtime.Kernels.Simd.Int8Gemm.Default.Name}");
        ctx.Out.WriteLine($"batch:       {shape[0]}, threads {threads}, {iterations} iterations each (interleaved), load average {load}");
        foreach (var v in variants)
        {
            double p50 = P(v.Ms, 0.5);
            ctx.Out.WriteLine(string.Format(inv, "{0,-12} p50 {1,9:F3} ms  p90 {2,9:F3} ms  {3,10:F1} samples/s  speed-up {4:F2}x",
                v.Name + ":", p50, P(v.Ms, 0.9), shape[0] * 1000.0 / p50, fp32P50 / p50));
        }
        foreach (var v in variants)
        {
            if (v.Profile is not { } prof) continue;
            var rows = prof.PerRun(iterations);
            double total = rows.Sum(r => r.Ms);
            ctx.Out.WriteLine($"profile {v.Name} (mean ms per run, by operator type):");
            foreach (var (op, ms, nodes) in rows)
                ctx.Out.WriteLine(string.Format(inv, "  {0,-28} {1,9:F3} ms  {2,5:F1} %  ({3} nodes)", op, ms, 100 * ms / Math.Max(total, 1e-12), nodes));
            ctx.Out.WriteLine($"  slowest nodes of {v.Name}:");
            foreach (var (node, op, shapes, ms) in prof.Nodes(iterations, 12))
                ctx.Out.WriteLine(string.Format(inv, "    {0,9:F3} ms  {1,-18} {2,-24} {3}", ms, op, node, shapes));
        }
        return Program.ExitOk;
    }

    /// <summary>The input's declared shape with the batch (first) dimension set; other dimensions must be fixed.</summary>
    private static int[] InputShape(Value input, int batch)
    {
        var dims = input.Type?.Shape ?? throw new UsageException($"input '{input.Name}' has no declared shape");
        var shape = new int[dims.Length];
        for (int d = 0; d < dims.Length; d++)
        {
            if (d == 0) { shape[d] = dims[0].Value is long fixedBatch and > 0 ? (int)fixedBatch : batch; continue; }
            shape[d] = dims[d].Value is long v and > 0 ? (int)v
                : throw new UsageException($"input '{input.Name}' dimension {d} is not fixed ({input.Type}); bench needs fixed non-batch dimensions");
        }
        return shape;
    }

    private static Tensor<float> RandomNormal(Random rng, int[] shape)
    {
        var t = new Tensor<float>(shape);
        for (int i = 0; i < t.Length; i++)
            t.Data[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return t;
    }

    /// <summary>
    /// Per-operator-type timing: a registry whose kernels wrap the default registry's kernel for the node and add the
    /// wall time of every Compute call to their operator type's total (kernels run one at a time, so the totals of a
    /// run add up to its node time).
    /// </summary>
    private sealed class OpProfile
    {
        private readonly Dictionary<string, long> _ticks = new();
        private readonly Dictionary<string, int> _nodes = new();
        private readonly List<Timed> _kernels = [];

        public OperatorRegistry Registry { get; } = new();

        public OpProfile(Model model)
        {
            foreach (var (domain, op) in OperatorRegistry.Default.Operators.ToArray())
                Registry.Register(domain, op, 1, int.MaxValue, () => new Timed(this, model));
        }

        public void Reset()
        {
            foreach (var k in _ticks.Keys.ToArray()) _ticks[k] = 0;
            foreach (var k in _kernels) k.Ticks = 0;
        }

        /// <summary>The slowest nodes: (name, operator type, input shape → output shape, mean ms per run).</summary>
        public List<(string Node, string Op, string Shapes, double Ms)> Nodes(int runs, int count) =>
            _kernels.OrderByDescending(k => k.Ticks).Take(count)
                .Select(k => (k.Node.Name, k.Key, k.Shapes, k.Ticks * 1000.0 / Stopwatch.Frequency / Math.Max(runs, 1))).ToList();

        /// <summary>(operator type, mean ms per run, node count), largest first.</summary>
        public List<(string Op, double Ms, int Nodes)> PerRun(int runs) =>
            _ticks.Select(kv => (kv.Key, kv.Value * 1000.0 / Stopwatch.Frequency / Math.Max(runs, 1), _nodes[kv.Key]))
                .OrderByDescending(r => r.Item2).ToList();

        private string Register(Node node)
        {
            string key = node.Domain.Length == 0 ? node.OpType : node.Domain == IntegerLowering.Domain ? "int." + node.OpType : node.Domain + "." + node.OpType;
            _ticks.TryAdd(key, 0);
            _nodes[key] = _nodes.GetValueOrDefault(key) + 1;
            return key;
        }

        private sealed class Timed(OpProfile owner, Model model) : OpKernel
        {
            private OpKernel? _inner;
            public string Key { get; private set; } = "";
            public long Ticks { get; set; }
            public string Shapes { get; private set; } = "";

            private OpKernel Inner(Node node) => _inner ??= OperatorRegistry.Default.TryCreate(model, node)
                ?? throw new QuantSharpException($"no kernel for node {node.Describe()}");

            public override void Initialize(KernelInitContext ctx)
            {
                Key = owner.Register(ctx.Node);
                owner._kernels.Add(this);
                Inner(ctx.Node).Initialize(ctx);
            }

            public override void Compute(KernelContext ctx)
            {
                long t0 = Stopwatch.GetTimestamp();
                _inner!.Compute(ctx);
                long dt = Stopwatch.GetTimestamp() - t0;
                owner._ticks[Key] += dt;
                Ticks += dt;
                if (Shapes.Length == 0 && ctx.InputCount > 0)
                    Shapes = string.Join(", ", Enumerable.Range(0, ctx.InputCount).Select(ctx.OptionalInput)
                        .Where(t => t is { Rank: > 1 }).Select(t => t!.ToString()))
                        + (Node.GetInt("group", 1) is > 1 and var g ? $" group {g}" : "")
                        + (Node.Attribute("strides") is { } st ? $" strides {string.Join("x", st.Ints)}" : "");
            }

            public override void InferTypes(TypeInferenceContext ctx) => Inner(ctx.Node).InferTypes(ctx);
        }
    }
}
