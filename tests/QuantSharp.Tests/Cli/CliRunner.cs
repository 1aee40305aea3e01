using QuantSharp.Cli;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Cli;

/// <summary>Runs the `quantsharp` CLI in-process and captures its exit code and output.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] ErrorLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Asserts the contract for a failed command: the exit code, one "quantsharp: error:" line, no stack trace.</summary>
    public string AssertOneLineError(int exitCode = Program.ExitError)
    {
        Assert.True(ExitCode == exitCode, $"exit code {ExitCode}, expected {exitCode}; stderr: {Stderr}");
        var lines = ErrorLines.Where(l => !l.StartsWith("quantsharp: note:", StringComparison.Ordinal)).ToArray();
        Assert.True(lines.Length == 1, $"expected one error line, got: {Stderr}");
        Assert.StartsWith("quantsharp: error: ", lines[0]);
        Assert.DoesNotContain("   at ", Stderr);
        Assert.DoesNotContain("internal error", Stderr);
        return lines[0];
    }
}

public static class CliRunner
{
    public static CliResult Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int rc = Program.Run(args, o, e);
        return new CliResult(rc, o.ToString(), e.ToString());
    }

    /// <summary>y = Identity(x) with x float[dims] (a dimension written as null is symbolic "N").</summary>
    public static string IdentityModel(string dir, string name, DataType dt, params long?[] dims)
    {
        var g = new Graph.Graph { Name = "identity" };
        var e = g.Edit();
        var shape = dims.Select(d => d is long v ? new Dimension(v) : new Dimension(null, "N")).ToArray();
        var x = e.AddInput("x", new TensorTypeInfo(dt, shape));
        var y = e.CreateValue("y", new TensorTypeInfo(dt, shape));
        e.AddNode("Identity", [x], name: "copy", outputs: [y]);
        e.AddOutput(y);
        var m = new Model(g) { ProducerName = "quantsharp-tests", IrVersion = 8 };
        m.SetOpset("", 17);
        string path = Path.Combine(dir, name);
        OnnxModelIO.Save(m, path);
        return path;
    }

    /// <summary>A model with two nodes of ops no runtime has ("FrobnicateA", "FrobnicateB") between x and y.</summary>
    public static string UnsupportedOpModel(string dir)
    {
        var g = new Graph.Graph { Name = "unsupported" };
        var e = g.Edit();
        var type = TensorTypeInfo.FromShape(DataType.Float, [2]);
        var x = e.AddInput("x", type);
        var a = e.AddNode("FrobnicateA", [x], name: "first_weird_node");
        var b = e.AddNode("FrobnicateB", [a.Outputs[0]], name: "second_weird_node");
        var c = e.AddNode("Identity", [b.Outputs[0]], name: "fine_node");
        e.AddOutput(c.Outputs[0]!);
        var m = new Model(g) { IrVersion = 8 };
        m.SetOpset("", 17);
        string path = Path.Combine(dir, "unsupported.onnx");
        OnnxModelIO.Save(m, path);
        return path;
    }

    /// <summary>Files in <paramref name="dir"/> other than the ones the test created itself.</summary>
    public static string[] FilesExcept(string dir, params string[] keep) =>
        Directory.GetFiles(dir).Select(Path.GetFileName).Where(f => !keep.Contains(f)).Select(f => f!).ToArray();
}
