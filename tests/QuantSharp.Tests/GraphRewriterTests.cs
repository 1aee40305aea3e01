using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Tests;

public class GraphRewriterTests
{
    private static Model TwoIdentities(out Value input)
    {
        var g = new Graph.Graph { Name = "g" };
        var e = g.Edit();
        input = e.AddInput("x", TensorTypeInfo.FromShape(DataType.Float, [2]));
        var a = e.AddNode("Identity", [input], name: "a");
        var b = e.AddNode("Identity", [a.Outputs[0]], name: "b");
        e.AddOutput(b.Outputs[0]!);
        var m = new Model(g);
        m.SetOpset("", 17);
        return m;
    }

    [Fact]
    public void ValuesAreLinkedByIdentityAndUsesTracked()
    {
        var m = TwoIdentities(out var x);
        var a = m.Graph.Nodes[0];
        Assert.Single(x.Uses);
        Assert.Same(a, x.Uses[0].Node);
        Assert.Same(a, a.Outputs[0]!.Producer);
        Assert.Empty(GraphValidation.Validate(m.Graph));
    }

    [Fact]
    public void BypassRewiresReadersAndOutputs()
    {
        var m = TwoIdentities(out var x);
        var e = m.Graph.Edit();
        e.Bypass(m.Graph.Nodes[1], m.Graph.Nodes[0].Outputs[0]!);
        Assert.Single(m.Graph.Nodes);
        Assert.Same(m.Graph.Nodes[0].Outputs[0], m.Graph.Outputs[0]);
    }

    [Fact]
    public void SortTopologicallyRepairsOrderAndDetectsCycles()
    {
        var m = TwoIdentities(out _);
        var g = m.Graph;
        g.NodeList.Reverse();
        Assert.NotEmpty(GraphValidation.Validate(g));
        g.Edit().SortTopologically();
        Assert.Equal("a", g.Nodes[0].Name);
        var e = g.Edit();
        e.SetInput(g.Nodes[0], 0, g.Nodes[1].Outputs[0]);
        var ex = Assert.Throws<QuantSharpException>(() => e.SortTopologically());
        Assert.Contains("cycle", ex.Message);
    }

    [Fact]
    public void SessionRunsAndReportsMissingInputs()
    {
        var m = TwoIdentities(out _);
        using var s = new InferenceSession(m);
        var y = s.Run(new Tensor<float>([1f, 2f], [2]));
        Assert.Equal([1f, 2f], y.Values.Single().As<float>().Data);
        Assert.Throws<InvalidInputException>(() => s.Run(new Dictionary<string, Tensor>()));
        Assert.Throws<InvalidInputException>(() => s.Run(new Tensor<float>([1f, 2f, 3f], [3])));
    }
}
