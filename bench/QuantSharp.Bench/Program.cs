using BenchmarkDotNet.Running;

namespace QuantSharp.Bench;

public static class Program
{
    /// <summary>Benchmark classes of the committed suite (bench/README.md).</summary>
    private static readonly Type[] Suite =
        [typeof(Int8GemmBenchmarks), typeof(SgemmShapeBenchmarks), typeof(AmxGemmBenchmarks), typeof(ModelLatencyBenchmarks), typeof(JitShapeBenchmarks)];

    public static void Main(string[] args)
    {
        if (args.Length >= 1 && args[0] == "int8-quick")
        {
            Int8GemmBenchmarks.Quick(args.Length > 1 ? int.Parse(args[1]) : 1);
            return;
        }
        if (args.Length >= 1 && args[0] == "llm-kernels")
        {
            LlmKernelsQuick.Run();
            return;
        }
        if (args.Length >= 1 && args[0] == "gemv-quick")
        {
            GemvQuick.Run(args.Length > 1 ? int.Parse(args[1]) : 1);
            return;
        }
        if (args.Length >= 1 && args[0] == "int4-quick")
        {
            Int4GemvQuick.Run(args.Length > 1 ? int.Parse(args[1]) : 1);
            return;
        }
        if (args.Length >= 1 && args[0] == "channel-quick")
        {
            ChannelGemmQuick.Run();
            return;
        }
        if (args.Length >= 1 && args[0] == "jit-quick")
        {
            JitGemmQuick.Run();
            return;
        }
        if (args.Length >= 1 && args[0] == "jit-shapes")
        {
            JitShapesQuick.Run(args[1..]);
            return;
        }
        if (args.Length >= 1 && args[0] == "jit-epilogue")
        {
            JitEpilogueQuick.Run(args[1..]);
            return;
        }
        if (args.Length >= 1 && args[0] == "gemm-json")
        {
            GemmJson.Run(args.Skip(1).ToArray());
            return;
        }
        if (args.Length >= 1 && args[0] == "suite")
        {
            // suite [ARTIFACTS_DIR] [BenchmarkDotNet arguments, e.g. --filter '*Model*']
            string artifacts = args.Length > 1 && !args[1].StartsWith('-') ? args[1] : "BenchmarkDotNet.Artifacts";
            var rest = args.Skip(args.Length > 1 && !args[1].StartsWith('-') ? 2 : 1).ToArray();
            BenchmarkSwitcher.FromTypes(Suite).Run(rest.Length == 0 ? ["--filter", "*"] : rest, SuiteConfig.Create(artifacts));
            return;
        }
        if (args.Length >= 1 && args[0] == "node-min")
        {
            NodeMinQuick.Run(args[1..]);
            return;
        }
        if (args.Length >= 1 && args[0] == "jit-model")
        {
            JitModelQuick.Run(args[1..]);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
