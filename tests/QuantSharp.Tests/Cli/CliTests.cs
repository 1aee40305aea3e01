using System.Text.Json;
using QuantSharp.Cli;
using QuantSharp.Data;
using QuantSharp.Onnx;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Cli;

/// <summary>The CLI's argument handling, its commands on small generated models, and its error contract.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("qs-cli");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    [Fact]
    public void VersionAndHelp()
    {
        var v = CliRunner.Run("--version");
        Assert.Equal(0, v.ExitCode);
        Assert.StartsWith("quantsharp ", v.Stdout);
        var h = CliRunner.Run("--help");
        Assert.Equal(0, h.ExitCode);
        foreach (var c in new[] { "inspect", "run", "eval" })
        {
            Assert.Contains(c, h.Stdout);
            var ch = CliRunner.Run(c, "--help");
            Assert.Equal(0, ch.ExitCode);
            Assert.Contains($"usage: quantsharp {c}", ch.Stdout);
            Assert.Contains("--verbose", ch.Stdout);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("frobnicate")]
    [InlineData("--frobnicate")]
    [InlineData("inspect")]
    [InlineData("inspect a.onnx b.onnx")]
    [InlineData("inspect a.onnx --colour")]
    [InlineData("run a.onnx")]
    [InlineData("run a.onnx --input")]
    [InlineData("run a.onnx --input x=a.npy -o out.txt")]
    [InlineData("eval a.onnx")]
    [InlineData("eval a.onnx --data mnist:x --batch 0")]
    [InlineData("eval a.onnx --data mnist:x --batch many")]
    [InlineData("eval a.onnx --data mnist:x --scale 1/0")]
    [InlineData("eval a.onnx --data mnist:x --scale abc")]
    [InlineData("eval a.onnx --data mnist:x --mean 1,,2")]
    [InlineData("eval a.onnx --data mnist:x --layout chw")]
    [InlineData("eval a.onnx --data mnist:x --data mnist:y")]
    [InlineData("eval a.onnx --data mnist:x --json=yes")]
    public void BadArguments_AreUsageErrors(string commandLine)
    {
        var args = commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var r = CliRunner.Run(args);
        if (args.Length == 0)
        {
            Assert.Equal(Program.ExitUsage, r.ExitCode);
            Assert.DoesNotContain("   at ", r.Stderr);
            return;
        }
        r.AssertOneLineError(Program.ExitUsage);
    }

    [Fact]
    public void Arguments_ParseFractionsListsAndNegativeValues()
    {
        Assert.Equal(1f / 255, CliArguments.ParseNumber("--scale", "1/255"));
        Assert.Equal(-0.5f, CliArguments.ParseNumber("--mean", "-0.5"));
        var a = CliArguments.Parse("eval", ["m.onnx", "--mean", "-1,0.5,1/2", "--std=2", "--json"],
            new QuantSharp.Cli.Commands.EvalCommand().Options);
        Assert.Equal(["m.onnx"], a.Positionals);
        Assert.Equal([-1f, 0.5f, 0.5f], a.Numbers("--mean")!);
        Assert.Equal([2f], a.Numbers("--std")!);
        Assert.True(a.Flag("--json"));
    }

    [Fact]
    public void Inspect_ReportsTypesOpsAndParameters()
    {
        var model = CliRunner.IdentityModel(_dir, "id.onnx", DataType.Float, null, 4);
        var r = CliRunner.Run("inspect", model);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("ir_version: 8", r.Stdout);
        Assert.Contains("ai.onnx 17", r.Stdout);
        Assert.Contains("float[N,4]", r.Stdout);
        Assert.Contains("Identity", r.Stdout);

        var j = CliRunner.Run("inspect", model, "--json");
        Assert.Equal(0, j.ExitCode);
        using var doc = JsonDocument.Parse(j.Stdout);
        var root = doc.RootElement;
        Assert.Equal(8, root.GetProperty("ir_version").GetInt64());
        Assert.Equal(17, root.GetProperty("opsets").GetProperty("ai.onnx").GetInt64());
        var input = root.GetProperty("inputs")[0];
        Assert.Equal("x", input.GetProperty("name").GetString());
        Assert.Equal("float", input.GetProperty("dtype").GetString());
        Assert.Equal("N", input.GetProperty("shape")[0].GetString());
        Assert.Equal(4, input.GetProperty("shape")[1].GetInt64());
        Assert.Equal(1, root.GetProperty("ops").GetProperty("Identity").GetInt32());
        Assert.Equal(0, root.GetProperty("parameters").GetInt64());
    }

    [Fact]
    public void Run_WritesOutputsFromNpyAndPbInputs()
    {
        var model = CliRunner.IdentityModel(_dir, "id.onnx", DataType.Float, null, 3);
        var x = new Tensor<float>([1, 2, 3, 4, 5, 6], [2, 3]);
        Npy.Write(P("x.npy"), x);
        var r = CliRunner.Run("run", model, "--input", "x=" + P("x.npy"), "-o", P("out.npz"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var got = Npz.Read(P("out.npz"));
        Assert.Equal("y", got.Single().Name);
        Assert.Equal(x.Data, got[0].Tensor.As<float>().Data);
        Assert.Equal([2, 3], got[0].Tensor.Shape);

        // A .pb file carries its input's name, so NAME= may be left out.
        TensorProtoIO.WriteFile(P("x.pb"), "x", x);
        var r2 = CliRunner.Run("run", model, "-i", P("x.pb"), "-o", P("out.npy"));
        Assert.True(r2.ExitCode == 0, r2.Stderr);
        Assert.Equal(x.Data, Npy.Read(P("out.npy")).As<float>().Data);
        Assert.Empty(CliRunner.FilesExcept(_dir, "id.onnx", "x.npy", "x.pb", "out.npz", "out.npy"));
    }

    [Fact]
    public void Eval_ReportsAccuracyAndTimingsAsJson()
    {
        // Identity "logits": the argmax of each row is its predicted class; 7 of 10 labels agree.
        var model = CliRunner.IdentityModel(_dir, "id.onnx", DataType.Float, null, 4);
        var x = new float[40];
        var y = new long[10];
        for (int i = 0; i < 10; i++)
        {
            x[i * 4 + i % 4] = 1;
            y[i] = i < 7 ? i % 4 : (i + 1) % 4;
        }
        Npz.Write(P("d.npz"), [("x", new Tensor<float>(x, [10, 4])), ("y", new Tensor<long>(y, [10]))]);
        var r = CliRunner.Run("eval", model, "--data", "npz:" + P("d.npz"), "--batch", "3", "--threads", "1", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var j = doc.RootElement;
        Assert.Equal(0.7, j.GetProperty("accuracy").GetDouble(), 9);
        Assert.Equal(10, j.GetProperty("samples").GetInt32());
        Assert.Equal(3, j.GetProperty("batch").GetInt32());
        Assert.Equal(1, j.GetProperty("threads").GetInt32());
        Assert.Equal(4, j.GetProperty("batches").GetInt32());
        Assert.True(j.GetProperty("latency_ms_p50").GetDouble() >= 0);
        Assert.True(j.GetProperty("latency_ms_p90").GetDouble() >= j.GetProperty("latency_ms_p50").GetDouble());
        Assert.True(j.GetProperty("throughput_per_s").GetDouble() > 0);

        var text = CliRunner.Run("eval", model, "--data", "npz:" + P("d.npz"), "--limit", "5");
        Assert.True(text.ExitCode == 0, text.Stderr);
        Assert.Contains("accuracy:    100.00 % top-1 (5/5)", text.Stdout);
    }

    [Fact]
    public void Eval_IntegerTensorDataFeedsAFloatModel()
    {
        var model = CliRunner.IdentityModel(_dir, "id.onnx", DataType.Float, null, 3);
        var x = new byte[] { 9, 1, 2, 0, 200, 3, 4, 5, 6 };
        Npz.Write(P("u8.npz"), [("x", new Tensor<byte>(x, [3, 3])), ("y", new Tensor<long>([0, 1, 1], [3]))]);
        var r = CliRunner.Run("eval", model, "--data", "npz:" + P("u8.npz"), "--batch", "2", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(2, doc.RootElement.GetProperty("correct").GetInt32());
        Assert.Equal([0, 1, 2], doc.RootElement.GetProperty("top1_first").EnumerateArray().Select(v => v.GetInt32()));
    }

    [Fact]
    public void Eval_ProgressBarGoesToATerminalStderrOnly()
    {
        var model = CliRunner.IdentityModel(_dir, "id.onnx", DataType.Float, null, 4);
        var data = "npz:" + WriteDataset();
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(0, QuantSharp.Cli.Program.Run(["eval", model, "--data", data, "--json"], o, e, stderrIsTerminal: true));
        Assert.Contains("\r[", e.ToString());
        using (JsonDocument.Parse(o.ToString())) { }
        Assert.DoesNotContain("\r", o.ToString());
        var redirected = CliRunner.Run("eval", model, "--data", data, "--json");
        Assert.DoesNotContain("\r", redirected.Stderr);
    }

    [Fact]
    public void Eval_FixedBatchOfOne_RunsBatchOneAndSaysSo()
    {
        var model = CliRunner.IdentityModel(_dir, "id1.onnx", DataType.Float, 1, 4);
        var x = new float[16];
        for (int i = 0; i < 4; i++) x[i * 4 + i] = 1;
        Npz.Write(P("d.npz"), [("x", new Tensor<float>(x, [4, 4])), ("y", new Tensor<long>([0, 1, 2, 3], [4]))]);
        var r = CliRunner.Run("eval", model, "--data", "npz:" + P("d.npz"), "--batch", "8", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(1, doc.RootElement.GetProperty("batch").GetInt32());
        Assert.Equal(1.0, doc.RootElement.GetProperty("accuracy").GetDouble());
        Assert.Contains("fixed at 1", r.Stderr);
    }

    // ---- bad input: exit 1, one line, no stack trace, no output file left ----

    [Fact]
    public void NonexistentModel()
    {
        foreach (var cmd in new[] { "inspect", "run", "eval" })
        {
            string[] args = cmd switch
            {
                "inspect" => ["inspect", P("nope.onnx")],
                "run" => ["run", P("nope.onnx"), "--input", "x=" + WriteX(), "-o", P("out.npz")],
                _ => ["eval", P("nope.onnx"), "--data", "npz:" + WriteDataset()],
            };
            var line = CliRunner.Run(args).AssertOneLineError();
            Assert.Contains("nope.onnx", line);
        }
        Assert.False(File.Exists(P("out.npz")));
    }

    [Fact]
    public void TruncatedAndCorruptModels()
    {
        var model = CliRunner.IdentityModel(_dir, "id.onnx", DataType.Float, null, 3);
        var bytes = File.ReadAllBytes(model);
        File.WriteAllBytes(P("truncated.onnx"), bytes[..(bytes.Length * 2 / 3)]);
        var rng = new Random(7);
        var junk = new byte[4096];
        rng.NextBytes(junk);
        File.WriteAllBytes(P("junk.onnx"), junk);
        File.WriteAllBytes(P("empty.onnx"), []);
        string x = WriteX();
        foreach (var bad in new[] { "truncated.onnx", "junk.onnx", "empty.onnx" })
        {
            CliRunner.Run("inspect", P(bad)).AssertOneLineError();
            CliRunner.Run("run", P(bad), "--input", "x=" + x, "-o", P("out.npz")).AssertOneLineError();
            Assert.False(File.Exists(P("out.npz")));
        }
        Assert.Empty(CliRunner.FilesExcept(_dir, "id.onnx", "truncated.onnx", "junk.onnx", "empty.onnx", "x.npy"));
    }

    [Fact]
    public void UnsupportedOps_AreAllNamed()
    {
        var model = CliRunner.UnsupportedOpModel(_dir);
        var line = CliRunner.Run("run", model, "--input", "x=" + WriteX([2]), "-o", P("out.npz")).AssertOneLineError();
        Assert.Contains("first_weird_node", line);
        Assert.Contains("second_weird_node", line);
        Assert.Contains("FrobnicateA", line);
        Assert.Contains("FrobnicateB", line);
        Assert.DoesNotContain("fine_node", line);
        Assert.False(File.Exists(P("out.npz")));
        var eval = CliRunner.Run("eval", model, "--data", "npz:" + WriteDataset()).AssertOneLineError();
        Assert.Contains("FrobnicateB", eval);

        // inspect still describes the model and lists what the runtime lacks.
        var r = CliRunner.Run("inspect", model);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("unsupported by the runtime: FrobnicateA (opset 17), FrobnicateB (opset 17)", r.Stdout);
    }

    [Fact]
    public void Run_WrongInputNameShapeOrDtype()
    {
        var model = CliRunner.IdentityModel(_dir, "id.onnx", DataType.Float, null, 3);
        string good = WriteX();
        Npy.Write(P("wrongshape.npy"), new Tensor<float>(new float[8], [2, 4]));
        Npy.Write(P("wrongdtype.npy"), new Tensor<double>(new double[6], [2, 3]));
        Npy.Write(P("wrongrank.npy"), new Tensor<float>(new float[6], [6]));
        var cases = new (string Input, string Expect)[]
        {
            ("nosuch=" + good, "nosuch"),
            ("x=" + P("wrongshape.npy"), "shape"),
            ("x=" + P("wrongrank.npy"), "shape"),
            ("x=" + P("wrongdtype.npy"), "float"),
            ("x=" + P("missing.npy"), "missing.npy"),
            ("x=" + P("id.onnx"), "id.onnx"),
        };
        foreach (var (input, expect) in cases)
        {
            var line = CliRunner.Run("run", model, "--input", input, "-o", P("out.npz")).AssertOneLineError();
            Assert.Contains(expect, line);
            Assert.False(File.Exists(P("out.npz")), input);
        }
        // An output folder that does not exist, and a second input the model lacks.
        CliRunner.Run("run", model, "--input", "x=" + good, "-o", P("no/such/dir/out.npz")).AssertOneLineError();
        CliRunner.Run("run", model, "--input", "x=" + good, "--input", "z=" + good, "-o", P("out.npz")).AssertOneLineError();
        Assert.Empty(CliRunner.FilesExcept(_dir, "id.onnx", "x.npy", "wrongshape.npy", "wrongdtype.npy", "wrongrank.npy"));
    }

    [Fact]
    public void Eval_BadDatasetSpecs()
    {
        var model = CliRunner.IdentityModel(_dir, "id.onnx", DataType.Float, null, 4);
        File.WriteAllBytes(P("bad.npz"), [1, 2, 3, 4, 5]);
        foreach (var spec in new[] { "nosuchscheme:abc", "noscheme", "mnist:" + P("nodir"), "npz:" + P("none.npz"), "npz:" + P("bad.npz"), "idx:" + P("x.idx") })
        {
            var line = CliRunner.Run("eval", model, "--data", spec, "--json").AssertOneLineError();
            Assert.True(line.Length > "quantsharp: error: ".Length + 5, line);
        }
    }

    [Fact]
    public void Verbose_ShowsTheStackTrace()
    {
        var r = CliRunner.Run("inspect", P("junk.onnx"), "--verbose");
        Assert.Equal(Program.ExitError, r.ExitCode);
        Assert.StartsWith("quantsharp: error: ", r.Stderr);
        Assert.Contains("   at ", r.Stderr);
    }

    private string WriteX(int[]? shape = null)
    {
        shape ??= [2, 3];
        var t = new Tensor<float>(new float[ShapeUtil.Product(shape)], shape);
        Npy.Write(P("x.npy"), t);
        return P("x.npy");
    }

    private string WriteDataset()
    {
        string path = P("ds.npz");
        if (!File.Exists(path))
            Npz.Write(path, [("x", new Tensor<float>(new float[8], [2, 4])), ("y", new Tensor<long>([0, 1], [2]))]);
        return path;
    }
}
