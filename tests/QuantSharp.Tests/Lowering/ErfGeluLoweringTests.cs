using QuantSharp.Graph;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Runtime.Operators;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Lowering;

/// <summary>
/// The exported erf-GELU chain DQ → Div(√2) → Erf → Add(1) → Mul(x) → Mul(0.5) → Q (both Mul orders, either
/// operand order, with or without QuantizeLinear → DequantizeLinear pairs between the steps) becomes one lookup
/// table that reproduces the unlowered graph's codes exactly (it is built by running the chain's float operations
/// on the 256 input codes); without inner pairs that is the exact GELU rounded once to the output grid.
/// </summary>
public class ErfGeluLoweringTests
{
    private const float XScale = 10f / 255, YScale = 6f / 255;

    private static Model Build(QdqGraphBuilder b, bool halfFirst, bool swap, bool innerQdq, bool mulByReciprocal)
    {
        var xd = b.Qdq(b.Input("x", -5f, 5f, 3, 37), XScale, 128);
        var xq = xd.Producer!.Input(0)!;
        var s = xd.Producer!.Input(1)!;
        var z = xd.Producer!.Input(2)!;
        var xd2 = b.Node("DequantizeLinear", [xq, s, z]);
        Value C(float v) => b.Edit.AddInitializer("c", new Tensor<float>([v], []));
        Value Maybe(Value v, float scale, int zp) => innerQdq ? b.Qdq(v, scale, zp) : v;
        Value Mul(Value a, Value c) => swap ? b.Node("Mul", [c, a]) : b.Node("Mul", [a, c]);
        var scaled = mulByReciprocal ? b.Node("Mul", [xd, C(1f / MathF.Sqrt(2f))]) : b.Node("Div", [xd, C(MathF.Sqrt(2f))]);
        var e = b.Node("Erf", [scaled]);
        var a1 = Maybe(swap ? b.Node("Add", [C(1f), e]) : b.Node("Add", [e, C(1f)]), 2f / 255, 0);
        Value m2;
        if (halfFirst) m2 = Mul(Maybe(Mul(a1, C(0.5f)), 1f / 255, 0), xd2);
        else m2 = Mul(Maybe(Mul(a1, xd2), 12f / 255, 20), C(0.5f));
        return b.Finish(b.Qdq(m2, YScale, 20));
    }

    [Theory]
    [InlineData(false, false, false, false)]
    [InlineData(true, false, false, false)]
    [InlineData(false, true, false, false)]
    [InlineData(true, true, true, false)]
    [InlineData(false, false, true, true)]
    public void ChainBecomesOneTableWithinOneStep(bool halfFirst, bool swap, bool innerQdq, bool mulByReciprocal)
    {
        var b = new QdqGraphBuilder(41);
        var m = Build(b, halfFirst, swap, innerQdq, mulByReciprocal);
        var copy = m.Clone();
        IntegerLowering.Apply(copy);
        var ops = copy.Graph.Nodes.Select(n => n.OpType).ToArray();
        Assert.Contains("Lut", ops);
        Assert.DoesNotContain("Erf", ops);
        Assert.DoesNotContain("Mul", ops);

        var reference = QdqGraphBuilder.Run(m, b.Feeds, lowered: false).Single().Value.As<float>();
        var lowered = QdqGraphBuilder.Run(m, b.Feeds, lowered: true).Single().Value.As<float>();
        var x = b.Feeds["x"].As<float>().Data;
        for (int i = 0; i < x.Length; i++)
        {
            // The table emulates the graph's own float operations: the same codes as the unlowered run.
            Assert.True(lowered.Data[i] == reference.Data[i], $"[{i}] lowered {lowered.Data[i]}, float graph {reference.Data[i]}");
            if (innerQdq) continue;
            // Without inner roundings that is the exact GELU of the dequantized input rounded once (zero point 20).
            double xv = (Math.Clamp(Math.Round(x[i] / XScale, MidpointRounding.ToEven) + 128, 0, 255) - 128) * XScale;
            double gelu = 0.5 * xv * (1 + ActivationMath.Erf(xv / Math.Sqrt(2)));
            Assert.True(Math.Abs(lowered.Data[i] - gelu) <= YScale * 0.5 + 1e-5, $"[{i}] x={xv}: lowered {lowered.Data[i]}, exact {gelu}");
        }
    }

    [Fact]
    public void OtherConstantsAreNotTakenForGelu()
    {
        // Add(2) instead of Add(1): not a GELU, must stay as it is.
        var b = new QdqGraphBuilder(42);
        var xd = b.Qdq(b.Input("x", -3f, 3f, 2, 9), XScale, 128);
        var e = b.Node("Erf", [b.Node("Div", [xd, b.Edit.AddInitializer("c", new Tensor<float>([MathF.Sqrt(2f)], []))])]);
        var a = b.Node("Add", [e, b.Edit.AddInitializer("c", new Tensor<float>([2f], []))]);
        var m1 = b.Node("Mul", [a, xd]);
        var m = b.Finish(b.Qdq(b.Node("Mul", [m1, b.Edit.AddInitializer("c", new Tensor<float>([0.5f], []))]), YScale, 20));
        var copy = m.Clone();
        IntegerLowering.Apply(copy);
        Assert.Contains("Erf", copy.Graph.Nodes.Select(n => n.OpType));
    }
}
