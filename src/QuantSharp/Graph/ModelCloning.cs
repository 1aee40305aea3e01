namespace QuantSharp.Graph;

public static class ModelCloning
{
    /// <summary>
    /// A deep copy of the IR: new <see cref="Graph"/>, <see cref="Node"/> and <see cref="Value"/> objects linked
    /// the same way, so edits to the copy never touch the original. Tensors, types and attributes are shared
    /// (they are immutable by convention), as is the importer's state, so the copy exports like the original.
    /// </summary>
    public static Model Clone(this Model m)
    {
        var g = m.Graph;
        var ng = new Graph { Name = g.Name, DocString = g.DocString, Extras = g.Extras };
        var map = new Dictionary<Value, Value>(g.ValuesByName.Count);

        Value Map(Value v)
        {
            if (!map.TryGetValue(v, out var c))
            {
                c = new Value(v.Name)
                {
                    Type = v.Type,
                    DocString = v.DocString,
                    Initializer = v.Initializer,
                    ImportedInitializer = v.ImportedInitializer,
                    Extras = v.Extras,
                };
                map[v] = c;
            }
            return c;
        }

        foreach (var (name, v) in g.ValuesByName) ng.ValuesByName[name] = Map(v);
        foreach (var v in g.InputList) ng.InputList.Add(Map(v));
        foreach (var v in g.OutputList) ng.OutputList.Add(Map(v));
        foreach (var v in g.InitializerList) ng.InitializerList.Add(Map(v));
        foreach (var v in g.ValueInfoList) ng.ValueInfoList.Add(Map(v));

        foreach (var n in g.NodeList)
        {
            var nn = new Node(n.Name, n.OpType, n.Domain) { Owner = ng, DocString = n.DocString, Extras = n.Extras };
            foreach (var (name, a) in n.Attributes) nn.Attributes[name] = a;
            foreach (var v in n.InputList)
            {
                var c = v is null ? null : Map(v);
                nn.InputList.Add(c);
                c?.UsesList.Add(new Use(nn, nn.InputList.Count - 1));
            }
            foreach (var v in n.OutputList)
            {
                var c = v is null ? null : Map(v);
                if (c is not null)
                {
                    c.Producer = nn;
                    c.ProducerOutputIndex = nn.OutputList.Count;
                }
                nn.OutputList.Add(c);
            }
            ng.NodeList.Add(nn);
        }

        var nm = new Model(ng)
        {
            IrVersion = m.IrVersion,
            ProducerName = m.ProducerName,
            ProducerVersion = m.ProducerVersion,
            Domain = m.Domain,
            ModelVersion = m.ModelVersion,
            DocString = m.DocString,
            SourcePath = m.SourcePath,
            Extras = m.Extras,
        };
        nm.OpsetImports.AddRange(m.OpsetImports);
        nm.Metadata.AddRange(m.Metadata);
        return nm;
    }
}
