using System.Text;
using System.Text.Json;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Runtime;
using QuantSharp.Tensors;
using QuantSharp.Tests.TestData;

namespace QuantSharp.Tests.Conformance;

public enum CaseOutcome { Pass, Fail, Unsupported }

/// <summary>The result of one case: outcome, the op it tests, and a one-line reason for failures/unsupported.</summary>
public sealed record CaseResult(ConformanceCase Case, string Op, CaseOutcome Outcome, string Reason, TimeSpan Elapsed)
{
    /// <summary>"set/test", as written in known_failures.txt.</summary>
    public string Id => $"{Case.Set}/{Case.Name}";
}

/// <summary>
/// Runs ONNX node tests through <see cref="OnnxModelIO"/> and <see cref="InferenceSession"/>. A case whose model
/// uses an op that <see cref="OperatorRegistry.Default"/> does not cover at the model's opset is "unsupported",
/// not a failure; any other error or mismatch fails it.
/// </summary>
public static class ConformanceRunner
{
    /// <summary>Guard against one pathological case hanging the run (it keeps its thread; the run moves on).</summary>
    public static readonly TimeSpan DefaultCaseTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Runs one case with the kernels of <paramref name="registry"/> (default: <see cref="OperatorRegistry.Default"/>).</summary>
    public static CaseResult Run(ConformanceCase c, OpAttribution ops, TimeSpan? timeout = null, OperatorRegistry? registry = null)
    {
        var caseTimeout = timeout ?? DefaultCaseTimeout;
        registry ??= OperatorRegistry.Default;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        string op = ops.OpOf(c.Name, null);
        Model model;
        try
        {
            model = OnnxModelIO.Load(c.ModelPath);
        }
        catch (Exception e)
        {
            return new CaseResult(c, op, CaseOutcome.Fail, "load: " + OneLine(e.Message), sw.Elapsed);
        }
        op = ops.OpOf(c.Name, model);
        var missing = model.Graph.Nodes
            .Where(n => !registry.IsSupported(n.Domain, n.OpType, OperatorRegistry.OpsetFor(model, n)))
            .Select(n => $"{(n.Domain.Length == 0 ? "" : n.Domain + ":")}{n.OpType}-{OperatorRegistry.OpsetFor(model, n)}")
            .Distinct().ToList();
        if (missing.Count > 0) return new CaseResult(c, op, CaseOutcome.Unsupported, string.Join(", ", missing), sw.Elapsed);
        // Every op has a kernel, so from here a case that cannot run is a failure of a supported op: the runtime
        // computes tensors only, so sequence, map and optional graph inputs/outputs (no tensor type) and element
        // types tensors cannot hold (float8, float4, int2 …) fail, and known_failures.txt must list them with a reason.
        var nonTensor = model.Graph.RuntimeInputs.Concat(model.Graph.Outputs).Where(v => v.Type is null).Select(v => $"'{v.Name}'").ToList();
        if (nonTensor.Count > 0)
            return new CaseResult(c, op, CaseOutcome.Fail, $"non-tensor graph input/output {string.Join(", ", nonTensor)}", sw.Elapsed);
        var badTypes = model.Graph.RuntimeInputs.Concat(model.Graph.Outputs)
            .Where(v => v.Type is { } t && !Representable(t.ElementType)).Select(v => $"'{v.Name}' {v.Type}").ToList();
        if (badTypes.Count > 0)
            return new CaseResult(c, op, CaseOutcome.Fail, $"data type without a tensor representation: {string.Join(", ", badTypes)}", sw.Elapsed);

        // A dedicated background thread, so that the timeout holds even if the case never returns.
        string? failure = null;
        var worker = new Thread(() =>
        {
            try { failure = RunDataSets(c, model, registry); }
            catch (Exception e) { failure = $"{e.GetType().Name}: {OneLine(e.Message)}"; }
        }, 64 << 20) { IsBackground = true, Name = c.ToString() };
        worker.Start();
        if (!worker.Join(caseTimeout))
            return new CaseResult(c, op, CaseOutcome.Fail, $"timed out after {caseTimeout.TotalSeconds:0.#} s", sw.Elapsed);
        return new CaseResult(c, op, failure is null ? CaseOutcome.Pass : CaseOutcome.Fail, failure ?? "", sw.Elapsed);
    }

    /// <summary>Null when every data set's outputs match, else the first failure.</summary>
    private static string? RunDataSets(ConformanceCase c, Model model, OperatorRegistry registry)
    {
        var dataSets = c.DataSets();
        if (dataSets.Count == 0) return "no test_data_set_* folder";
        InferenceSession session;
        try
        {
            // The test data decide the shapes: some older tests declare input shapes their data do not have
            // (CastLike's 'like'), and ONNX's own runner does not check declarations.
            session = new InferenceSession(model, new SessionOptions { IntraOpThreads = 1, ValidateInputs = false, Registry = registry });
        }
        catch (Exception e)
        {
            return "session: " + OneLine(e.Message);
        }
        var inputs = session.Inputs;
        var outputs = session.Outputs;
        foreach (var ds in dataSets)
        {
            string dsName = Path.GetFileName(ds.Dir);
            var feeds = new Dictionary<string, Tensor>();
            var expected = new List<Tensor>();
            try
            {
                var inFiles = ds.Inputs;
                var outFiles = ds.Outputs;
                if (inFiles.Count > inputs.Count) return $"{dsName}: {inFiles.Count} input files but the model has {inputs.Count} inputs";
                for (int i = 0; i < inFiles.Count; i++)
                    feeds[inputs[i].Name] = BFloat16FromBits(TensorProtoIO.ReadFile(inFiles[i]).Tensor, inputs[i].Type);
                if (outFiles.Count != outputs.Count) return $"{dsName}: {outFiles.Count} output files but the model has {outputs.Count} outputs";
                for (int i = 0; i < outFiles.Count; i++)
                    expected.Add(BFloat16FromBits(TensorProtoIO.ReadFile(outFiles[i]).Tensor, outputs[i].Type));
            }
            catch (Exception e)
            {
                return $"{dsName}: reading test data: {OneLine(e.Message)}";
            }
            IReadOnlyDictionary<string, Tensor> got;
            try
            {
                got = session.Run(feeds);
            }
            catch (Exception e)
            {
                return $"{dsName}: run: {(e is QuantSharpException ? "" : e.GetType().Name + ": ")}{OneLine(e.Message)}";
            }
            for (int i = 0; i < outputs.Count; i++)
            {
                if (!got.TryGetValue(outputs[i].Name, out var actual)) return $"{dsName}: output '{outputs[i].Name}' missing";
                var why = TensorComparison.Compare(actual, expected[i]);
                if (why is not null) return $"{dsName}: output '{outputs[i].Name}': {why}";
            }
        }
        return null;
    }

    private static bool Representable(DataType t)
    {
        try
        {
            DataTypes.ClrType(t);
            return true;
        }
        catch (QuantSharpException)
        {
            return false;
        }
    }

    /// <summary>
    /// ONNX releases up to 1.12 stored bfloat16 test tensors as uint16 bit patterns (NumPy has no bfloat16); read
    /// them as the bfloat16 values they encode when the model declares that value bfloat16.
    /// </summary>
    private static Tensor BFloat16FromBits(Tensor t, TensorTypeInfo? declared)
    {
        if (declared?.ElementType != DataType.BFloat16 || t is not Tensor<ushort> bits) return t;
        return new Tensor<BFloat16>(bits.Data.Select(BFloat16.FromBits).ToArray(), (int[])t.Shape.Clone());
    }

    internal static string OneLine(string s) =>
        string.Join(" ", s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}

/// <summary>
/// Which op a test is about: ONNX's own op → tests map where it lists the test, else the longest op name that
/// prefixes the test name (ignoring case and underscores: test_reduce_mean_x → ReduceMean), else the model's
/// first op.
/// </summary>
public sealed class OpAttribution
{
    private readonly Dictionary<string, string> _byTest = new(StringComparer.Ordinal);
    private readonly List<(string Key, string Op)> _opKeys;

    public OpAttribution(string? byOpJsonPath)
    {
        var known = new HashSet<string>(StringComparer.Ordinal);
        if (byOpJsonPath is not null && File.Exists(byOpJsonPath))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(byOpJsonPath));
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                known.Add(p.Name);
                foreach (var t in p.Value.EnumerateArray()) _byTest.TryAdd(t.GetString()!, p.Name);
            }
        }
        foreach (var (domain, op) in OperatorRegistry.Default.Operators) if (domain.Length == 0) known.Add(op);
        _opKeys = known.Select(o => (Key: Normalize(o), Op: o)).OrderByDescending(x => x.Key.Length).ToList();
    }

    private static string Normalize(string s) => s.Replace("_", "").ToLowerInvariant();

    public string OpOf(string testName, Model? model)
    {
        if (_byTest.TryGetValue(testName, out var op)) return op;
        string key = Normalize(testName.StartsWith("test_", StringComparison.Ordinal) ? testName[5..] : testName);
        var candidates = _opKeys.AsEnumerable();
        if (model is not null)
            candidates = candidates.Concat(model.Graph.Nodes.Select(n => (Key: Normalize(n.OpType), Op: n.OpType))).OrderByDescending(x => x.Key.Length);
        foreach (var (k, o) in candidates)
            if (k.Length > 0 && key.StartsWith(k, StringComparison.Ordinal)) return o;
        return model is { Graph.Nodes.Count: > 0 } ? model.Graph.Nodes[0].OpType : "(unknown)";
    }
}

/// <summary>The per-op table and per-set totals, as Markdown.</summary>
public static class ConformanceReport
{
    public static string Markdown(IReadOnlyList<CaseResult> results, ISet<string> knownFailures, TimeSpan elapsed)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# ONNX operator conformance");
        sb.AppendLine();
        sb.AppendLine("Generated by `tests/QuantSharp.Tests/Conformance/ConformanceTests.cs` (set `QUANTSHARP_WRITE_CONFORMANCE=1` to rewrite this file).");
        sb.AppendLine($"Outputs are compared with ONNX's backend-test tolerances (rtol {TensorComparison.Rtol:G}, atol {TensorComparison.Atol:G}; exact for integers, bools and strings).");
        sb.AppendLine("A case is *unsupported* when its model uses an op the runtime has no kernel for at that opset; *known* failures (including values that tensors cannot hold: sequences, optionals, float8 …) are listed with their reason in `known_failures.txt`.");
        sb.AppendLine();
        sb.AppendLine("| set | cases | pass | fail | known failures | unsupported |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|");
        foreach (var g in results.GroupBy(r => r.Case.Set).OrderBy(g => g.Key, StringComparer.Ordinal))
            sb.AppendLine(Row(g.Key, g, knownFailures, withCount: true));
        sb.AppendLine(Row("**all**", results, knownFailures, withCount: true));
        sb.AppendLine();
        sb.AppendLine("| op | pass | fail | known failures | unsupported |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var g in results.GroupBy(r => r.Op).OrderBy(g => g.Key, StringComparer.Ordinal))
            sb.AppendLine(Row(g.Key, g, knownFailures, withCount: false));
        var missing = results.Where(r => r.Outcome == CaseOutcome.Unsupported)
            .SelectMany(r => r.Reason.StartsWith("non-tensor", StringComparison.Ordinal) ? ["sequence/optional values"]
                : r.Reason.StartsWith("data type", StringComparison.Ordinal) ? ["data types without a tensor representation"]
                : r.Reason.Split(", "))
            .GroupBy(x => x).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("## What the unsupported cases need");
            sb.AppendLine();
            sb.AppendLine("Op-opset pairs (or value kinds) without a kernel, with the number of cases that need each:");
            sb.AppendLine();
            sb.AppendLine(string.Join(", ", missing.Select(g => $"{g.Key} ({g.Count()})")));
        }
        var unexpected = results.Where(r => r.Outcome == CaseOutcome.Fail && !knownFailures.Contains(r.Id)).ToList();
        if (unexpected.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("## Unexpected failures");
            sb.AppendLine();
            foreach (var r in unexpected.OrderBy(r => r.Id, StringComparer.Ordinal)) sb.AppendLine($"- `{r.Id}`: {r.Reason}");
        }
        sb.AppendLine();
        sb.AppendLine($"{results.Count} cases in {elapsed.TotalSeconds:0.0} s.");
        return sb.ToString();
    }

    private static string Row(string title, IEnumerable<CaseResult> rs, ISet<string> known, bool withCount)
    {
        var l = rs.ToList();
        int pass = l.Count(r => r.Outcome == CaseOutcome.Pass);
        int knownFail = l.Count(r => r.Outcome == CaseOutcome.Fail && known.Contains(r.Id));
        int fail = l.Count(r => r.Outcome == CaseOutcome.Fail) - knownFail;
        int unsup = l.Count(r => r.Outcome == CaseOutcome.Unsupported);
        return withCount ? $"| {title} | {l.Count} | {pass} | {fail} | {knownFail} | {unsup} |" : $"| {title} | {pass} | {fail} | {knownFail} | {unsup} |";
    }
}
