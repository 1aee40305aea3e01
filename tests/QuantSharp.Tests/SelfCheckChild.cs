using System.Diagnostics;

namespace QuantSharp.Tests;

/// <summary>
/// Starts this test assembly again with `dotnet exec` and itself as the startup hook, so a self-check selected by an
/// environment variable runs as the child's whole program; the ISA tests pass DOTNET_Enable… knobs to reach each
/// weaker kernel path as the process default.
/// </summary>
internal static class SelfCheckChild
{
    /// <summary>Runs the child with <paramref name="selfCheckVariable"/>=1, <paramref name="removed"/> unset and
    /// <paramref name="env"/> added; returns its exit code and stdout+stderr.</summary>
    public static (int Code, string Output) Run(string selfCheckVariable, string removed, IReadOnlyDictionary<string, string> env, string label)
    {
        string dll = typeof(SelfCheckChild).Assembly.Location;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(dll);
        psi.Environment["DOTNET_STARTUP_HOOKS"] = dll;
        psi.Environment[selfCheckVariable] = "1";
        psi.Environment.Remove(removed);
        psi.Environment["DOTNET_TieredPGO"] = "0";
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(true);
            throw new TimeoutException($"{label} child timed out");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
