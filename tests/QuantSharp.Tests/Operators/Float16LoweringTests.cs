using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Operators;

public class Float16LoweringTests
{
    /// <param name="constantNode">Feed the scale through a Constant node (rewrite checks) or an initializer (runs without a Constant kernel).</param>
    private static Model HalfModel(bool constantNode)
    {
        var g = new Graph.Graph { Name = "fp16" };
        var e = g.Edit();
        var x = e.AddInput("x", TensorTypeInfo.FromShape(DataType.Float16, [2, 3]));
        var w = e.AddInitializer("w", new Tensor<Half>([(Half)0.5f, (Half)(-1.25f), (Half)2f], [3]));
        var scale = new Tensor<Half>([(Half)1.5f], []);
        Value kv = constantNode
            ? e.AddNode("Constant", [], name: "k", attributes: [NodeAttribute.Of("value", scale)]).Outputs[0]!
            : e.AddInitializer("k", scale);
        var add = e.AddNode("Add", [x, w], name: "add");
        var mul = e.AddNode("Mul", [add.Outputs[0], kv], name: "mul");
        var toHalf = e.AddNode("Cast", [mul.Outputs[0]], name: "tohalf", attributes: [NodeAttribute.Of("to", (long)DataType.Float16)]);
        var sig = e.AddNode("Sigmoid", [toHalf.Outputs[0]], name: "sig");
        var toFloat = e.AddNode("Cast", [sig.Outputs[0]], name: "tofloat", attributes: [NodeAttribute.Of("to", (long)DataType.Float)]);
        var y = e.CreateValue("y", TensorTypeInfo.FromShape(DataType.Float16, [2, 3]));
        e.AddNode("Identity", [sig.Outputs[0]], name: "out", outputs: [y]);
        e.AddOutput(y);
        e.AddOutput(toFloat.Outputs[0]!);
        toFloat.Outputs[0]!.Type = TensorTypeInfo.FromShape(DataType.Float, [2, 3]);
        var m = new Model(g);
        m.SetOpset("", 17);
        return m;
    }

    [Fact]
    public void Float16ModelRunsInFloatAndKeepsItsInterface()
    {
        var m = HalfModel(false);
        Assert.True(Float16Lowering.IsNeeded(m));
        var xs = new float[] { -2f, 0f, 1f, 3.5f, -0.75f, 0.125f };
        var x = new Tensor<Half>(xs.Select(v => (Half)v).ToArray(), [2, 3]);
        using var s = new InferenceSession(m);
        Assert.Equal(DataType.Float16, s.Inputs.Single().Type!.ElementType);
        var r = s.Run(new Dictionary<string, Tensor> { ["x"] = x });
        var y = r["y"];
        Assert.Equal(DataType.Float16, y.DataType);
        Assert.Equal([2, 3], y.Shape);
        float[] w = [0.5f, -1.25f, 2f];
        var yf = r.Values.Last();
        Assert.Equal(DataType.Float, yf.DataType);
        for (int i = 0; i < 6; i++)
        {
            double want = 1 / (1 + Math.Exp(-(xs[i] + w[i % 3]) * 1.5));
            Assert.Equal((Half)want, y.As<Half>().Data[i]);
            Assert.True(Math.Abs(yf.As<float>().Data[i] - want) < 1e-6);
        }
    }

    [Fact]
    public void LoweringRewritesInitializersConstantsAndCasts()
    {
        var m = HalfModel(true);
        int changes = Float16Lowering.Apply(m);
        Assert.True(changes >= 5);
        var g = m.Graph;
        Assert.All(g.Initializers, v => Assert.Equal(DataType.Float, v.Initializer!.DataType));
        Assert.Equal(DataType.Float, g.FindNode("k")!.Attribute("value")!.Tensor!.DataType);
        Assert.Equal((long)DataType.Float, g.FindNode("tohalf")!.GetInt("to", 0));
        Assert.Equal(DataType.Float16, g.Inputs[0].Type!.ElementType);
        Assert.Equal("y", g.Outputs[0].Name);
        Assert.Equal(DataType.Float16, g.Outputs[0].Type!.ElementType);
        Assert.Equal("Cast", g.Outputs[0].Producer!.OpType);
        Assert.Empty(GraphValidation.Validate(g));
        Assert.False(Float16Lowering.IsNeeded(new Model(new Graph.Graph())));
    }
}
