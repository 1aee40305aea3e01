using QuantSharp.Tensors;

namespace QuantSharp.Graph;

/// <summary>
/// The one way to change a <see cref="Graph"/>. Every edit keeps producer and use links consistent, and new
/// names are made unique, so passes link values by identity and never by name.
/// </summary>
public sealed class GraphRewriter
{
    private readonly Graph _g;
    private int _counter;

    internal GraphRewriter(Graph g) => _g = g;

    public Graph Graph => _g;

    /// <summary>A name not used by any value or node in the graph, derived from <paramref name="hint"/>.</summary>
    public string UniqueName(string hint)
    {
        if (hint.Length == 0) hint = "v";
        if (!_g.ValuesByName.ContainsKey(hint) && _g.FindNode(hint) is null) return hint;
        string n;
        do n = $"{hint}_{++_counter}"; while (_g.ValuesByName.ContainsKey(n) || _g.FindNode(n) is not null);
        return n;
    }

    /// <summary>A new value with no producer yet; the name is made unique.</summary>
    public Value CreateValue(string nameHint, TensorTypeInfo? type = null)
    {
        var v = new Value(UniqueName(nameHint)) { Type = type };
        _g.ValuesByName[v.Name] = v;
        return v;
    }

    /// <summary>Gives <paramref name="v"/> a new name made unique from <paramref name="newNameHint"/>; links are unchanged.</summary>
    public string RenameValue(Value v, string newNameHint)
    {
        string n = UniqueName(newNameHint);
        if (_g.ValuesByName.TryGetValue(v.Name, out var cur) && cur == v) _g.ValuesByName.Remove(v.Name);
        v.Name = n;
        _g.ValuesByName[n] = v;
        return n;
    }

    /// <summary>Adds a graph input (a value the caller feeds).</summary>
    public Value AddInput(string name, TensorTypeInfo type)
    {
        if (_g.ValuesByName.ContainsKey(name)) throw new QuantSharpException($"graph already has a value named '{name}'");
        var v = CreateValue(name, type);
        _g.InputList.Add(v);
        return v;
    }

    /// <summary>Adds an initializer holding <paramref name="data"/>.</summary>
    public Value AddInitializer(string nameHint, Tensor data)
    {
        var v = CreateValue(nameHint, TensorTypeInfo.FromShape(data.DataType, data.Shape));
        v.Initializer = data;
        _g.InitializerList.Add(v);
        return v;
    }

    /// <summary>Replaces the constant data of an initializer.</summary>
    public void SetInitializer(Value v, Tensor data)
    {
        if (!v.IsInitializer) throw new QuantSharpException($"value '{v.Name}' is not an initializer");
        v.Initializer = data;
        v.Type = TensorTypeInfo.FromShape(data.DataType, data.Shape);
    }

    public void AddOutput(Value v) => _g.OutputList.Add(v);

    /// <summary>Replaces graph output <paramref name="index"/> by <paramref name="v"/>, keeping its position.</summary>
    public void SetOutput(int index, Value v) => _g.OutputList[index] = v;

    /// <summary>
    /// Creates a node and appends it (or inserts it before <paramref name="before"/>). Outputs are new values
    /// named from the node name unless given.
    /// </summary>
    public Node AddNode(string opType, IEnumerable<Value?> inputs, int outputCount = 1, string? name = null,
        string domain = "", IEnumerable<NodeAttribute>? attributes = null, Node? before = null, IReadOnlyList<Value>? outputs = null)
    {
        var node = new Node(UniqueName(name ?? opType), opType, domain == "ai.onnx" ? "" : domain) { Owner = _g };
        foreach (var a in attributes ?? []) node.Attributes[a.Name] = a;
        foreach (var v in inputs) AppendInput(node, v);
        if (outputs is not null)
        {
            foreach (var o in outputs) AppendOutput(node, o);
        }
        else
        {
            for (int i = 0; i < outputCount; i++)
                AppendOutput(node, CreateValue(outputCount == 1 ? node.Name + "_out" : $"{node.Name}_out{i}"));
        }
        int at = before is null ? _g.NodeList.Count : _g.NodeList.IndexOf(before);
        if (at < 0) throw new QuantSharpException($"node {before!.Describe()} is not in the graph");
        _g.NodeList.Insert(at, node);
        return node;
    }

    /// <summary>Inserts an existing-style node built by an importer; values are linked as given.</summary>
    internal Node AddImportedNode(string name, string opType, string domain, IReadOnlyList<Value?> inputs, IReadOnlyList<Value?> outputs)
    {
        var node = new Node(name, opType, domain == "ai.onnx" ? "" : domain) { Owner = _g };
        foreach (var v in inputs) AppendInput(node, v);
        foreach (var v in outputs) AppendOutput(node, v);
        _g.NodeList.Add(node);
        return node;
    }

    /// <summary>Gets or creates a value by exact name (for importers only: passes link by identity).</summary>
    internal Value GetOrCreateNamed(string name)
    {
        if (_g.ValuesByName.TryGetValue(name, out var v)) return v;
        v = new Value(name);
        _g.ValuesByName[name] = v;
        return v;
    }

    internal void RegisterGraphInput(Value v) => _g.InputList.Add(v);
    internal void RegisterInitializer(Value v, Tensor data) { v.Initializer = data; _g.InitializerList.Add(v); }
    internal void RegisterValueInfo(Value v) => _g.ValueInfoList.Add(v);

    private static void AppendInput(Node node, Value? v)
    {
        node.InputList.Add(v);
        v?.UsesList.Add(new Use(node, node.InputList.Count - 1));
    }

    private void AppendOutput(Node node, Value? v)
    {
        if (v is not null)
        {
            if (v.Producer is not null && v.Producer != node)
                throw new QuantSharpException($"value '{v.Name}' is already produced by node {v.Producer.Describe()}");
            v.Producer = node;
            v.ProducerOutputIndex = node.OutputList.Count;
            _g.ValuesByName.TryAdd(v.Name, v);
        }
        node.OutputList.Add(v);
    }

    /// <summary>Points input <paramref name="index"/> of <paramref name="node"/> at <paramref name="v"/> (null removes it).</summary>
    public void SetInput(Node node, int index, Value? v)
    {
        while (node.InputList.Count <= index) node.InputList.Add(null);
        var old = node.InputList[index];
        old?.UsesList.Remove(new Use(node, index));
        node.InputList[index] = v;
        v?.UsesList.Add(new Use(node, index));
    }

    /// <summary>Makes every reader of <paramref name="oldValue"/> (nodes and graph outputs) read <paramref name="newValue"/> instead.</summary>
    public void ReplaceAllUses(Value oldValue, Value newValue, Func<Use, bool>? where = null)
    {
        foreach (var use in oldValue.UsesList.ToArray())
            if (where is null || where(use)) SetInput(use.Node, use.InputIndex, newValue);
        if (where is null)
            for (int i = 0; i < _g.OutputList.Count; i++)
                if (_g.OutputList[i] == oldValue) _g.OutputList[i] = newValue;
    }

    /// <summary>Inserts <paramref name="newNode"/>'s outputs between a value and all of its current readers.</summary>
    public Node InsertAfter(Value v, string opType, IEnumerable<Value?> extraInputs, string? name = null, string domain = "",
        IEnumerable<NodeAttribute>? attributes = null)
    {
        var uses = v.UsesList.ToArray();
        bool wasOutput = _g.OutputList.Contains(v);
        Node? firstReader = uses.Length == 0 ? null : _g.NodeList.Where(n => uses.Any(u => u.Node == n)).FirstOrDefault();
        var node = AddNode(opType, new[] { v }.Concat(extraInputs), 1, name, domain, attributes, before: firstReader);
        var outV = node.OutputList[0]!;
        outV.Type = v.Type;
        foreach (var u in uses) SetInput(u.Node, u.InputIndex, outV);
        if (wasOutput)
            for (int i = 0; i < _g.OutputList.Count; i++)
                if (_g.OutputList[i] == v) _g.OutputList[i] = outV;
        return node;
    }

    /// <summary>Removes a node; its inputs lose their uses. Its outputs must no longer be read.</summary>
    public void RemoveNode(Node node)
    {
        foreach (var o in node.OutputList)
        {
            if (o is null) continue;
            if (o.UsesList.Count > 0 || _g.OutputList.Contains(o))
                throw new QuantSharpException($"cannot remove node {node.Describe()}: its output '{o.Name}' is still used");
        }
        for (int i = 0; i < node.InputList.Count; i++) node.InputList[i]?.UsesList.Remove(new Use(node, i));
        foreach (var o in node.OutputList)
        {
            if (o is null) continue;
            o.Producer = null;
            _g.ValuesByName.Remove(o.Name);
        }
        _g.NodeList.Remove(node);
        node.Owner = null;
    }

    /// <summary>Removes a node whose single output is replaced by <paramref name="replacement"/> everywhere.</summary>
    public void Bypass(Node node, Value replacement)
    {
        foreach (var o in node.OutputList)
            if (o is not null) ReplaceAllUses(o, replacement);
        RemoveNode(node);
    }

    /// <summary>Drops initializers and nodes that no graph output depends on.</summary>
    public int RemoveUnused()
    {
        int removed = 0;
        bool changed = true;
        while (changed)
        {
            changed = false;
            for (int i = _g.NodeList.Count - 1; i >= 0; i--)
            {
                var n = _g.NodeList[i];
                if (n.OutputList.All(o => o is null || (o.UsesList.Count == 0 && !_g.OutputList.Contains(o))))
                {
                    RemoveNode(n);
                    removed++;
                    changed = true;
                }
            }
        }
        foreach (var v in _g.InitializerList.ToArray())
        {
            if (v.UsesList.Count == 0 && !_g.OutputList.Contains(v))
            {
                _g.InitializerList.Remove(v);
                _g.InputList.Remove(v);
                _g.ValueInfoList.Remove(v);
                _g.ValuesByName.Remove(v.Name);
                removed++;
            }
        }
        foreach (var v in _g.ValueInfoList.ToArray())
            if (!_g.ValuesByName.ContainsKey(v.Name)) _g.ValueInfoList.Remove(v);
        return removed;
    }

    /// <summary>Reorders nodes so every node follows the producers of its inputs (stable for already-sorted graphs).</summary>
    public void SortTopologically() => GraphValidation.SortTopologically(_g);
}
