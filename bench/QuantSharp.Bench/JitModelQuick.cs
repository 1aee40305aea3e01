using System.Diagnostics;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;

namespace QuantSharp.Bench;

/// <summary>
/// `jit-model FLOAT.onnx QUANTIZED.onnx [batch] [threads] [iterations]`: latency of one model as FP32, INT8 with
/// generated kernels and INT8 with the managed kernels only (SessionOptions.IntegerExecution.GeneratedCode), the
/// three variants interleaved within every iteration so machine load affects them alike; prints the best and the
/// median per variant. The input is a fixed pseudo-random normal tensor of the model's input shape with the batch set.
/// </summary>
public static class JitModelQuick
{
    public static void Run(string[] args)
    {
        if (args.Length < 2) throw new QuantSharpException("usage: jit-model FLOAT.onnx QUANTIZED.onnx [batch] [threads] [iterations]");
        int batch = args.Length > 2 ? int.Parse(args[2]) : 64, threads = args.Length > 3 ? int.Parse(args[3]) : 1;
        int iterations = args.Length > 4 ? int.Parse(args[4]) : 30;
        var fp32 = OnnxModelIO.Load(args[0]);
        var int8 = OnnxModelIO.Load(args[1]);
        var input = fp32.Graph.RuntimeInputs.Single();
        int[] shape = [.. input.Type!.Shape!.Select((d, i) => i == 0 ? batch : (int)(d.Value ?? 1))];
        var x = new Tensor<float>(shape);
        var rnd = new Random(1);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rnd.NextDouble())) * Math.Cos(2 * Math.PI * rnd.NextDouble()));
        var sessions = new (string Name, InferenceSession Session)[]
        {
            ("fp32", new InferenceSession(fp32, new SessionOptions { IntraOpThreads = threads })),
            ("int8 generated", new InferenceSession(int8, new SessionOptions { IntraOpThreads = threads })),
            ("int8 managed", new InferenceSession(int8, new SessionOptions { IntraOpThreads = threads, IntegerExecution = new IntegerExecutionOptions { GeneratedCode = false } })),
        };
        var times = sessions.Select(_ => new List<double>()).ToArray();
        foreach (var (_, s) in sessions) for (int w = 0; w < 3; w++) s.Run(x);
        for (int it = 0; it < iterations; it++)
            for (int v = 0; v < sessions.Length; v++)
            {
                var sw = Stopwatch.StartNew();
                sessions[v].Session.Run(x);
                times[v].Add(sw.Elapsed.TotalMilliseconds);
            }
        Console.WriteLine($"model {Path.GetFileName(args[0])} / {Path.GetFileName(args[1])}, batch {batch}, threads {threads}, {iterations} interleaved iterations, " +
                          $"default int8 kernel {Int8Gemm.Default.Name}, managed fallback {Runtime.Kernels.Jit.GeneratedInt8Kernel.Select(false)!.Name}, load {File.ReadAllText("/proc/loadavg").Trim()}");
        double fpMedian = Median(times[0]);
        for (int v = 0; v < sessions.Length; v++)
        {
            double med = Median(times[v]);
            Console.WriteLine($"  {sessions[v].Name,-15} best {times[v].Min(),8:F3} ms  median {med,8:F3} ms  {batch / med * 1e3,9:F0} samples/s (median)  fp32/this {fpMedian / med:F2}x");
        }
        foreach (var (_, s) in sessions) s.Dispose();
        Breakdown(int8, x, threads, true);
        Breakdown(int8, x, threads, false);
    }

    /// <summary>
    /// Time per operator type of the lowered INT8 model (best of 10 runs per node): the gap between one node's
    /// output being reported and the previous one (nodes run one after another; the observer's own cost included).
    /// </summary>
    private static void Breakdown(Model int8, Tensor<float> x, int threads, bool generated)
    {
        var best = new Dictionary<string, double>();
        for (int rep = 0; rep < 10; rep++)
        {
            var sw = new Stopwatch();
            var perNode = new Dictionary<string, double>();
            var options = new SessionOptions
            {
                IntraOpThreads = threads,
                IntegerExecution = new IntegerExecutionOptions { GeneratedCode = generated },
                ValueObserver = (v, _) =>
                {
                    if (v.Producer is { } n && v.ProducerOutputIndex == 0)
                    {
                        string key = $"{n.OpType}#{n.Name}";
                        perNode[key] = perNode.GetValueOrDefault(key) + sw.Elapsed.TotalMilliseconds;
                    }
                    sw.Restart();
                },
            };
            using var session = new InferenceSession(int8, options);
            session.Run(x);
            perNode.Clear();
            sw.Restart();
            session.Run(x);
            foreach (var (k, t) in perNode) best[k] = Math.Min(best.GetValueOrDefault(k, double.MaxValue), t);
        }
        Console.WriteLine($"  per node, int8 {(generated ? "generated" : "managed")} (best of 10, ms):");
        foreach (var (k, t) in best.OrderByDescending(p => p.Value).Take(12)) Console.WriteLine($"    {t,8:F3}  {k}");
    }

    private static double Median(List<double> v)
    {
        var s = v.OrderBy(t => t).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }
}
