using System.Runtime.InteropServices;
using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Passes;

/// <summary>
/// Size passes run on a quantized model before it is written. Neither changes what the model computes: identical
/// constants are shared, and the values the quantizer created get short names. ONNX stores every name in full at
/// each reference (producer output and every consumer input), so on small models names are a large part of the file.
/// </summary>
public static class QdqCompaction
{
    /// <summary>
    /// Makes every reader of an initializer that is bit-for-bit equal (same element type, shape and bytes) to an
    /// earlier one read the earlier one, then removes the copies. Initializers that are also graph inputs (which a
    /// caller may override) or graph outputs are left alone. Returns the number removed.
    /// </summary>
    public static int ShareIdenticalInitializers(Model model)
    {
        var g = model.Graph;
        var e = g.Edit();
        var inputs = new HashSet<Value>(g.Inputs);
        var outputs = new HashSet<Value>(g.Outputs);
        var kept = new Dictionary<string, List<Value>>(StringComparer.Ordinal);
        int removed = 0;
        foreach (var v in g.Initializers.ToArray())
        {
            if (inputs.Contains(v) || outputs.Contains(v)) continue;
            var t = v.Initializer!;
            if (!TryRawBytes(t, out var bytes)) continue;
            string key = $"{(int)t.DataType}:{string.Join(',', t.Shape)}:{bytes.Length}:{Hash(bytes)}";
            if (!kept.TryGetValue(key, out var list)) kept[key] = list = [];
            var same = list.FirstOrDefault(k => TryRawBytes(k.Initializer!, out var kb) && kb.SequenceEqual(bytes));
            if (same is null)
            {
                list.Add(v);
                continue;
            }
            e.ReplaceAllUses(v, same);
            removed++;
        }
        if (removed > 0) e.RemoveUnused();
        return removed;
    }

    /// <summary>
    /// Renames every value whose name is not in <paramref name="originalNames"/> (normally the names of the float
    /// model: its inputs, outputs, initializers and node outputs; empty to rename every internal value) to the shortest free name of a base-36 counter ("0" … "z",
    /// "10" …), in graph order (initializers first). Graph inputs and outputs keep their names. Returns the number renamed.
    /// </summary>
    public static int ShortenGeneratedNames(Model model, IReadOnlySet<string> originalNames)
    {
        var g = model.Graph;
        var e = g.Edit();
        var keep = new HashSet<Value>(g.Inputs.Concat(g.Outputs));
        var values = new List<Value>();
        var seen = new HashSet<Value>();
        void Visit(Value? v)
        {
            if (v is not null && !keep.Contains(v) && !originalNames.Contains(v.Name) && seen.Add(v)) values.Add(v);
        }
        foreach (var v in g.Initializers) Visit(v);
        foreach (var n in g.Nodes)
            foreach (var o in n.Outputs) Visit(o);
        // Free the old names first so that a short name never collides with a value about to be renamed.
        foreach (var v in values) e.RenameValue(v, "\u0001" + v.Name);
        int counter = 0;
        foreach (var v in values)
        {
            string name;
            do name = Base36(counter++); while (e.UniqueName(name) != name);
            e.RenameValue(v, name);
        }
        return values.Count;
    }

    /// <summary>The names a model's values carry: inputs, outputs, initializers and node outputs.</summary>
    public static HashSet<string> ValueNames(Model model)
    {
        var g = model.Graph;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var v in g.Inputs.Concat(g.Outputs).Concat(g.Initializers)) names.Add(v.Name);
        foreach (var n in g.Nodes)
            foreach (var o in n.Outputs)
                if (o is not null) names.Add(o.Name);
        return names;
    }

    private static string Base36(int i)
    {
        const string digits = "0123456789abcdefghijklmnopqrstuvwxyz";
        var s = new Stack<char>();
        do
        {
            s.Push(digits[i % 36]);
            i /= 36;
        } while (i > 0);
        return new string([.. s]);
    }

    private static ulong Hash(ReadOnlySpan<byte> b)
    {
        // FNV-1a 64: a bucket key only; equality is decided on the bytes.
        ulong h = 14695981039346656037UL;
        foreach (byte x in b) h = (h ^ x) * 1099511628211UL;
        return h;
    }

    private static bool TryRawBytes(Tensor t, out byte[] bytes)
    {
        bytes = t switch
        {
            Tensor<float> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<double> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<Half> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<BFloat16> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<sbyte> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<byte> x => x.Data.ToArray(),
            Tensor<short> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<ushort> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<int> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<uint> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<long> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<ulong> x => MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray(),
            Tensor<bool> x => x.Data.Select(b => b ? (byte)1 : (byte)0).ToArray(),
            _ => null!,
        };
        return bytes is not null;
    }
}
