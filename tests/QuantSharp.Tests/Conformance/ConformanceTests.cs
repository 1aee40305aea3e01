using QuantSharp.Tests.TestData;
using Xunit.Abstractions;

namespace QuantSharp.Tests.Conformance;

/// <summary>
/// Every ONNX node test of every available set (three ONNX releases in the shared folder, Debian's
/// libonnx-testdata) through the reader and the runtime. Fails on any failure of a case whose ops are all
/// supported unless known_failures.txt lists it with a reason, and on listed cases that no longer fail.
/// </summary>
public sealed class ConformanceTests(ITestOutputHelper output)
{
    public static string KnownFailuresPath => Path.Combine(TestPaths.RepoRoot, "tests", "QuantSharp.Tests", "Conformance", "known_failures.txt");

    [Fact]
    public void OnnxNodeTests_PassOrAreKnownFailures()
    {
        var cases = ConformanceData.Cases();
        Assert.NotEmpty(cases);
        var known = KnownFailures.Load(KnownFailuresPath);
        var attribution = new OpAttribution(TestPaths.SharedFile("onnx-conformance", "selected_tests_by_op_v1.22.0.json"));

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var results = new CaseResult[cases.Count];
        Parallel.For(0, cases.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) },
            i => results[i] = ConformanceRunner.Run(cases[i], attribution));
        sw.Stop();

        var knownIds = new HashSet<string>(known.Keys, StringComparer.Ordinal);
        string report = ConformanceReport.Markdown(results, knownIds, sw.Elapsed);
        output.WriteLine(report);
        var dir = TestPaths.NewTempDir("qs-conformance");
        File.WriteAllText(Path.Combine(dir, "conformance.md"), report);
        output.WriteLine($"report written to {Path.Combine(dir, "conformance.md")}");
        if (Environment.GetEnvironmentVariable("QUANTSHARP_WRITE_CONFORMANCE") == "1")
            File.WriteAllText(Path.Combine(TestPaths.RepoRoot, "docs", "conformance.md"), report);

        foreach (var r in results.OrderByDescending(r => r.Elapsed).Take(5))
            output.WriteLine($"slowest: {r.Id} {r.Elapsed.TotalSeconds:0.00} s");

        var byId = results.ToDictionary(r => r.Id, StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (var r in results.Where(r => r.Outcome == CaseOutcome.Fail && !known.ContainsKey(r.Id)).OrderBy(r => r.Id, StringComparer.Ordinal))
            problems.Add($"{r.Id}  fails and is not in known_failures.txt: {r.Reason}");
        foreach (var (id, reason) in known.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            // Entries for sets that are not installed here (libonnx-testdata) cannot be checked.
            if (!byId.TryGetValue(id, out var r)) continue;
            if (r.Outcome == CaseOutcome.Pass) problems.Add($"{id}  is listed in known_failures.txt ({reason}) but now passes: remove it");
            else if (r.Outcome == CaseOutcome.Unsupported) problems.Add($"{id}  is listed in known_failures.txt but is unsupported ({r.Reason}): remove it");
        }
        foreach (var p in problems) output.WriteLine(p);
        Assert.True(problems.Count == 0, $"{problems.Count} conformance problem(s):\n{string.Join("\n", problems)}");
    }

    /// <summary>A kernel that blocks until released: stands in for a pathological case.</summary>
    private sealed class HangKernel(ManualResetEventSlim release) : QuantSharp.Runtime.OpKernel
    {
        public override void Compute(QuantSharp.Runtime.KernelContext ctx)
        {
            release.Wait();
            var x = ctx.Input(0);
            var y = ctx.Output(0, x.DataType, (int[])x.Shape.Clone());
            Array.Copy(x.Buffer, y.Buffer, x.Length);
        }
    }

    [Fact]
    public void HangingCase_TimesOutAndTheRunGoesOn()
    {
        using var release = new ManualResetEventSlim(false);
        const string domain = "quantsharp.test.hang";
        // A registry of its own, so that tests running in parallel never see the extra kernel.
        var registry = new QuantSharp.Runtime.OperatorRegistry();
        registry.RegisterAssembly(typeof(QuantSharp.Runtime.OperatorRegistry).Assembly);
        registry.Register(domain, "Hang", 1, int.MaxValue, () => new HangKernel(release));
        var dir = TestPaths.NewTempDir("qs-hang");
        try
        {
            var g = new QuantSharp.Graph.Graph { Name = "hang" };
            var e = g.Edit();
            var type = QuantSharp.Graph.TensorTypeInfo.FromShape(QuantSharp.Tensors.DataType.Float, [2]);
            var x = e.AddInput("x", type);
            var y = e.CreateValue("y", type);
            e.AddNode("Hang", [x], name: "hang", domain: domain, outputs: [y]);
            e.AddOutput(y);
            var m = new QuantSharp.Graph.Model(g) { IrVersion = 8 };
            m.SetOpset("", 17);
            m.SetOpset(domain, 1);
            var caseDir = Path.Combine(dir, "test_hang");
            var ds = Path.Combine(caseDir, "test_data_set_0");
            Directory.CreateDirectory(ds);
            QuantSharp.Onnx.OnnxModelIO.Save(m, Path.Combine(caseDir, "model.onnx"));
            var t = new QuantSharp.Tensors.Tensor<float>([1f, 2f], [2]);
            QuantSharp.Onnx.TensorProtoIO.WriteFile(Path.Combine(ds, "input_0.pb"), "x", t);
            QuantSharp.Onnx.TensorProtoIO.WriteFile(Path.Combine(ds, "output_0.pb"), "y", t);

            var c = new ConformanceCase("test", "test_hang", caseDir);
            var r = ConformanceRunner.Run(c, new OpAttribution(null), TimeSpan.FromMilliseconds(300), registry);
            Assert.Equal(CaseOutcome.Fail, r.Outcome);
            Assert.Contains("timed out", r.Reason);
            release.Set();
            Assert.Equal(CaseOutcome.Pass, ConformanceRunner.Run(c, new OpAttribution(null), TimeSpan.FromSeconds(30), registry).Outcome);
        }
        finally
        {
            release.Set();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void KnownFailures_AreWellFormed()
    {
        var known = KnownFailures.Load(KnownFailuresPath);
        foreach (var (id, reason) in known)
        {
            Assert.Contains('/', id);
            Assert.False(string.IsNullOrWhiteSpace(reason), $"{id} has no reason");
            Assert.Contains(id[..id.IndexOf('/')], ConformanceData.Sets);
        }
    }

    [Fact]
    public void Comparison_FollowsOnnxTolerances()
    {
        var e = new QuantSharp.Tensors.Tensor<float>([1f, 100f, float.NaN, float.PositiveInfinity], [4]);
        Assert.Null(TensorComparison.Compare(new QuantSharp.Tensors.Tensor<float>([1.0009f, 100.09f, float.NaN, float.PositiveInfinity], [4]), e));
        Assert.NotNull(TensorComparison.Compare(new QuantSharp.Tensors.Tensor<float>([1.002f, 100f, float.NaN, float.PositiveInfinity], [4]), e));
        Assert.NotNull(TensorComparison.Compare(new QuantSharp.Tensors.Tensor<float>([1f, 100f, 0f, float.PositiveInfinity], [4]), e));
        Assert.NotNull(TensorComparison.Compare(new QuantSharp.Tensors.Tensor<float>([1f, 100f, float.NaN, float.NegativeInfinity], [4]), e));
        Assert.NotNull(TensorComparison.Compare(new QuantSharp.Tensors.Tensor<float>([1f, 100f, float.NaN, float.PositiveInfinity], [2, 2]), e));
        Assert.NotNull(TensorComparison.Compare(new QuantSharp.Tensors.Tensor<double>([1, 100, double.NaN, double.PositiveInfinity], [4]), e));
        var i = new QuantSharp.Tensors.Tensor<long>([long.MaxValue, 3], [2]);
        Assert.Null(TensorComparison.Compare(new QuantSharp.Tensors.Tensor<long>([long.MaxValue, 3], [2]), i));
        Assert.NotNull(TensorComparison.Compare(new QuantSharp.Tensors.Tensor<long>([long.MaxValue - 1, 3], [2]), i));
    }

    [Fact]
    public void OpAttribution_UsesOnnxMapThenTestName()
    {
        var a = new OpAttribution(TestPaths.SharedFile("onnx-conformance", "selected_tests_by_op_v1.22.0.json"));
        Assert.Equal("Add", a.OpOf("test_add_bcast", null));
        Assert.Equal("QuantizeLinear", a.OpOf("test_quantizelinear", null));
        Assert.Equal("ReduceMean", a.OpOf("test_reduce_mean_default_axes_keepdims_example", null));
        Assert.Equal("MatMulInteger", a.OpOf("test_matmulinteger", null));
    }
}

/// <summary>known_failures.txt: one "set/test  reason" per line; '#' starts a comment line.</summary>
public static class KnownFailures
{
    public static IReadOnlyDictionary<string, string> Load(string path)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!File.Exists(path)) return d;
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            int ws = line.IndexOfAny([' ', '\t']);
            string id = ws < 0 ? line : line[..ws];
            string reason = ws < 0 ? "" : line[ws..].Trim();
            if (reason.Length == 0) throw new InvalidDataException($"{path}:{lineNo}: '{id}' has no reason");
            if (!d.TryAdd(id, reason)) throw new InvalidDataException($"{path}:{lineNo}: '{id}' is listed twice");
        }
        return d;
    }
}
