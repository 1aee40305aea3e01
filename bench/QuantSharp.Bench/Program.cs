using BenchmarkDotNet.Running;

namespace QuantSharp.Bench;

public static class Program
{
    public static void Main(string[] args)
    {
        if (args.Length >= 1 && args[0] == "int8-quick")
        {
            Int8GemmBenchmarks.Quick(args.Length > 1 ? int.Parse(args[1]) : 1);
            return;
        }
        if (args.Length >= 1 && args[0] == "gemv-quick")
        {
            GemvQuick.Run(args.Length > 1 ? int.Parse(args[1]) : 1);
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
        if (args.Length >= 1 && args[0] == "jit-model")
        {
            JitModelQuick.Run(args[1..]);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
