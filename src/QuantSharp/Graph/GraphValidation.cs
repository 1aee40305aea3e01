namespace QuantSharp.Graph;

public static class GraphValidation
{
    /// <summary>
    /// The nodes in an order where each follows the producers of its inputs, without changing the graph (Kahn's
    /// algorithm, keeping the existing order among ready nodes so a sorted graph keeps its order). Nodes on a cycle
    /// are left out: their inputs never become available.
    /// </summary>
    public static List<Node> TopologicalOrder(Graph g)
    {
        var nodes = g.NodeList;
        var index = new Dictionary<Node, int>(nodes.Count);
        for (int i = 0; i < nodes.Count; i++) index[nodes[i]] = i;
        var pending = new int[nodes.Count];
        for (int i = 0; i < nodes.Count; i++)
            foreach (var v in nodes[i].InputList)
                if (v?.Producer is Node p && index.ContainsKey(p)) pending[i]++;
        var ready = new SortedSet<int>();
        for (int i = 0; i < nodes.Count; i++) if (pending[i] == 0) ready.Add(i);
        var order = new List<Node>(nodes.Count);
        while (ready.Count > 0)
        {
            int i = ready.Min;
            ready.Remove(i);
            order.Add(nodes[i]);
            foreach (var o in nodes[i].OutputList)
            {
                if (o is null) continue;
                foreach (var u in o.UsesList)
                    if (index.TryGetValue(u.Node, out int j) && --pending[j] == 0) ready.Add(j);
            }
        }
        return order;
    }

    /// <summary>Reorders the graph's nodes topologically; throws naming a node on a cycle.</summary>
    internal static void SortTopologically(Graph g)
    {
        var order = TopologicalOrder(g);
        if (order.Count != g.NodeList.Count)
        {
            var sorted = new HashSet<Node>(order);
            var stuck = g.NodeList.First(n => !sorted.Contains(n));
            throw new QuantSharpException($"graph '{g.Name}' has a cycle through node {stuck.Describe()}");
        }
        g.NodeList.Clear();
        g.NodeList.AddRange(order);
    }

    /// <summary>
    /// Checks the graph's structure: every node input is produced, fed or constant; no cycles;
    /// no duplicate value or node names; outputs exist. Returns the problems found (empty when valid).
    /// </summary>
    public static IReadOnlyList<string> Validate(Graph g)
    {
        var problems = new List<string>();
        var available = new HashSet<Value>(g.Inputs);
        foreach (var v in g.Initializers) available.Add(v);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var nodeNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var v in g.Inputs.Concat(g.Initializers).Distinct())
            if (!names.Add(v.Name) && !g.Initializers.Contains(v)) problems.Add($"duplicate value name '{v.Name}'");
        var producedAt = new Dictionary<Value, int>();
        for (int i = 0; i < g.Nodes.Count; i++)
            foreach (var o in g.Nodes[i].Outputs)
                if (o is not null) producedAt[o] = i;
        for (int i = 0; i < g.Nodes.Count; i++)
        {
            var n = g.Nodes[i];
            if (n.Name.Length > 0 && !nodeNames.Add(n.Name)) problems.Add($"duplicate node name '{n.Name}'");
            foreach (var v in n.Inputs)
            {
                if (v is null || available.Contains(v)) continue;
                if (producedAt.TryGetValue(v, out int p))
                {
                    if (p >= i) problems.Add($"node {n.Describe()} reads '{v.Name}' before node {g.Nodes[p].Describe()} produces it (cycle or unsorted)");
                }
                else problems.Add($"node {n.Describe()} reads '{v.Name}', which nothing produces (dangling value)");
            }
            foreach (var o in n.Outputs)
            {
                if (o is null) continue;
                if (!names.Add(o.Name)) problems.Add($"duplicate value name '{o.Name}' (output of node {n.Describe()})");
                available.Add(o);
            }
        }
        foreach (var o in g.Outputs)
            if (!available.Contains(o)) problems.Add($"graph output '{o.Name}' is never produced");
        return problems;
    }

    /// <summary>Throws one error listing every problem <see cref="Validate"/> finds.</summary>
    public static void EnsureValid(Graph g)
    {
        var p = Validate(g);
        if (p.Count > 0) throw new QuantSharpException($"invalid graph '{g.Name}': " + string.Join("; ", p));
    }
}
