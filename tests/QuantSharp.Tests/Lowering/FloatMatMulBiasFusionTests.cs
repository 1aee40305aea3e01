using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Lowering;

/// <summary>
/// MatMul with a constant B followed by Add of a constant bias [N] is fused at session creation into one MatMul with
/// the bias accumulated in the SGEMM: equal to the unfused graph within float rounding (one addition reordered),
/// identical for 1 and 2 threads, and not applied when the product is a graph output or the bias is not [N].
/// </summary>
public class FloatMatMulBiasFusionTests
{
    private static Tensor<float> Random(Random rnd, params int[] shape)
    {
        var t = new Tensor<float>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(rnd.NextDouble() * 2 - 1);
        return t;
    }

    private static Model Build(Random rnd)
    {
        var g = new Graph.Graph { Name = "matmul_bias" };
        var e = g.Edit();
        // 8·100 rows × 67 × 97 ≈ 10 MFLOP: large enough to be split over 2 threads; odd K and N for the tails.
        var x = e.AddInput("x", TensorTypeInfo.FromShape(DataType.Float, [8, 100, 67]));
        var w1 = e.AddInitializer("w1", Random(rnd, 67, 97));
        var b1 = e.AddInitializer("b1", Random(rnd, 97));
        var h = e.AddNode("MatMul", [x, w1], name: "mm1").Output(0)!;
        var hb = e.AddNode("Add", [b1, h], name: "add1").Output(0)!; // bias first
        var w2 = e.AddInitializer("w2", Random(rnd, 97, 5));
        var b2 = e.AddNode("Constant", [], name: "b2", attributes: [NodeAttribute.Of("value", Random(rnd, 5))]).Output(0)!;
        var y = e.AddNode("MatMul", [hb, w2], name: "mm2").Output(0)!;
        var yb = e.AddNode("Add", [y, b2], name: "add2").Output(0)!;
        // Product is a graph output: stays unfused.
        var w3 = e.AddInitializer("w3", Random(rnd, 67, 3));
        var z = e.AddNode("MatMul", [x, w3], name: "mm3").Output(0)!;
        var zb = e.AddNode("Add", [z, e.AddInitializer("b3", Random(rnd, 3))], name: "add3").Output(0)!;
        // Bias of shape [1, 3] (could change the output rank for a 1-D A): stays unfused.
        var u = e.AddNode("MatMul", [x, w3], name: "mm4").Output(0)!;
        var ub = e.AddNode("Add", [u, e.AddInitializer("b4", Random(rnd, 1, 3))], name: "add4").Output(0)!;
        e.AddOutput(yb);
        e.AddOutput(z);
        e.AddOutput(zb);
        e.AddOutput(ub);
        var m = new Model(g);
        m.SetOpset("", 17);
        return m;
    }

    [Fact]
    public void FusedMatMulBiasMatchesUnfused()
    {
        var rnd = new Random(5);
        var model = Build(rnd);
        var feeds = new Dictionary<string, Tensor> { ["x"] = Random(rnd, 8, 100, 67) };
        using var plain = new InferenceSession(model, new SessionOptions { IntraOpThreads = 1, FuseFloatOperators = false });
        using var fused1 = new InferenceSession(model, new SessionOptions { IntraOpThreads = 1 });
        using var fused2 = new InferenceSession(model, new SessionOptions { IntraOpThreads = 2 });

        var nodes = fused1.Model.Graph.Nodes;
        Assert.Equal(2, nodes.Count(n => n.Domain == FloatFusion.Domain && n.OpType == "MatMul"));
        Assert.Equal(2, nodes.Count(n => n.OpType == "Add"));
        Assert.Equal(4, model.Graph.Nodes.Count(n => n.OpType == "Add")); // the caller's model is unchanged

        var expected = plain.Run(feeds);
        var a = fused1.Run(feeds);
        var b = fused2.Run(feeds);
        foreach (var name in expected.Keys)
        {
            var want = ((Tensor<float>)expected[name]).Data;
            var got1 = ((Tensor<float>)a[name]).Data;
            var got2 = ((Tensor<float>)b[name]).Data;
            Assert.Equal(((Tensor<float>)expected[name]).Shape, ((Tensor<float>)a[name]).Shape);
            for (int i = 0; i < want.Length; i++)
            {
                // |y| is up to ~50 after two layers of 67 and 97 terms; a reordered float sum differs by a few ulps.
                Assert.True(Math.Abs(want[i] - got1[i]) <= 1e-5f * (1 + Math.Abs(want[i])), $"{name}[{i}]: {got1[i]} vs {want[i]}");
                Assert.Equal(BitConverter.SingleToInt32Bits(got1[i]), BitConverter.SingleToInt32Bits(got2[i]));
            }
        }
    }
}
