using QuantSharp.Llm.Kernels;

namespace QuantSharp.Tests.Llm;

/// <summary>
/// Re-runs the block-kernel check in child processes with instruction sets switched off (DOTNET_Enable… knobs), so the
/// start-up selection falls to each weaker path and that path is checked as the process default. The child is this test
/// assembly started with `dotnet exec`; the assembly's startup hook runs <see cref="LlmKernelSelfCheck.Run"/> when
/// <see cref="LlmKernelSelfCheck.EnvironmentVariable"/> is set.
/// </summary>
public class LlmKernelIsaTests
{
    private static (int Code, string Output) RunChild(Dictionary<string, string> env) =>
        SelfCheckChild.Run(LlmKernelSelfCheck.EnvironmentVariable, QKernels.EnvironmentVariable, env, "llm kernel self-check");

    [Fact]
    public void EachDisabledInstructionSetSelectsTheNextPathAndStillMatches()
    {
        var steps = new List<Dictionary<string, string>>
        {
            new(),
            new() { ["DOTNET_EnableAVXVNNI"] = "0" },
            new() { ["DOTNET_EnableAVXVNNI"] = "0", ["DOTNET_EnableAVX512"] = "0" },
            new() { ["DOTNET_EnableHWIntrinsic"] = "0" },
        };
        var seen = new List<string>();
        foreach (var env in steps)
        {
            var (code, output) = RunChild(env);
            var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("llm-kernel-selfcheck kernel=", StringComparison.Ordinal));
            Assert.True(code == 0 && line != null, $"child with {string.Join(" ", env.Select(e => e.Key + "=" + e.Value))} failed ({code}): {output}");
            seen.Add(line!.Split('=')[1].Trim());
        }
        Assert.Equal(QKernels.Selected.ToString(), seen[0]);
        Assert.Equal("Scalar", seen[^1]);
        foreach (var isa in QKernels.Supported) Assert.Contains(isa.ToString(), seen);
    }
}

/// <summary>What a child process runs: the process-default path over the kernel shape grid.</summary>
public static class LlmKernelSelfCheck
{
    public const string EnvironmentVariable = "QUANTSHARP_LLM_KERNEL_SELFCHECK";

    public static int Run()
    {
        Console.WriteLine($"llm-kernel-selfcheck kernel={QKernels.Selected}");
        string? err = null;
        foreach (var row in KernelTests.Shapes())
        {
            err = KernelCheck.Check((string)row[0], (int)row[1], (int)row[2], [QKernels.Selected]);
            if (err != null) break;
        }
        Console.WriteLine(err ?? "llm-kernel-selfcheck ok");
        return err == null ? 0 : 1;
    }
}
