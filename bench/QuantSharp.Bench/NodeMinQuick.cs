using System.Diagnostics;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Bench;

/// <summary>
/// <c>node-min FP32.onnx INT8.onnx [BATCH] [THREADS] [ITERATIONS] [--nodes]</c>: runs the float model and its quantized
/// (integer-executed) version interleaved on the same random [BATCH, 1, 28, 28] input and prints, per variant, the best
/// whole-run time and the sum over nodes of each node's best time. On a shared machine a node's minimum over many runs
/// is close to its undisturbed time even when no whole run is undisturbed, so the sums are the steadier figure.
/// </summary>
public static class NodeMinQuick
{
    public static void Run(string[] args)
    {
        if (args.Length < 2) throw new ArgumentException("usage: node-min FP32.onnx INT8.onnx [BATCH] [THREADS] [ITERATIONS] [--nodes]");
        int batch = args.Length > 2 ? int.Parse(args[2]) : 64, threads = args.Length > 3 ? int.Parse(args[3]) : 1;
        int iterations = args.Length > 4 ? int.Parse(args[4]) : 30;
        bool nodes = args.Contains("--nodes");
        var profiles = new[] { new Profile("fp32"), new Profile("int8") };
        var sessions = new InferenceSession[2];
        for (int k = 0; k < 2; k++)
        {
            var model = OnnxModelIO.Load(args[k]);
            sessions[k] = new InferenceSession(model, new SessionOptions { IntraOpThreads = threads, Registry = profiles[k].Registry(model) });
        }
        var x = new Tensor<float>([batch, 1, 28, 28]);
        var rnd = new Random(1);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rnd.NextDouble() * 3 - 0.8);
        for (int w = 0; w < 3; w++) foreach (var s in sessions) s.Run(x);
        foreach (var p in profiles) p.Reset();
        var best = new[] { double.MaxValue, double.MaxValue };
        for (int it = 0; it < iterations; it++)
            for (int k = 0; k < 2; k++)
            {
                long t0 = Stopwatch.GetTimestamp();
                sessions[k].Run(x);
                best[k] = Math.Min(best[k], Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                profiles[k].EndRun();
            }
        double n0 = profiles[0].SumOfMinima, n1 = profiles[1].SumOfMinima;
        Console.WriteLine($"batch {batch} threads {threads}, {iterations} runs each: fp32 best {best[0]:F3} ms (node minima {n0:F3}), " +
            $"int8 best {best[1]:F3} ms (node minima {n1:F3}); fp32/int8 {best[0] / best[1]:F2}x (node minima {n0 / n1:F2}x); " +
            $"load {File.ReadAllText("/proc/loadavg").Trim()}");
        if (nodes) foreach (var p in profiles) p.Print();
        foreach (var s in sessions) s.Dispose();
    }

    private sealed class Profile(string name)
    {
        private readonly List<Timed> _kernels = [];

        public OperatorRegistry Registry(Model model)
        {
            var r = new OperatorRegistry();
            foreach (var (domain, op) in OperatorRegistry.Default.Operators.ToArray())
                r.Register(domain, op, 1, int.MaxValue, () => new Timed(this, model));
            return r;
        }

        public void Reset()
        {
            foreach (var k in _kernels) (k.Min, k.Current) = (double.MaxValue, 0);
        }

        public void EndRun()
        {
            foreach (var k in _kernels) (k.Min, k.Current) = (Math.Min(k.Min, k.Current), 0);
        }

        public double SumOfMinima => _kernels.Sum(k => k.Min);

        public void Print()
        {
            Console.WriteLine($"{name}: node minima (ms)");
            foreach (var k in _kernels.OrderByDescending(k => k.Min).Take(24)) Console.WriteLine($"  {k.Min,8:F3}  {k.Description}");
        }

        private sealed class Timed(Profile owner, Model model) : OpKernel
        {
            private OpKernel? _inner;
            public double Min = double.MaxValue, Current;
            public string Description = "";

            public override void Initialize(KernelInitContext ctx)
            {
                owner._kernels.Add(this);
                _inner = OperatorRegistry.Default.TryCreate(model, ctx.Node) ?? throw new QuantSharpException($"no kernel for {ctx.Node.Describe()}");
                _inner.Initialize(ctx);
                Description = $"{(ctx.Node.Domain.Length == 0 ? "" : ctx.Node.Domain + ".")}{ctx.Node.OpType} {ctx.Node.Name}";
            }

            public override void Compute(KernelContext ctx)
            {
                long t0 = Stopwatch.GetTimestamp();
                _inner!.Compute(ctx);
                Current += Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                if (!Description.Contains('[') && ctx.OptionalInput(0) is { } x) Description += " " + x;
            }

            public override void InferTypes(TypeInferenceContext ctx) =>
                (OperatorRegistry.Default.TryCreate(model, ctx.Node) ?? throw new QuantSharpException($"no kernel for {ctx.Node.Describe()}")).InferTypes(ctx);
        }
    }
}
