using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Tests.Kernels;

namespace QuantSharp.Tests.Kernels
{
    /// <summary>
    /// Re-runs the int8 kernel checks in child processes with instruction sets switched off through the runtime's
    /// DOTNET_Enable… knobs, so the default-selection path and every kernel below the best one run on this machine.
    /// The child is this test assembly started with `dotnet exec`; its startup hook (<see cref="StartupHook"/>)
    /// runs <see cref="Int8SelfCheck.Run"/> before the (empty) generated entry point and exits with its result.
    /// </summary>
    public class Int8IsaTests
    {
        private static (int Code, string Output) RunChild(Dictionary<string, string> env) =>
            SelfCheckChild.Run(Int8SelfCheck.EnvironmentVariable, Int8Gemm.KernelEnvironmentVariable, env, "int8 self-check");

        [Fact]
        public void EachDisabledInstructionSetSelectsTheNextKernelAndStillMatches()
        {
            // Cumulative knobs, strongest ISA first. .NET 10 groups AVX-512 F/BW/CD/DQ/VL under EnableAVX512 (EnableAVX512F is no longer read).
            // After the first step generated code (QUANTSHARP_JIT) stays off, so the managed kernels are reached.
            var steps = new List<Dictionary<string, string>>
            {
                new(),
                new() { ["QUANTSHARP_JIT"] = "0" },
                new() { ["QUANTSHARP_JIT"] = "0", ["DOTNET_EnableAVXVNNI"] = "0" },
                // AVX-VNNI without AVX-512: the channel GEMM with its 256-bit requantization.
                new() { ["QUANTSHARP_JIT"] = "0", ["DOTNET_EnableAVX512"] = "0" },
                new() { ["QUANTSHARP_JIT"] = "0", ["DOTNET_EnableAVXVNNI"] = "0", ["DOTNET_EnableAVX512"] = "0" },
                new() { ["QUANTSHARP_JIT"] = "0", ["DOTNET_EnableAVXVNNI"] = "0", ["DOTNET_EnableAVX512"] = "0", ["DOTNET_EnableAVX2"] = "0" },
                new() { ["QUANTSHARP_JIT"] = "0", ["DOTNET_EnableHWIntrinsic"] = "0" },
            };
            var seen = new List<string>();
            foreach (var env in steps)
            {
                var (code, output) = RunChild(env);
                var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("int8-selfcheck kernel=", StringComparison.Ordinal));
                Assert.True(code == 0 && line != null, $"child with {string.Join(" ", env.Select(e => e.Key + "=" + e.Value))} failed ({code}): {output}");
                seen.Add(line!.Split('=')[1].Trim());
            }
            // The last step has no SIMD at all: the scalar kernel.
            Assert.Equal("Scalar", seen[^1]);
            // The first step picks what this process picks.
            Assert.Equal(Int8Gemm.SupportedKernels[0].Name, seen[0]);
            // Every kernel supported here is reached by some step, so every path was checked in a child.
            foreach (var k in Int8Gemm.SupportedKernels.Where(k => k.Name is "Jit" or "AvxVnni" or "Avx512BW" or "Avx2" or "Vector128" or "Scalar"))
                Assert.Contains(k.Name, seen);
        }
    }

    /// <summary>The check a child process runs: the default kernel over the shape grid with 1 and 2 threads, and requantization.</summary>
    public static class Int8SelfCheck
    {
        public const string EnvironmentVariable = "QUANTSHARP_INT8_SELFCHECK";

        public static int Run()
        {
            var kernel = Int8Gemm.Default;
            Console.WriteLine($"int8-selfcheck kernel={kernel.Name}");
            var err = Int8GemmCheck.RunGrid(null, 1) ?? Int8GemmCheck.RunGrid(null, 2);
            if (err == null)
            {
                var requant = new Int8RequantizeTests();
                try
                {
                    requant.SimdMatchesReferenceBitForBit(QuantSharp.Runtime.Kernels.Reference.RequantizationMode.FloatMultiplier);
                    requant.SimdMatchesReferenceBitForBit(QuantSharp.Runtime.Kernels.Reference.RequantizationMode.FixedPoint);
                }
                catch (Exception e)
                {
                    err = "requantization: " + e.Message;
                }
            }
            if (err == null)
            {
                try
                {
                    Int8ElementwiseTests.CheckAll();
                }
                catch (Exception e)
                {
                    err = "element-wise: " + e.Message;
                }
            }
            if (err == null && Int8ChannelGemm.IsSupported)
            {
                // The channel GEMM (both depth paths, both requantization widths when AVX-512 is switched off).
                var channel = new Int8ChannelKernelTests();
                try
                {
                    foreach (bool signedX in new[] { false, true })
                        foreach (bool zw in new[] { false, true })
                            channel.ChannelGemmMatchesReference(signedX, zw);
                }
                catch (Exception e)
                {
                    err = "channel GEMM: " + e.Message;
                }
            }
            Console.WriteLine(err ?? "int8-selfcheck ok");
            return err == null ? 0 : 1;
        }
    }
}

/// <summary>
/// Startup hook (the runtime requires this exact global type name): when the self-check variable is set, runs the
/// int8 kernel self-check and exits with its result; otherwise does nothing.
/// </summary>
internal static class StartupHook
{
    public static void Initialize()
    {
        if (Environment.GetEnvironmentVariable(QuantSharp.Tests.Llm.LlmKernelSelfCheck.EnvironmentVariable) == "1")
            Environment.Exit(QuantSharp.Tests.Llm.LlmKernelSelfCheck.Run());
        if (Environment.GetEnvironmentVariable(Int8SelfCheck.EnvironmentVariable) != "1") return;
        Environment.Exit(Int8SelfCheck.Run());
    }
}
