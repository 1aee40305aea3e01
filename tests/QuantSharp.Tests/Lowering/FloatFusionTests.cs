using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Lowering;

/// <summary>
/// Session-time float fusions (BatchNormalization folded into Conv, Relu / Clip into the Conv epilogue) give the
/// unfused results within float rounding, keep graph outputs, and are skipped for value observers.
/// </summary>
public class FloatFusionTests
{
    private static Tensor<float> Random(Random rnd, float lo, float hi, params int[] shape)
    {
        var t = new Tensor<float>(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = (float)(lo + rnd.NextDouble() * (hi - lo));
        return t;
    }

    /// <summary>
    /// x → Conv 3×3 → BN → Clip(0, 6 from Constant nodes) → depthwise Conv (stride 2) → Relu → Conv 1×1 → y, plus a
    /// Conv → Clip whose Conv output is also a graph output (must stay unfused), and a Clip of opset-style inputs.
    /// </summary>
    private static Model Build(Random rnd)
    {
        var g = new Graph.Graph { Name = "fusion" };
        var e = g.Edit();
        var x = e.AddInput("x", TensorTypeInfo.FromShape(DataType.Float, [2, 3, 13, 11]));
        var w1 = e.AddInitializer("w1", Random(rnd, -0.5f, 0.5f, 8, 3, 3, 3));
        var b1 = e.AddInitializer("b1", Random(rnd, -0.2f, 0.2f, 8));
        var pads = NodeAttribute.Of("pads", new long[] { 1, 1, 1, 1 });
        var c1 = e.AddNode("Conv", [x, w1, b1], name: "conv1", attributes: [pads]).Output(0)!;
        var bn = e.AddNode("BatchNormalization",
            [c1, e.AddInitializer("s", Random(rnd, 0.5f, 1.5f, 8)), e.AddInitializer("B", Random(rnd, -0.5f, 0.5f, 8)),
             e.AddInitializer("mean", Random(rnd, -0.3f, 0.3f, 8)), e.AddInitializer("var", Random(rnd, 0.5f, 2f, 8))],
            name: "bn", attributes: [NodeAttribute.Of("epsilon", 1e-3f)]).Output(0)!;
        var lo = e.AddNode("Constant", [], name: "lo", attributes: [NodeAttribute.Of("value", new Tensor<float>([0f], []))]).Output(0)!;
        var hi = e.AddNode("Constant", [], name: "hi", attributes: [NodeAttribute.Of("value", new Tensor<float>([1.5f], []))]).Output(0)!;
        var r1 = e.AddNode("Clip", [bn, lo, hi], name: "clip1").Output(0)!;
        var wd = e.AddInitializer("wd", Random(rnd, -0.5f, 0.5f, 8, 1, 3, 3));
        var d = e.AddNode("Conv", [r1, wd], name: "dw",
            attributes: [pads, NodeAttribute.Of("group", 8L), NodeAttribute.Of("strides", new long[] { 2, 2 })]).Output(0)!;
        var r2 = e.AddNode("Relu", [d], name: "relu").Output(0)!;
        var wp = e.AddInitializer("wp", Random(rnd, -0.5f, 0.5f, 5, 8, 1, 1));
        var y = e.AddNode("Conv", [r2, wp], name: "project").Output(0)!;
        e.AddOutput(y);
        // A Conv whose output is also a graph output: its Clip must not be fused into it.
        var w3 = e.AddInitializer("w3", Random(rnd, -0.5f, 0.5f, 4, 3, 1, 1));
        var c3 = e.AddNode("Conv", [x, w3], name: "conv3").Output(0)!;
        var c3clip = e.AddNode("Clip", [c3, lo], name: "clip3").Output(0)!;
        e.AddOutput(c3);
        e.AddOutput(c3clip);
        var m = new Model(g);
        m.SetOpset("", 17);
        return m;
    }

    [Fact]
    public void FusedSessionMatchesUnfused()
    {
        var rnd = new Random(3);
        var model = Build(rnd);
        var x = Random(rnd, -2f, 2f, 2, 3, 13, 11);
        var feeds = new Dictionary<string, Tensor> { ["x"] = x };
        using var plain = new InferenceSession(model, new SessionOptions { IntraOpThreads = 1, FuseFloatOperators = false });
        using var fused1 = new InferenceSession(model, new SessionOptions { IntraOpThreads = 1 });
        using var fused2 = new InferenceSession(model, new SessionOptions { IntraOpThreads = 2 });

        var nodes = fused1.Model.Graph.Nodes;
        Assert.DoesNotContain(nodes, n => n.OpType is "BatchNormalization" or "Relu");
        Assert.Equal(2, nodes.Count(n => n.Domain == FloatFusion.Domain));
        Assert.Single(nodes, n => n.OpType == "Clip"); // clip3 stays: conv3's output is a graph output
        Assert.Contains(model.Graph.Nodes, n => n.OpType == "BatchNormalization"); // the caller's model is unchanged

        var expected = plain.Run(feeds);
        var a = fused1.Run(feeds);
        var b = fused2.Run(feeds);
        foreach (var name in expected.Keys)
        {
            var ev = expected[name].As<float>().Data;
            var av = a[name].As<float>().Data;
            Assert.Equal(ev.Length, av.Length);
            for (int i = 0; i < ev.Length; i++)
                Assert.True(Math.Abs(ev[i] - av[i]) <= 1e-4f * Math.Max(1f, Math.Abs(ev[i])), $"{name}[{i}]: {ev[i]} vs {av[i]}");
            // Thread count never changes the result bits.
            Assert.Equal(av, b[name].As<float>().Data);
        }
        Assert.All(a["clip3_out"].As<float>().Data, v => Assert.True(v >= 0f));
    }

    [Fact]
    public void ObservedSessionsAreNotFused()
    {
        var model = Build(new Random(4));
        var seen = new HashSet<string>();
        using var s = new InferenceSession(model, new SessionOptions { ValueObserver = (v, _) => seen.Add(v.Name) });
        Assert.Contains(s.Model.Graph.Nodes, n => n.OpType == "BatchNormalization");
        s.Run(new Dictionary<string, Tensor> { ["x"] = Random(new Random(5), -1f, 1f, 2, 3, 13, 11) });
        Assert.Contains(model.Graph.Nodes.Single(n => n.Name == "bn").Output(0)!.Name, seen);
    }
}
