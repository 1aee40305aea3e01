using QuantSharp.Graph;
using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Operators;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.NnTestGraph;

namespace QuantSharp.Tests.Operators;

public class NnConvTests
{
    private static WindowAttributes Attrs(NodeAttribute[] attrs)
    {
        var g = new Graph.Graph();
        var n = g.Edit().AddNode("Conv", [], attributes: attrs);
        return WindowAttributes.FromNode(n);
    }

    [Fact]
    public void GeometryFollowsAutoPadRules()
    {
        // SAME: out = ceil(in / s), total pad = (out − 1)·s + k − in = (3 − 1)·2 + 3 − 5 = 2 → 1/1;
        // for in = 6: out 3, total = 4 + 3 − 6 = 1 → SAME_UPPER puts it at the end, SAME_LOWER at the beginning.
        var upper = ConvGeometry.ForConv(Attrs([A("auto_pad", "SAME_UPPER"), L("strides", 2L, 2L)]), [1, 1, 5, 6], [1, 1, 3, 3]);
        Assert.Equal([3, 3], upper.OutputSpatial);
        Assert.Equal([1, 0, 1, 1], upper.Pads());
        var lower = ConvGeometry.ForConv(Attrs([A("auto_pad", "SAME_LOWER"), L("strides", 2L, 2L)]), [1, 1, 5, 6], [1, 1, 3, 3]);
        Assert.Equal([1, 1, 1, 0], lower.Pads());
        var valid = ConvGeometry.ForConv(Attrs([A("auto_pad", "VALID"), L("dilations", 2L)]), [1, 1, 9], [1, 1, 3]);
        Assert.Equal([5], valid.OutputSpatial);
        var explicitPads = ConvGeometry.ForConv(Attrs([L("pads", 1L, 2L), L("strides", 3L)]), [2, 4, 10], [6, 4, 4]);
        Assert.Equal([4], explicitPads.OutputSpatial); // floor((10 + 3 − 4) / 3) + 1
    }

    [Fact]
    public void GeometryForPoolingAndTranspose()
    {
        // ceil_mode: ceil((5 − 2) / 2) + 1 = 3; with pads 1/1 and k=2, s=2 on in=4: ceil(4/2)+1 = 3, but the third
        // window would start at 2·2 − 1 = 3 < 4 + 1, so it stays.
        var ceil = ConvGeometry.ForPool(Attrs([L("kernel_shape", 2L), L("strides", 2L), A("ceil_mode", 1L)]), [1, 1, 5]);
        Assert.Equal([3], ceil.OutputSpatial);
        var floor = ConvGeometry.ForPool(Attrs([L("kernel_shape", 2L), L("strides", 2L)]), [1, 1, 5]);
        Assert.Equal([2], floor.OutputSpatial);
        // A window that would start in the end padding is dropped: in 4, k 2, s 3, pads 0/1 → ceil(3/3)+1 = 2 (start 3 < 4).
        var dropped = ConvGeometry.ForPool(Attrs([L("kernel_shape", 1L), L("strides", 2L), L("pads", 0L, 1L), A("ceil_mode", 1L)]), [1, 1, 4]);
        Assert.Equal([2], dropped.OutputSpatial);

        // ConvTranspose: out = s·(in − 1) + output_padding + (k − 1)·d + 1 − pads = 2·2 + 1 + 3 − 2 = 6.
        var t = ConvGeometry.ForConvTranspose(Attrs([L("strides", 2L), L("output_padding", 1L), L("pads", 1L, 1L)]), [1, 2, 3], [2, 4, 3]);
        Assert.Equal([6], t.OutputSpatial);
        Assert.Equal(4, t.OutputChannels);
        // output_shape 10 from in 3, s 3, k 3: total pad = 3·2 + 3 − 10 = −1 → 0; explicit 8: total 1 → begin 1 (NOTSET).
        var os = ConvGeometry.ForConvTranspose(Attrs([L("strides", 3L), L("output_shape", 8L)]), [1, 1, 3], [1, 1, 3]);
        Assert.Equal([8], os.OutputSpatial);
        Assert.Equal([1, 0], os.Pads());
    }

    [Fact]
    public void ReferenceConvMatchesHandComputedValues()
    {
        // 1×1×3×3 input 1..9, 2×2 kernel of ones, pads 0: each output is the sum of a 2×2 block.
        var attrs = Attrs([]);
        var g = ConvGeometry.ForConv(attrs, [1, 1, 3, 3], [1, 1, 2, 2]);
        var y = new float[4];
        ConvReference.Conv(g, [1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 1, 1], [10], y);
        Assert.Equal([10 + 12, 10 + 16, 10 + 24, 10 + 28], y);
        // Transposed 1-D: x = [1, 2], w = [1, 1, 1] scatters to [1, 1+2, 1+2, 2].
        var gt = ConvGeometry.ForConvTranspose(attrs, [1, 1, 2], [1, 1, 3]);
        var yt = new float[4];
        ConvReference.ConvTranspose(gt, [1, 2], [1, 1, 1], default, yt);
        Assert.Equal([1, 3, 3, 2], yt);
    }

    public static TheoryData<string> ConvCases() => new()
    {
        // batch, C, M, group, spatial…, kernel…, extra attributes (key=value;…)
        "1,3,4,1|7,9|3,3|",
        "2,4,6,2|8,8|3,3|strides=2,2;pads=1,1,1,1",
        "1,6,6,6|9,7|3,3|pads=1,1,1,1",
        "2,5,5,5|8,8|3,3|strides=2,2;auto_pad=SAME_UPPER",
        "1,4,4,4|10,9|5,3|dilations=2,1;pads=2,0,1,1",
        "1,3,8,1|6,6|1,1|",
        "2,8,4,2|5,5|1,1|",
        "1,3,5,1|9,9|1,1|strides=2,2",
        "1,2,3,1|10|3|",
        "2,4,4,2|17|4|strides=3;dilations=2;auto_pad=SAME_LOWER",
        "1,2,3,1|5,6,4|3,2,3|pads=1,0,1,1,1,0",
        "1,4,4,4|5,5,5|3,3,3|strides=2,1,2;pads=1,1,1,1,1,1",
        "1,3,2,1|6,5|3,3|auto_pad=VALID;strides=1,2",
        "1,6,9,3|11,12|3,3|dilations=2,3;strides=2,1;pads=0,2,3,1",
        "1,1,1,1|2,2|3,3|pads=1,1,1,1",
        "1,2,2,1|1,1,1,1|1,1,1,1|",
        // Depthwise rows wide enough for the vector path, with borders on both sides.
        "2,3,3,3|12,37|3,3|pads=1,1,1,1",
        "1,2,2,2|9,40|5,5|dilations=1,2;pads=2,4,2,4",
        "1,2,2,2|6,33|3,1|pads=0,0,1,0",
        // C·k ≥ 8192 makes the im2col slab 512 columns, so these run in several slabs that split output rows.
        "1,1024,2,1|24,24|3,3|pads=1,1,1,1",
        "2,1024,2,2|30,25|3,3|strides=1,1",
        // Batches of small images share GEMMs: slabs of columns cross image boundaries; unit-stride rows with
        // OW = IW take the shifted-copy im2col (symmetric, asymmetric and dilated padding, 1-D, K > 256).
        "5,16,32,1|14,14|3,3|pads=1,1,1,1",
        "3,32,64,1|7,7|3,3|pads=1,1,1,1",
        "3,4,5,1|6,9|3,3|pads=2,0,0,2",
        "2,3,4,1|8,8|3,3|dilations=2,2;pads=2,2,2,2",
        "3,2,3,1|10|3|pads=1,1",
        "4,6,4,2|5,7|3,3|pads=1,1,1,1",
        // One input channel per group with several outputs each (one-channel stem, channel multiplier 3): the
        // stride-phase direct kernel.
        "2,1,6,1|9,11|3,3|pads=1,1,1,1",
        "2,2,6,2|8,9|3,3|strides=2,2;pads=1,1,1,1",
    };

    private static (int[] x, int[] w, int group, NodeAttribute[] attrs) Parse(string spec, bool transpose = false)
    {
        var parts = spec.Split('|');
        var head = parts[0].Split(',').Select(int.Parse).ToArray();
        var spatial = parts[1].Split(',').Select(int.Parse).ToArray();
        var kernel = parts[2].Split(',').Select(int.Parse).ToArray();
        int n = head[0], c = head[1], m = head[2], group = head[3];
        var attrs = new List<NodeAttribute> { A("group", (long)group) };
        foreach (var kv in parts[3].Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var (k, v) = (kv.Split('=')[0], kv.Split('=')[1]);
            attrs.Add(k == "auto_pad" ? A(k, v) : L(k, v.Split(',').Select(long.Parse).ToArray()));
        }
        int[] w = transpose ? [c, m / group, .. kernel] : [m, c / group, .. kernel];
        return ([n, c, .. spatial], w, group, attrs.ToArray());
    }

    [Theory]
    [MemberData(nameof(ConvCases))]
    public void ConvMatchesReference(string spec)
    {
        var (xs, ws, _, attrs) = Parse(spec);
        var rnd = new Random(spec.Length * 31 + xs.Sum());
        var x = Random(rnd, xs);
        var w = Random(rnd, ws);
        var b = Random(rnd, ws[0]);
        var g = ConvGeometry.ForConv(WindowAttributes.FromNode(Build("Conv", [], attrs, 1, 17).Graph.Nodes[0]), xs, ws);
        var expected = new Tensor<float>(g.OutputShape());
        ConvReference.Conv(g, x.Data, w.Data, b.Data, expected.Data);
        var noBias = new Tensor<float>(g.OutputShape());
        ConvReference.Conv(g, x.Data, w.Data, default, noBias.Data);

        AssertClose(expected, Run("Conv", [R(x), C(w), C(b)], attrs)[0]);
        AssertClose(expected, Run("Conv", [R(x), R(w), R(b)], attrs, threads: 2)[0]);
        AssertClose(noBias, Run("Conv", [R(x), C(w)], attrs)[0]);
        // Thread count never changes the result bits.
        Assert.Equal(Run("Conv", [R(x), C(w), C(b)], attrs, threads: 1)[0].As<float>().Data,
            Run("Conv", [R(x), C(w), C(b)], attrs, threads: 3)[0].As<float>().Data);
    }

    public static TheoryData<string> TransposeCases() => new()
    {
        "1,2,3,1|4,5|3,3|",
        "2,4,6,2|3,4|3,3|strides=2,2;pads=1,0,1,1",
        "1,3,2,1|5,5|3,3|strides=2,2;output_padding=1,1",
        "1,2,2,1|4,4|2,3|strides=3,2;dilations=2,1",
        "1,2,4,2|3,3|3,3|strides=2,2;output_shape=6,6",
        "1,1,2,1|3,3|3,3|strides=2,2;auto_pad=SAME_UPPER",
        "1,1,2,1|3,3|3,3|strides=2,2;auto_pad=SAME_LOWER",
        "1,2,3,1|6|4|strides=2;pads=1,2",
        "1,2,2,1|3,2,3|2,2,2|strides=2,1,2",
        "1,4,4,4|5,5|3,3|strides=2,2",
        "1,3,2,1|1,1|1,1|",
    };

    [Theory]
    [MemberData(nameof(TransposeCases))]
    public void ConvTransposeMatchesReference(string spec)
    {
        var (xs, ws, _, attrs) = Parse(spec, transpose: true);
        var rnd = new Random(spec.Length * 17 + xs.Sum());
        var x = Random(rnd, xs);
        var w = Random(rnd, ws);
        var node = Build("ConvTranspose", [], attrs, 1, 17).Graph.Nodes[0];
        var g = ConvGeometry.ForConvTranspose(WindowAttributes.FromNode(node), xs, ws);
        var b = Random(rnd, g.OutputChannels);
        var expected = new Tensor<float>(g.OutputShape());
        ConvReference.ConvTranspose(g, x.Data, w.Data, b.Data, expected.Data);
        AssertClose(expected, Run("ConvTranspose", [R(x), C(w), C(b)], attrs)[0]);
        AssertClose(expected, Run("ConvTranspose", [R(x), R(w), R(b)], attrs, threads: 2)[0]);
    }

    [Fact]
    public void ShapeInferenceKeepsSymbolicBatch()
    {
        var g = new Graph.Graph();
        var e = g.Edit();
        var x = e.AddInput("x", new TensorTypeInfo(DataType.Float, [new Dimension(null, "N"), 3, 32, 32]));
        var w = e.AddInitializer("w", new Tensor<float>([8, 3, 3, 3]));
        e.AddNode("Conv", [x, w], attributes: [L("strides", 2L, 2L), L("pads", 1L, 1L, 1L, 1L)]);
        var m = new Model(g);
        m.SetOpset("", 17);
        var t = Infer(m)[0]!;
        Assert.Equal("N", t.Shape![0].Symbol);
        Assert.Equal(new long?[] { null, 8, 16, 16 }, t.Shape.Select(d => d.Value).ToArray());
    }

    [Fact]
    public void ConvTransposeShapeInference()
    {
        // out = 2·(5 − 1) + 1 + (3 − 1)·1 + 1 − 1 − 1 = 10; channels = W[1]·group = 3·2.
        var m = Build("ConvTranspose", [R(new Tensor<float>([1, 4, 5, 5])), C(new Tensor<float>([4, 3, 3, 3]))],
            [A("group", 2L), L("strides", 2, 2), L("pads", 1, 1, 1, 1), L("output_padding", 1, 1)], 1, 17);
        Assert.Equal([1, 6, 10, 10], Infer(m)[0]!.ConcreteShape()!);
    }

    [Fact]
    public void BadShapesAreReportedWithTheNode()
    {
        var x = new Tensor<float>([1, 3, 5, 5]);
        var w = new Tensor<float>([4, 2, 3, 3]);
        var ex = Assert.Throws<QuantSharpException>(() => Run("Conv", [R(x), R(w)], []));
        Assert.Contains("'n' (Conv)", ex.Message);
    }
}
