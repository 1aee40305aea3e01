using QuantSharp.Graph;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Lowering;

/// <summary>
/// The integer convolution with one input channel per group (depthwise, channel multipliers, one-channel stems) in
/// 2-D, computed through exact float tap sums (<c>FloatDepthwise</c>) with the fused requantization, equals bit for bit
/// the 3-D path (integer tap loop, or im2col and GEMM for group 1) over an input whose two depth slices both hold the
/// 2-D input, over odd plane sizes, channel counts, strides 1 and 2, padding, u8 and s8 activations, both
/// requantization modes and float outputs.
/// </summary>
public class IntDepthwiseTests
{
    private static Model Build(QdqGraphBuilder b, bool threeD, int n, int c, int mOut, int group, int h, int w, int k, int stride,
        long[] pads, bool signedX, bool relu, bool floatOut)
    {
        var x = threeD ? b.Input("x", -1f, 1f, n, c, 2, h, w) : b.Input("x", -1f, 1f, n, c, h, w);
        if (!threeD) b.Random(n * c * h * w, -1f, 1f);
        var xq = b.Qdq(x, 2f / 255, signedX ? -5 : 131, signedX);
        var (wq, ws) = b.Weight(threeD ? [mOut, c / group, 1, k, k] : [mOut, c / group, k, k], 0, true);
        var bias = b.Bias(mOut, 2f / 255, ws);
        var attrs = threeD
            ? new[] { NodeAttribute.Of("group", (long)group), NodeAttribute.Of("pads", new long[] { 0, pads[0], pads[1], 0, pads[2], pads[3] }),
                NodeAttribute.Of("strides", new long[] { 1, stride, stride }) }
            : new[] { NodeAttribute.Of("group", (long)group), NodeAttribute.Of("pads", pads),
                NodeAttribute.Of("strides", new long[] { stride, stride }) };
        var y = b.Node("Conv", [xq, wq, bias], attrs);
        if (relu) y = b.Node("Relu", [y]);
        return b.Finish(floatOut ? y : b.Qdq(y, 0.05f, relu ? 0 : 128));
    }

    private static void Check(int seed, int n, int c, int mOut, int group, int h, int w, int k, int stride, long[] pads, bool signedX,
        bool relu, bool floatOut, RequantizationMode mode)
    {
        var b2 = new QdqGraphBuilder(seed);
        var m2 = Build(b2, false, n, c, mOut, group, h, w, k, stride, pads, signedX, relu, floatOut);
        var b3 = new QdqGraphBuilder(seed);
        var m3 = Build(b3, true, n, c, mOut, group, h, w, k, stride, pads, signedX, relu, floatOut);
        var x2 = b2.Feeds["x"].As<float>().Data;
        var x3 = new float[x2.Length * 2];
        int plane = h * w;
        for (int nc = 0; nc < n * c; nc++)
            for (int d = 0; d < 2; d++) Array.Copy(x2, nc * plane, x3, (nc * 2 + d) * plane, plane);
        b3.Feeds["x"] = new Tensor<float>(x3, [n, c, 2, h, w]);
        var copy = m2.Clone();
        IntegerLowering.Apply(copy);
        Assert.Contains(copy.Graph.Nodes, node => node.Domain == IntegerLowering.Domain && node.OpType == "Conv");
        var y2 = QdqGraphBuilder.Run(m2, b2.Feeds, lowered: true, mode).Single().Value.As<float>();
        var y3 = QdqGraphBuilder.Run(m3, b3.Feeds, lowered: true, mode).Single().Value.As<float>();
        int outPlane = y2.Shape[2] * y2.Shape[3];
        Assert.Equal(y2.Length * 2, y3.Length);
        for (int nc = 0; nc < n * mOut; nc++)
            for (int d = 0; d < 2; d++)
                for (int i = 0; i < outPlane; i++)
                    Assert.True(y2.Data[nc * outPlane + i] == y3.Data[(nc * 2 + d) * outPlane + i],
                        $"c {c} m {mOut} g {group} {h}x{w} k {k} s {stride} pads {string.Join(",", pads)}: plane {nc} element {i}: " +
                        $"{y2.Data[nc * outPlane + i]} vs {y3.Data[(nc * 2 + d) * outPlane + i]}");
    }

    [Fact]
    public void DepthwiseMatchesThreeDimensionalPathOverOddSizes()
    {
        var rnd = new Random(17);
        int[] sizes = [1, 2, 3, 5, 7, 8, 13, 14, 16, 17];
        for (int trial = 0; trial < 36; trial++)
        {
            int c = rnd.Next(1, 18), h = sizes[rnd.Next(sizes.Length)], w = sizes[rnd.Next(sizes.Length)];
            int stride = 1 + trial % 2, k = trial % 6 == 5 ? 5 : 3;
            long p = k / 2;
            long[] pads = (trial / 2 % 3) switch { 0 => [p, p, p, p], 1 => [0, p, p, 0], _ => [0, 0, 0, 0] };
            if ((h + pads[0] + pads[2] < k) || (w + pads[1] + pads[3] < k)) pads = [p, p, p, p];
            Check(100 + trial, 2, c, c, c, h, w, k, stride, pads, signedX: trial % 3 == 1, relu: trial % 4 != 3, floatOut: false,
                RequantizationMode.Float);
        }
    }

    [Theory]
    // Channel multipliers and one-channel stems (group 1: the 3-D reference is im2col and GEMM).
    [InlineData(3, 6, 3, 9, 11, 1, false)]
    [InlineData(1, 16, 1, 28, 28, 1, false)]
    [InlineData(1, 5, 1, 7, 13, 2, true)]
    [InlineData(4, 8, 4, 6, 5, 2, true)]
    public void ChannelMultipliersAndStems(int c, int mOut, int group, int h, int w, int stride, bool signedX)
    {
        Check(7, 2, c, mOut, group, h, w, 3, stride, [1, 1, 1, 1], signedX, relu: true, floatOut: false, RequantizationMode.Float);
    }

    [Theory]
    [InlineData(false, RequantizationMode.FixedPoint)]
    [InlineData(true, RequantizationMode.Float)]
    public void FixedPointAndFloatOutputs(bool floatOut, RequantizationMode mode)
    {
        Check(9, 2, 6, 6, 6, 14, 14, 3, 1, [1, 1, 1, 1], false, relu: true, floatOut, mode);
        Check(10, 2, 5, 5, 5, 15, 9, 3, 2, [1, 1, 1, 1], true, relu: false, floatOut, mode);
    }
}
