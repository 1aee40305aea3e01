using QuantSharp.Graph;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Lowering;

/// <summary>
/// MatMul → [Q → DQ] → Add(constant bias[C]) → Q, the bias float or DequantizeLinear of int8/int32 constants and on
/// either side, becomes one integer Gemm (the bias in its output stage, or with the inner Q → DQ a per-channel
/// second-stage table that keeps both roundings): no float Add stays, and the result is within one output step of
/// the float graph.
/// </summary>
public class MatMulBiasFusionTests
{
    [Theory]
    [InlineData("float", false, false)]
    [InlineData("int8", true, true)]
    [InlineData("int32", true, false)]
    [InlineData("int8", false, true)]
    public void BiasAddJoinsTheIntegerGemm(string biasKind, bool innerQdq, bool biasFirst)
    {
        var b = new QdqGraphBuilder(51);
        var x = b.Qdq(b.Input("x", -1f, 1f, 3, 5, 12), 2f / 255, 128);
        var (w, _) = b.Weight([12, 8], 1, false);
        var mm = b.Node("MatMul", [x, w]);
        if (innerQdq) mm = b.Qdq(mm, 0.04f, 128);
        var bias = b.Random(8, -0.5f, 0.5f);
        Value bv;
        if (biasKind == "float") bv = b.Edit.AddInitializer("bias", new Tensor<float>(bias, [8]));
        else
        {
            float s = 0.5f / 127;
            Tensor q = biasKind == "int8"
                ? new Tensor<sbyte>(bias.Select(v => (sbyte)Math.Round(v / s)).ToArray(), [8])
                : new Tensor<int>(bias.Select(v => (int)Math.Round(v / s)).ToArray(), [8]);
            bv = b.Node("DequantizeLinear", [b.Edit.AddInitializer("bq", q), b.Edit.AddInitializer("bs", new Tensor<float>([s], []))]);
        }
        var add = biasFirst ? b.Node("Add", [bv, mm]) : b.Node("Add", [mm, bv]);
        var m = b.Finish(b.Qdq(add, 0.05f, 128));

        var copy = m.Clone();
        IntegerLowering.Apply(copy);
        var ops = copy.Graph.Nodes.Select(n => n.OpType).ToArray();
        Assert.DoesNotContain("Add", ops);
        Assert.Contains(copy.Graph.Nodes, n => n.Domain == IntegerLowering.Domain && n.OpType == "Gemm");

        var r = QdqGraphBuilder.Run(m, b.Feeds, lowered: false).Single().Value.As<float>();
        var l = QdqGraphBuilder.Run(m, b.Feeds, lowered: true).Single().Value.As<float>();
        const float tol = 0.05f;
        for (int i = 0; i < r.Length; i++) Assert.True(Math.Abs(r.Data[i] - l.Data[i]) <= tol * 1.001f, $"[{i}] float graph {r.Data[i]}, lowered {l.Data[i]}");
    }

    [Fact]
    public void AddWithoutQuantizedResultLeavesTheMatMulLowered()
    {
        var b = new QdqGraphBuilder(52);
        var x = b.Qdq(b.Input("x", -1f, 1f, 4, 12), 2f / 255, 128);
        var (w, _) = b.Weight([12, 8], 1, false);
        var mm = b.Qdq(b.Node("MatMul", [x, w]), 0.04f, 128);
        var m = b.Finish(b.Node("Add", [mm, b.Edit.AddInitializer("bias", new Tensor<float>(b.Random(8, -1f, 1f), [8]))]));
        var copy = m.Clone();
        IntegerLowering.Apply(copy);
        Assert.Contains(copy.Graph.Nodes, n => n.Domain == IntegerLowering.Domain && n.OpType == "Gemm");
        Assert.Contains("Add", copy.Graph.Nodes.Select(n => n.OpType));
    }
}

/// <summary>DQ(a) · DQ(b) → Q of two computed 8-bit tensors (attention) runs as one integer MatMulAct node within one output step.</summary>
public class ActivationMatMulLoweringTests
{
    [Theory]
    [InlineData(16, 16, 16, false)]
    [InlineData(5, 19, 7, true)]
    public void AttentionProductIsLoweredWithinOneStep(int m, int n, int k, bool broadcastB)
    {
        var b = new QdqGraphBuilder(53);
        var x = b.Qdq(b.Input("a", -1f, 1f, 2, 3, m, k), 2f / 255, 128);
        var w = broadcastB ? b.Qdq(b.Input("b", -1f, 1f, 3, k, n), 2f / 255, 100) : b.Qdq(b.Input("b", -1f, 1f, 2, 3, k, n), 2f / 255, 100);
        float step = k / 32f / 100f;
        var m1 = b.Finish(b.Qdq(b.Node("MatMul", [x, w]), step, 128));
        var copy = m1.Clone();
        IntegerLowering.Apply(copy);
        Assert.Contains(copy.Graph.Nodes, nd => nd.Domain == IntegerLowering.Domain && nd.OpType == "MatMulAct");
        Assert.DoesNotContain("MatMul", copy.Graph.Nodes.Select(nd => nd.OpType));
        var r = QdqGraphBuilder.Run(m1, b.Feeds, lowered: false).Single().Value.As<float>();
        var one = QdqGraphBuilder.Run(m1, b.Feeds, lowered: true, threads: 1).Single().Value.As<float>();
        var two = QdqGraphBuilder.Run(m1, b.Feeds, lowered: true, threads: 2).Single().Value.As<float>();
        Assert.Equal(one.Data, two.Data);
        for (int i = 0; i < r.Length; i++) Assert.True(Math.Abs(r.Data[i] - one.Data[i]) <= step * 1.001f, $"[{i}] float graph {r.Data[i]}, lowered {one.Data[i]}");
    }
}
