using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Lowering;

/// <summary>
/// Lowered (integer) and unlowered (float reference between DequantizeLinear and QuantizeLinear) runs of small QDQ
/// graphs agree to one quantization step of the output; the lowered graph really uses the integer operators.
/// </summary>
public class IntegerLoweringTests
{
    private const float OutScale = 0.05f;

    /// <summary>Runs both ways and checks |lowered − reference| ≤ one output step; returns the lowered model's integer node count.</summary>
    private static int AssertWithinOneStep(Model model, Dictionary<string, Tensor> feeds, float step = OutScale,
        RequantizationMode mode = RequantizationMode.Float, int expectInteger = 1)
    {
        var reference = QdqGraphBuilder.Run(model, feeds, lowered: false);
        var lowered = QdqGraphBuilder.Run(model, feeds, lowered: true, mode);
        foreach (var (name, r) in reference)
        {
            var a = r.As<float>();
            var b = lowered[name].As<float>();
            Assert.Equal(a.Shape, b.Shape);
            for (int i = 0; i < a.Length; i++)
                Assert.True(Math.Abs(a.Data[i] - b.Data[i]) <= step * 1.001f + 1e-5f, $"{name}[{i}]: reference {a.Data[i]}, lowered {b.Data[i]}");
        }
        var copy = model.Clone();
        IntegerLowering.Apply(copy);
        int count = copy.Graph.Nodes.Count(n => n.Domain == IntegerLowering.Domain);
        Assert.True(count >= expectInteger, $"expected {expectInteger} integer node(s), got {count}: {string.Join(", ", copy.Graph.Nodes.Select(n => n.Describe()))}");
        return count;
    }

    private static Model ConvModel(QdqGraphBuilder b, int[] xShape, int[] wShape, int group, bool relu, bool perChannel, out float xScale,
        long[]? strides = null, long[]? pads = null)
    {
        var x = b.Input("x", -1f, 1f, xShape);
        xScale = 2f / 255;
        var xq = b.Qdq(x, xScale, 128);
        var (w, ws) = b.Weight(wShape, 0, perChannel);
        var bias = b.Bias(wShape[0], xScale, ws);
        var attrs = new List<NodeAttribute> { NodeAttribute.Of("group", (long)group), NodeAttribute.Of("pads", pads ?? [1, 1, 1, 1]) };
        if (strides is not null) attrs.Add(NodeAttribute.Of("strides", strides));
        var y = b.Node("Conv", [xq, w, bias], [.. attrs]);
        if (relu) y = b.Node("Relu", [y]);
        return b.Finish(b.Qdq(y, OutScale, relu ? 0 : 128));
    }

    [Theory]
    [InlineData(1, true, true)]
    [InlineData(1, false, true)]
    [InlineData(1, true, false)]
    [InlineData(2, true, true)]
    public void ConvWithBiasAndRelu(int group, bool relu, bool perChannel)
    {
        var b = new QdqGraphBuilder(1);
        var m = ConvModel(b, [2, 4, 9, 7], [6, 4 / group, 3, 3], group, relu, perChannel, out _, strides: [2, 1]);
        AssertWithinOneStep(m, b.Feeds);
    }

    [Fact]
    public void DepthwiseConv()
    {
        var b = new QdqGraphBuilder(2);
        var m = ConvModel(b, [2, 5, 8, 8], [5, 1, 3, 3], 5, relu: true, perChannel: true, out _);
        AssertWithinOneStep(m, b.Feeds);
    }

    /// <summary>
    /// The 2-D direct path (stride-phase planes) equals, bit for bit, what a 3-D convolution with a depth-1 kernel
    /// computes (depthwise: the tap loop; one input channel: im2col and GEMM) over an input whose two depth slices
    /// both hold the 2-D input.
    /// </summary>
    [Theory]
    [InlineData(2, 1, 1, 1)]
    [InlineData(2, 2, 1, 1)]
    [InlineData(1, 2, 2, 1)]
    [InlineData(3, 1, 1, 2)]
    [InlineData(2, 1, 1, 1, 1, 5)]
    [InlineData(1, 1, 1, 1, 2, 4)]
    public void DepthwisePhasedPathMatchesTapLoop(int strideH, int strideW, int dilationH, int dilationW, int c = 6, int mOut = 6)
    {
        int n = 2, h = 11, w = 10, group = Math.Min(c, mOut);
        Model Build(QdqGraphBuilder b, bool threeD)
        {
            var x = threeD ? b.Input("x", -1f, 1f, n, c, 2, h, w) : b.Input("x", -1f, 1f, n, c, h, w);
            if (!threeD) b.Random(n * c * h * w, -1f, 1f);
            var xq = b.Qdq(x, 2f / 255, 128);
            var (wq, ws) = b.Weight(threeD ? [mOut, c / group, 1, 3, 3] : [mOut, c / group, 3, 3], 0, true);
            var bias = b.Bias(mOut, 2f / 255, ws);
            var attrs = threeD
                ? new[] { NodeAttribute.Of("group", (long)group), NodeAttribute.Of("pads", new long[] { 0, 1, 0, 0, 2, 1 }),
                    NodeAttribute.Of("strides", new long[] { 1, strideH, strideW }), NodeAttribute.Of("dilations", new long[] { 1, dilationH, dilationW }) }
                : new[] { NodeAttribute.Of("group", (long)group), NodeAttribute.Of("pads", new long[] { 1, 0, 2, 1 }),
                    NodeAttribute.Of("strides", new long[] { strideH, strideW }), NodeAttribute.Of("dilations", new long[] { dilationH, dilationW }) };
            return b.Finish(b.Qdq(b.Node("Relu", [b.Node("Conv", [xq, wq, bias], attrs)]), OutScale, 0));
        }
        var b2 = new QdqGraphBuilder(21);
        var m2 = Build(b2, false);
        var b3 = new QdqGraphBuilder(21);
        var m3 = Build(b3, true);
        var x2 = b2.Feeds["x"].As<float>().Data;
        var x3 = new float[x2.Length * 2];
        int plane = h * w;
        for (int nc = 0; nc < n * c; nc++)
            for (int d = 0; d < 2; d++) Array.Copy(x2, nc * plane, x3, (nc * 2 + d) * plane, plane);
        b3.Feeds["x"] = new Tensor<float>(x3, [n, c, 2, h, w]);
        foreach (var m in new[] { m2, m3 })
        {
            var copy = m.Clone();
            IntegerLowering.Apply(copy);
            Assert.Contains(copy.Graph.Nodes, node => node.Domain == IntegerLowering.Domain && node.OpType == "Conv");
        }
        var y2 = QdqGraphBuilder.Run(m2, b2.Feeds, lowered: true).Single().Value.As<float>();
        var y3 = QdqGraphBuilder.Run(m3, b3.Feeds, lowered: true).Single().Value.As<float>();
        int outPlane = y2.Shape[2] * y2.Shape[3];
        Assert.Equal(y2.Length * 2, y3.Length);
        for (int nc = 0; nc < n * mOut; nc++)
            for (int d = 0; d < 2; d++)
                for (int i = 0; i < outPlane; i++)
                    Assert.Equal(y2.Data[nc * outPlane + i], y3.Data[(nc * 2 + d) * outPlane + i]);
    }

    /// <summary>
    /// The group-1 2-D path (weights-on-the-left GEMM with im2col rows and the fused requantization) equals, bit for
    /// bit, the 3-D path (position-major im2col and the packed-weights GEMM) over an input whose two depth slices
    /// both hold the 2-D input; u8 and s8 activations, with and without a folded Relu, 1×1 and 3×3 kernels.
    /// </summary>
    [Theory]
    [InlineData(3, 1, 1, 1, 1, true, false)]
    [InlineData(3, 2, 1, 1, 1, true, true)]
    [InlineData(3, 1, 2, 2, 1, false, false)]
    [InlineData(3, 1, 1, 1, 2, false, true)]
    [InlineData(1, 1, 1, 1, 1, true, false)]
    [InlineData(1, 2, 2, 1, 1, false, true)]
    [InlineData(5, 1, 1, 1, 1, true, true)]
    [InlineData(3, 1, 1, 1, 1, true, false, 1)]
    [InlineData(3, 1, 1, 2, 2, false, true, 2)]
    [InlineData(5, 1, 1, 1, 1, false, false, 2)]
    [InlineData(3, 1, 1, 1, 1, true, true, 1, 7)]
    [InlineData(1, 1, 1, 1, 1, false, false, 0, 6)]
    [InlineData(3, 2, 1, 1, 1, false, false, 0, 5)]
    public void ChannelGemmConvMatchesThreeDimensionalPath(int kernel, int strideH, int strideW, int dilationH, int dilationW, bool relu, bool signedX,
        int samePad = 0, int n = 2)
    {
        // samePad > 0: symmetric pads that keep the output size (the shifted-plane im2col rows).
        // Column chunks run across images (n·P columns); larger batches put several image boundaries in a chunk.
        int c = 5, mOut = 7, h = 11, w = 13;
        bool pointwise = kernel == 1 && strideH == 1 && strideW == 1;
        Model Build(QdqGraphBuilder b, bool threeD)
        {
            var x = threeD ? b.Input("x", -1f, 1f, n, c, 2, h, w) : b.Input("x", -1f, 1f, n, c, h, w);
            if (!threeD) b.Random(n * c * h * w, -1f, 1f);
            var xq = b.Qdq(x, 2f / 255, signedX ? 3 : 128, signedX);
            var (wq, ws) = b.Weight(threeD ? [mOut, c, 1, kernel, kernel] : [mOut, c, kernel, kernel], 0, true);
            var bias = b.Bias(mOut, 2f / 255, ws);
            long sp = samePad;
            long[] pads2 = samePad > 0 ? [sp, sp, sp, sp] : pointwise ? [0, 0, 0, 0] : [1, 0, 2, 1];
            long[] pads3 = samePad > 0 ? [0, sp, sp, 0, sp, sp] : pointwise ? [0, 0, 0, 0, 0, 0] : [0, 1, 0, 0, 2, 1];
            var attrs = threeD
                ? new[] { NodeAttribute.Of("pads", pads3), NodeAttribute.Of("strides", new long[] { 1, strideH, strideW }),
                    NodeAttribute.Of("dilations", new long[] { 1, dilationH, dilationW }) }
                : new[] { NodeAttribute.Of("pads", pads2), NodeAttribute.Of("strides", new long[] { strideH, strideW }),
                    NodeAttribute.Of("dilations", new long[] { dilationH, dilationW }) };
            var y = b.Node("Conv", [xq, wq, bias], attrs);
            if (relu) y = b.Node("Relu", [y]);
            return b.Finish(b.Qdq(y, OutScale, relu ? 0 : 128));
        }
        var b2 = new QdqGraphBuilder(31);
        var m2 = Build(b2, false);
        var b3 = new QdqGraphBuilder(31);
        var m3 = Build(b3, true);
        var x2 = b2.Feeds["x"].As<float>().Data;
        var x3 = new float[x2.Length * 2];
        int plane = h * w;
        for (int nc = 0; nc < n * c; nc++)
            for (int d = 0; d < 2; d++) Array.Copy(x2, nc * plane, x3, (nc * 2 + d) * plane, plane);
        b3.Feeds["x"] = new Tensor<float>(x3, [n, c, 2, h, w]);
        var y2 = QdqGraphBuilder.Run(m2, b2.Feeds, lowered: true).Single().Value.As<float>();
        var y3 = QdqGraphBuilder.Run(m3, b3.Feeds, lowered: true).Single().Value.As<float>();
        int outPlane = y2.Shape[2] * y2.Shape[3];
        if (samePad > 0) Assert.Equal(new[] { h, w }, y2.Shape[2..]);
        Assert.Equal(y2.Length * 2, y3.Length);
        for (int nc = 0; nc < n * mOut; nc++)
            for (int d = 0; d < 2; d++)
                for (int i = 0; i < outPlane; i++)
                    Assert.Equal(y2.Data[nc * outPlane + i], y3.Data[(nc * 2 + d) * outPlane + i]);
        AssertWithinOneStep(m2, b2.Feeds);
        if (n <= 2) return;
        // Fixed-point requantization: the int32 accumulators leave the GEMM per chunk and go through the output stage.
        var f2 = QdqGraphBuilder.Run(m2, b2.Feeds, lowered: true, RequantizationMode.FixedPoint).Single().Value.As<float>();
        var f3 = QdqGraphBuilder.Run(m3, b3.Feeds, lowered: true, RequantizationMode.FixedPoint).Single().Value.As<float>();
        for (int nc = 0; nc < n * mOut; nc++)
            for (int i = 0; i < outPlane; i++)
                Assert.Equal(f2.Data[nc * outPlane + i], f3.Data[(nc * 2 + 1) * outPlane + i]);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    public void SingleInputChannelPerGroupConv(int channels, int group)
    {
        var b = new QdqGraphBuilder(13);
        var m = ConvModel(b, [2, channels, 7, 9], [4, 1, 3, 3], group, relu: true, perChannel: true, out _, strides: [1, 2]);
        AssertWithinOneStep(m, b.Feeds);
    }

    /// <summary>The vectorised per-channel requantization equals the scalar formula in both modes, extremes included.</summary>
    [Theory]
    [InlineData(RequantizationMode.Float)]
    [InlineData(RequantizationMode.FixedPoint)]
    public void ChannelRequantizationMatchesScalar(RequantizationMode mode)
    {
        var rnd = new Random(41);
        int channels = 5;
        var accScale = Enumerable.Range(0, channels).Select(i => (float)Math.Pow(10, -rnd.Next(1, 7)) * (float)(0.5 + rnd.NextDouble())).ToArray();
        var bias = Enumerable.Range(0, channels).Select(_ => (float)(rnd.NextDouble() * 4 - 2)).ToArray();
        var rq = new Requantizer(channels, accScale, bias, 0.05f, 7, 0, 255, mode);
        for (int len = 0; len <= 40; len++)
            for (int c = 0; c < channels; c++)
            {
                var acc = Enumerable.Range(0, len).Select(_ => rnd.Next(6) switch
                {
                    0 => int.MaxValue,
                    1 => int.MinValue,
                    2 => rnd.Next(-1 << 20, 1 << 20),
                    _ => rnd.Next(int.MinValue, int.MaxValue),
                }).ToArray();
                var expected = acc.Select(a => rq.Apply(a, c)).ToArray();
                rq.ApplyChannel(acc, c);
                Assert.Equal(expected, acc);
            }
    }

    [Fact]
    public void FixedPointRequantizationAgreesWithinOneStep()
    {
        var b = new QdqGraphBuilder(3);
        var m = ConvModel(b, [1, 3, 6, 6], [4, 3, 3, 3], 1, relu: true, perChannel: true, out _);
        AssertWithinOneStep(m, b.Feeds, mode: RequantizationMode.FixedPoint);
        var f = QdqGraphBuilder.Run(m, b.Feeds, true).Single().Value.As<float>();
        var q = QdqGraphBuilder.Run(m, b.Feeds, true, RequantizationMode.FixedPoint).Single().Value.As<float>();
        for (int i = 0; i < f.Length; i++) Assert.True(Math.Abs(f.Data[i] - q.Data[i]) <= OutScale * 1.001f);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void GemmAndMatMul(bool gemm)
    {
        var b = new QdqGraphBuilder(4);
        var x = b.Input("x", -1f, 1f, gemm ? [5, 33] : [2, 3, 33]);
        var xq = b.Qdq(x, 2f / 255, 120);
        Value y;
        if (gemm)
        {
            var (w, ws) = b.Weight([17, 33], 0, perChannel: true);
            y = b.Node("Gemm", [xq, w, b.Bias(17, 2f / 255, ws)], NodeAttribute.Of("transB", 1L));
        }
        else
        {
            var (w, _) = b.Weight([33, 17], 1, perChannel: true);
            y = b.Node("MatMul", [xq, w]);
        }
        var m = b.Finish(b.Qdq(y, 0.08f, 128));
        AssertWithinOneStep(m, b.Feeds, step: 0.08f);
    }

    [Fact]
    public void GemmWithFloatOutputIsComputedFromTheAccumulator()
    {
        var b = new QdqGraphBuilder(5);
        var x = b.Input("x", -1f, 1f, 4, 20);
        var xq = b.Qdq(x, 2f / 255, 128);
        var (w, ws) = b.Weight([10, 20], 0, perChannel: true);
        var y = b.Node("Gemm", [xq, w, b.Bias(10, 2f / 255, ws)], NodeAttribute.Of("transB", 1L));
        var m = b.Finish(y);
        AssertWithinOneStep(m, b.Feeds, step: 1e-4f);
    }

    [Theory]
    [InlineData("Add", false)]
    [InlineData("Add", true)]
    [InlineData("Mul", false)]
    public void Binary(string op, bool broadcast)
    {
        var b = new QdqGraphBuilder(6);
        var x1 = b.Qdq(b.Input("a", -1f, 1f, 2, 3, 4, 5), 2f / 255, 128);
        var x2 = b.Qdq(broadcast ? b.Input("b", -2f, 2f, 3, 1, 5) : b.Input("b", -2f, 2f, 2, 3, 4, 5), 4f / 255, 100);
        var m = b.Finish(b.Qdq(b.Node(op, [x1, x2]), OutScale, 128));
        AssertWithinOneStep(m, b.Feeds);
    }

    [Fact]
    public void ConcatRequantizesInputsToTheOutputScale()
    {
        var b = new QdqGraphBuilder(7);
        var x1 = b.Qdq(b.Input("a", -1f, 1f, 2, 3, 4), 2f / 255, 128);
        var x2 = b.Qdq(b.Input("b", 0f, 3f, 2, 5, 4), 3f / 255, 0);
        var m = b.Finish(b.Qdq(b.Node("Concat", [x1, x2], NodeAttribute.Of("axis", 1L)), 0.02f, 60));
        AssertWithinOneStep(m, b.Feeds, step: 0.02f);
    }

    [Fact]
    public void PoolingOnQuantizedValues()
    {
        var b = new QdqGraphBuilder(8);
        var x = b.Qdq(b.Input("x", -1f, 1f, 2, 3, 8, 8), 2f / 255, 128);
        var mp = b.Node("MaxPool", [x], NodeAttribute.Of("kernel_shape", new long[] { 2, 2 }), NodeAttribute.Of("strides", new long[] { 2, 2 }));
        var mpq = b.Qdq(mp, 2f / 255, 128);
        var gap = b.Node("GlobalAveragePool", [mpq]);
        var m = b.Finish(b.Qdq(gap, 0.01f, 128));
        int count = AssertWithinOneStep(m, b.Feeds, step: 0.01f, expectInteger: 1);
        Assert.True(count >= 1);
    }

    [Theory]
    [InlineData("Sigmoid")]
    [InlineData("Tanh")]
    [InlineData("HardSwish")]
    [InlineData("Gelu")]
    [InlineData("LeakyRelu")]
    public void LookupTableActivations(string op)
    {
        var b = new QdqGraphBuilder(9);
        var x = b.Qdq(b.Input("x", -6f, 6f, 3, 50), 12f / 255, 128);
        var m = b.Finish(b.Qdq(b.Node(op, [x]), 2f / 255, op is "Sigmoid" ? 0 : 128));
        m.SetOpset("", 21);
        AssertWithinOneStep(m, b.Feeds, step: 2f / 255);
    }

    [Theory]
    [InlineData(false, 17)]
    [InlineData(true, 17)]
    [InlineData(false, 1)]
    [InlineData(false, 300)]
    public void SoftmaxOverTheLastAxisRunsOnCodesWithAnExponentTable(bool signedInput, int cols)
    {
        // Attention-like logits in [−8, 8] (u8 or s8 codes), probabilities at scale 1/256 as the quantizer writes them.
        var b = new QdqGraphBuilder(cols + (signedInput ? 1 : 0));
        var x = b.Qdq(b.Input("x", -8f, 8f, 3, 5, cols), 16f / 255, signedInput ? 0 : 128, signed: signedInput);
        var m = b.Finish(b.Qdq(b.Node("Softmax", [x], NodeAttribute.Of("axis", -1L)), 1f / 256, 0));
        AssertWithinOneStep(m, b.Feeds, step: 1f / 256);
        var copy = m.Clone();
        IntegerLowering.Apply(copy);
        Assert.Contains(copy.Graph.Nodes, n => n.Domain == IntegerLowering.Domain && n.OpType == "Softmax");
    }

    [Fact]
    public void SoftmaxWithoutAnExplicitLastAxisStaysFloat()
    {
        // No axis attribute: opset < 13 means axis 1 with 2-D coercion, so only an explicit −1 is lowered.
        var b = new QdqGraphBuilder(31);
        var x = b.Qdq(b.Input("x", -8f, 8f, 2, 3, 4), 16f / 255, 128);
        var m = b.Finish(b.Qdq(b.Node("Softmax", [x]), 1f / 256, 0));
        var copy = m.Clone();
        IntegerLowering.Apply(copy);
        Assert.Contains(copy.Graph.Nodes, n => n.Domain.Length == 0 && n.OpType == "Softmax");
    }

    [Fact]
    public void ChainsStayInTheIntegerDomain()
    {
        // Conv+Relu → MaxPool → Conv → Flatten → Gemm: only the first Q and the last DQ stay float.
        var b = new QdqGraphBuilder(10);
        var x = b.Qdq(b.Input("x", -1f, 1f, 2, 2, 8, 8), 2f / 255, 128);
        var (w1, s1) = b.Weight([4, 2, 3, 3], 0, true);
        var c1 = b.Qdq(b.Node("Relu", [b.Node("Conv", [x, w1, b.Bias(4, 2f / 255, s1)], NodeAttribute.Of("pads", new long[] { 1, 1, 1, 1 }))]), 0.03f, 0);
        var p = b.Qdq(b.Node("MaxPool", [c1], NodeAttribute.Of("kernel_shape", new long[] { 2, 2 }), NodeAttribute.Of("strides", new long[] { 2, 2 })), 0.03f, 0);
        var (w2, s2) = b.Weight([3, 4, 3, 3], 0, true);
        var c2 = b.Qdq(b.Node("Conv", [p, w2, b.Bias(3, 0.03f, s2)]), 0.05f, 128);
        var f = b.Qdq(b.Node("Flatten", [c2]), 0.05f, 128);
        var (w3, s3) = b.Weight([5, 12], 0, true);
        var y = b.Qdq(b.Node("Gemm", [f, w3, b.Bias(5, 0.05f, s3)], NodeAttribute.Of("transB", 1L)), 0.1f, 128);
        var m = b.Finish(y);
        var copy = m.Clone();
        IntegerLowering.Apply(copy);
        var ops = copy.Graph.Nodes.Select(n => n.OpType).ToArray();
        Assert.Equal(1, ops.Count(o => o == "QuantizeLinear"));
        Assert.Equal(1, ops.Count(o => o == "DequantizeLinear"));
        Assert.DoesNotContain("Relu", ops);
        // Requantization errors compound over the chain: compare with a tolerance of a few output steps.
        var r = QdqGraphBuilder.Run(m, b.Feeds, false).Single().Value.As<float>();
        var l = QdqGraphBuilder.Run(m, b.Feeds, true).Single().Value.As<float>();
        for (int i = 0; i < r.Length; i++) Assert.True(Math.Abs(r.Data[i] - l.Data[i]) <= 0.1f * 3.001f, $"[{i}] {r.Data[i]} vs {l.Data[i]}");
    }

    [Fact]
    public void ResultsDoNotDependOnThreadCount()
    {
        var b = new QdqGraphBuilder(11);
        var m = ConvModel(b, [3, 4, 10, 10], [8, 4, 3, 3], 1, relu: true, perChannel: true, out _);
        var one = QdqGraphBuilder.Run(m, b.Feeds, true, threads: 1).Single().Value.As<float>();
        var two = QdqGraphBuilder.Run(m, b.Feeds, true, threads: 2).Single().Value.As<float>();
        Assert.Equal(one.Data, two.Data);
    }

    [Fact]
    public void FloatModelsAreNotChanged()
    {
        var b = new QdqGraphBuilder(12);
        var m = b.Finish(b.Node("Relu", [b.Input("x", -1f, 1f, 4)]));
        Assert.False(IntegerLowering.IsApplicable(m));
        Assert.Equal(0, IntegerLowering.Apply(m));
    }
}
