using System.Reflection;
using QuantSharp.Graph;

namespace QuantSharp.Runtime;

/// <summary>
/// Maps (domain, op type, opset version) to a kernel type. <see cref="Default"/> holds every kernel in this
/// assembly marked with <see cref="OnnxOperatorAttribute"/>; users may register more.
/// </summary>
public sealed class OperatorRegistry
{
    private readonly record struct Entry(int Since, int Max, Func<OpKernel> Factory);

    private readonly Dictionary<(string Domain, string OpType), List<Entry>> _entries = new();

    private static readonly Lazy<OperatorRegistry> LazyDefault = new(() =>
    {
        var r = new OperatorRegistry();
        r.RegisterAssembly(typeof(OperatorRegistry).Assembly);
        return r;
    });

    public static OperatorRegistry Default => LazyDefault.Value;

    public void RegisterAssembly(Assembly assembly)
    {
        foreach (var t in assembly.GetTypes())
        {
            if (t.IsAbstract || !typeof(OpKernel).IsAssignableFrom(t)) continue;
            foreach (var a in t.GetCustomAttributes<OnnxOperatorAttribute>())
            {
                var ctor = t.GetConstructor(Type.EmptyTypes)
                    ?? throw new InvalidOperationException($"kernel {t.Name} needs a parameterless constructor");
                Register(a.Domain, a.OpType, a.SinceVersion, a.MaxVersion, () => (OpKernel)ctor.Invoke(null));
            }
        }
    }

    public void Register(string domain, string opType, int sinceVersion, int maxVersion, Func<OpKernel> factory)
    {
        domain = NormalizeDomain(domain);
        if (!_entries.TryGetValue((domain, opType), out var list)) _entries[(domain, opType)] = list = [];
        list.Add(new Entry(sinceVersion, maxVersion, factory));
    }

    public static string NormalizeDomain(string domain) => domain == "ai.onnx" ? "" : domain;

    /// <summary>Whether some kernel covers the op at that opset version.</summary>
    public bool IsSupported(string domain, string opType, long opset) => Find(domain, opType, opset) is not null;

    /// <summary>All registered (domain, op type) pairs.</summary>
    public IEnumerable<(string Domain, string OpType)> Operators => _entries.Keys;

    private Func<OpKernel>? Find(string domain, string opType, long opset)
    {
        if (!_entries.TryGetValue((NormalizeDomain(domain), opType), out var list)) return null;
        Entry? best = null;
        foreach (var e in list)
            if (opset >= e.Since && opset <= e.Max && (best is null || e.Since > best.Value.Since)) best = e;
        return best?.Factory;
    }

    /// <summary>The opset version a node runs under in <paramref name="model"/> (1 when the domain is not imported).</summary>
    public static int OpsetFor(Model model, Node node)
    {
        long? v = model.Opset(node.Domain);
        if (v is null && node.Domain == "com.microsoft") v = 1;
        return (int)Math.Clamp(v ?? 1, 1, int.MaxValue);
    }

    /// <summary>A new kernel instance for the node, or null when none is registered.</summary>
    public OpKernel? TryCreate(Model model, Node node)
    {
        int opset = OpsetFor(model, node);
        var f = Find(node.Domain, node.OpType, opset);
        if (f is null) return null;
        var k = f();
        k.Node = node;
        k.OpsetVersion = opset;
        return k;
    }

    /// <summary>Throws one error listing every node of the model (main graph) that no kernel covers.</summary>
    public void EnsureSupported(Model model)
    {
        var missing = new List<string>();
        foreach (var n in model.Graph.Nodes)
        {
            int opset = OpsetFor(model, n);
            if (Find(n.Domain, n.OpType, opset) is null)
                missing.Add($"'{n.Name}' ({(n.Domain.Length == 0 ? "" : n.Domain + ":")}{n.OpType}, opset {opset})");
        }
        if (missing.Count > 0)
        {
            var ops = missing.Select(m => m[(m.IndexOf('(') + 1)..m.IndexOf(',')]).Distinct();
            throw new UnsupportedOperatorException(
                $"unsupported operator(s) {string.Join(", ", ops)} in {missing.Count} node(s): {string.Join(", ", missing)}", missing);
        }
    }
}
