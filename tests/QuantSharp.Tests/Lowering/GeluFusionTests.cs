using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Lowering;

/// <summary>
/// The exact-GELU chain x ⊘ c → Erf → Add 1 → Mul x → Mul 0.5 is fused into one Gelu node at session creation, gives
/// bit-identical results to the unfused nodes for 1 and 2 threads, and is left alone when an intermediate value is a
/// graph output.
/// </summary>
public class GeluFusionTests
{
    private static Model Build()
    {
        var g = new Graph.Graph { Name = "gelu" };
        var e = g.Edit();
        // 3·5·37 = 555 elements: one full block of 512, vector tails and a scalar remainder.
        var x = e.AddInput("x", TensorTypeInfo.FromShape(DataType.Float, [3, 5, 37]));
        var sqrt2 = e.AddNode("Constant", [], name: "sqrt2",
            attributes: [NodeAttribute.Of("value", new Tensor<float>([1.4142135f], []))]).Output(0)!;
        var one = e.AddInitializer("one", new Tensor<float>([1f], []));
        var half = e.AddInitializer("half", new Tensor<float>([0.5f], []));
        var invSqrt2 = e.AddInitializer("inv_sqrt2", new Tensor<float>([0.70710678f], []));

        // Chain 1: Div form, commuted Add and first Mul (PyTorch's order differs; both must match).
        var d = e.AddNode("Div", [x, sqrt2], name: "div").Output(0)!;
        var erf = e.AddNode("Erf", [d], name: "erf").Output(0)!;
        var add = e.AddNode("Add", [one, erf], name: "add").Output(0)!;
        var mul = e.AddNode("Mul", [add, x], name: "mul").Output(0)!;
        var y = e.AddNode("Mul", [mul, half], name: "mul_half").Output(0)!;
        // Chain 2: Mul form on y.
        var d2 = e.AddNode("Mul", [invSqrt2, y], name: "scale2").Output(0)!;
        var erf2 = e.AddNode("Erf", [d2], name: "erf2").Output(0)!;
        var add2 = e.AddNode("Add", [erf2, one], name: "add2").Output(0)!;
        var mul2 = e.AddNode("Mul", [y, add2], name: "mul2").Output(0)!;
        var z = e.AddNode("Mul", [half, mul2], name: "mul2_half").Output(0)!;
        // Chain 3: its erf value is a graph output, so it must stay unfused.
        var d3 = e.AddNode("Div", [x, sqrt2], name: "div3").Output(0)!;
        var erf3 = e.AddNode("Erf", [d3], name: "erf3").Output(0)!;
        var add3 = e.AddNode("Add", [erf3, one], name: "add3").Output(0)!;
        var mul3 = e.AddNode("Mul", [x, add3], name: "mul3").Output(0)!;
        var w = e.AddNode("Mul", [mul3, half], name: "mul3_half").Output(0)!;
        e.AddOutput(z);
        e.AddOutput(w);
        e.AddOutput(erf3);
        var m = new Model(g);
        m.SetOpset("", 17);
        return m;
    }

    [Fact]
    public void FusedGeluIsBitIdenticalToUnfusedChain()
    {
        var rnd = new Random(11);
        var model = Build();
        var x = new Tensor<float>([3, 5, 37]);
        for (int i = 0; i < x.Length; i++) x.Data[i] = (float)(rnd.NextDouble() * 12 - 6);
        x.Data[0] = 0f;
        x.Data[1] = -1.4142135f;
        x.Data[2] = float.NaN;
        x.Data[3] = 7.5f;
        var feeds = new Dictionary<string, Tensor> { ["x"] = x };
        using var plain = new InferenceSession(model, new SessionOptions { IntraOpThreads = 1, FuseFloatOperators = false });
        using var fused1 = new InferenceSession(model, new SessionOptions { IntraOpThreads = 1 });
        using var fused2 = new InferenceSession(model, new SessionOptions { IntraOpThreads = 2 });

        var nodes = fused1.Model.Graph.Nodes;
        Assert.Equal(2, nodes.Count(n => n.Domain == FloatFusion.Domain && n.OpType == "Gelu"));
        Assert.Single(nodes, n => n.OpType == "Erf"); // chain 3 stays
        Assert.Equal(2, model.Graph.Nodes.Count(n => n.OpType == "Div")); // the caller's model is unchanged

        var expected = plain.Run(feeds);
        foreach (var got in new[] { fused1.Run(feeds), fused2.Run(feeds) })
            foreach (var name in expected.Keys)
            {
                var a = ((Tensor<float>)expected[name]).Data;
                var b = ((Tensor<float>)got[name]).Data;
                Assert.Equal(a.Length, b.Length);
                for (int i = 0; i < a.Length; i++)
                    Assert.Equal(BitConverter.SingleToInt32Bits(a[i]), BitConverter.SingleToInt32Bits(b[i]));
            }

        // And the fused values are GELU within float rounding: 0.5·v·(1 + erf(v/√2)) in double.
        var zs = ((Tensor<float>)fused1.Run(feeds)[fused1.Model.Graph.Outputs[0].Name]).Data;
        for (int i = 0; i < x.Length; i++)
        {
            double v = x.Data[i];
            double gv = 0.5 * v * (1 + QuantSharp.Runtime.Operators.ActivationMath.Erf(v / Math.Sqrt(2)));
            double want = 0.5 * gv * (1 + QuantSharp.Runtime.Operators.ActivationMath.Erf(gv / Math.Sqrt(2)));
            if (double.IsNaN(want)) Assert.True(float.IsNaN(zs[i]));
            else Assert.True(Math.Abs(zs[i] - want) <= 1e-6 + 1e-6 * Math.Abs(want), $"gelu(gelu({v})) = {zs[i]}, expected {want}");
        }
    }
}
