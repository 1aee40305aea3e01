using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Runtime;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.ShapeTestUtil;

namespace QuantSharp.Tests.Operators;

public class ShapeInferenceTests
{
    private static Model NewModel(out GraphRewriter e, int opset = 17)
    {
        var g = new Graph.Graph { Name = "g" };
        e = g.Edit();
        var m = new Model(g);
        m.SetOpset("", opset);
        return m;
    }

    [Fact]
    public void ShapeGatherUnsqueezeConcatReshapeGivesConcreteShape()
    {
        var m = NewModel(out var e);
        var x = e.AddInput("x", TensorTypeInfo.FromShape(DataType.Float, [2, 3, 4]));
        var shape = e.AddNode("Shape", [x], name: "shape").Outputs[0];
        var zero = e.AddInitializer("zero", Tensor<long>.Scalar(0));
        var batch = e.AddNode("Gather", [shape, zero], name: "gather", attributes: [A("axis", 0L)]).Outputs[0];
        var axes = e.AddInitializer("axes", Longs(0));
        var batch1 = e.AddNode("Unsqueeze", [batch, axes], name: "unsq").Outputs[0];
        var minus1 = e.AddInitializer("minus1", Longs(-1));
        var target = e.AddNode("Concat", [batch1, minus1], name: "concat", attributes: [A("axis", 0L)]).Outputs[0];
        var y = e.AddNode("Reshape", [x, target], name: "reshape").Outputs[0]!;
        e.AddOutput(y);

        ShapeInference.Run(m);

        Assert.Equal(TensorTypeInfo.FromShape(DataType.Int64, [3]), shape!.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Int64, []), batch!.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Int64, [2]), target!.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Float, [2, 12]), y.Type);
        // The graph is unchanged: still five nodes, same initializers.
        Assert.Equal(5, m.Graph.Nodes.Count);
        Assert.Equal(3, m.Graph.Initializers.Count);

        // And the session computes the same shape.
        using var s = new InferenceSession(m);
        Assert.Equal([2, 12], s.Run(Seq(2, 3, 4)).Values.Single().Shape);
    }

    [Fact]
    public void SymbolicDimensionsFlowThroughShapeOps()
    {
        var m = NewModel(out var e);
        var batch = new Dimension(null, "N");
        var x = e.AddInput("x", new TensorTypeInfo(DataType.Float, [batch, 3, 8, 8]));
        var t = e.AddNode("Transpose", [x], name: "t", attributes: [A("perm", new long[] { 0, 2, 3, 1 })]).Outputs[0]!;
        var f = e.AddNode("Flatten", [t], name: "f").Outputs[0]!;
        var starts = e.AddInitializer("s", Longs(1));
        var ends = e.AddInitializer("en", Longs(long.MaxValue));
        var axes = e.AddInitializer("a", Longs(1));
        var steps = e.AddInitializer("st", Longs(2));
        var sl = e.AddNode("Slice", [t, starts, ends, axes, steps], name: "sl").Outputs[0]!;
        var shape = e.AddNode("Shape", [x], name: "shape").Outputs[0]!;
        var unknown = e.AddNode("NoSuchOp", [x], name: "u").Outputs[0]!;
        var rs = e.AddNode("Reshape", [t, e.AddInitializer("target", Longs(0, -1, 3))], name: "rs").Outputs[0]!;
        var up = e.AddNode("Resize", [x, null, e.AddInitializer("scales", Of(new[] { 1f, 1f, 2f, 2f }, 4))], name: "up").Outputs[0]!;
        e.AddOutput(rs);
        e.AddOutput(up);
        e.AddOutput(f);
        e.AddOutput(sl);
        e.AddOutput(unknown);
        e.AddOutput(shape);

        ShapeInference.Run(m);

        Assert.Equal(new TensorTypeInfo(DataType.Float, [batch, 8, 8, 3]), t.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [batch, 192]), f.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [batch, 4, 8, 3]), sl.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Int64, [4]), shape.Type);
        Assert.Null(unknown.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [batch, 64, 3]), rs.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [batch, 3, 16, 16]), up.Type);
    }

    [Fact]
    public void ConstantChainsFoldIntoResizeAndConstantOfShape()
    {
        var m = NewModel(out var e, 13);
        var x = e.AddInput("x", TensorTypeInfo.FromShape(DataType.Float, [1, 3, 10, 10]));
        var scales = e.AddNode("Constant", [], name: "scales", attributes: [A("value", Of(new[] { 1f, 1f, 2f, 1.5f }, 4))]).Outputs[0]!;
        var r = e.AddNode("Resize", [x, null, scales], name: "resize", attributes: [A("mode", "linear")]).Outputs[0]!;
        var shapeR = e.AddNode("Shape", [r], name: "shapeR").Outputs[0]!;
        var zeros = e.AddNode("ConstantOfShape", [shapeR], name: "zeros").Outputs[0]!;
        var split = e.AddNode("Split", [zeros], 2, name: "split", attributes: [A("axis", 2L)]);
        var pads = e.AddInitializer("pads", Longs(0, 0, 1, 2, 0, 0, 3, 4));
        var padded = e.AddNode("Pad", [x, pads], name: "pad", attributes: [A("mode", "reflect")]).Outputs[0]!;
        var range = e.AddNode("Range", [e.AddInitializer("r0", Tensor<int>.Scalar(0)), e.AddInitializer("r1", Tensor<int>.Scalar(7)),
            e.AddInitializer("r2", Tensor<int>.Scalar(2))], name: "range").Outputs[0]!;
        var tiled = e.AddNode("Tile", [x, e.AddInitializer("reps", Longs(1, 2, 1, 3))], name: "tile").Outputs[0]!;
        var expanded = e.AddNode("Expand", [e.AddInitializer("one", Of(new[] { 1f }, 1)), shapeR], name: "expand").Outputs[0]!;
        foreach (var v in new[] { split.Outputs[0]!, split.Outputs[1]!, padded, range, tiled, expanded }) e.AddOutput(v);

        ShapeInference.Run(m);

        Assert.Equal(TensorTypeInfo.FromShape(DataType.Float, [1, 3, 20, 15]), r.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Float, [1, 3, 20, 15]), zeros.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Float, [1, 3, 10, 15]), split.Outputs[1]!.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Float, [1, 3, 14, 16]), padded.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Int32, [4]), range.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Float, [1, 6, 10, 30]), tiled.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Float, [1, 3, 20, 15]), expanded.Type);
    }

    [Fact]
    public void UnknownShapeInputsKeepRankWherePossible()
    {
        var m = NewModel(out var e);
        var x = e.AddInput("x", new TensorTypeInfo(DataType.Float, [Dimension.Unknown, 4]));
        var target = e.AddInput("target", TensorTypeInfo.FromShape(DataType.Int64, [3]));
        var y = e.AddNode("Reshape", [x, target], name: "r").Outputs[0]!;
        var sq = e.AddNode("Unsqueeze", [x, e.AddInitializer("ax", Longs(0, -1))], name: "u").Outputs[0]!;
        var c = e.AddNode("Concat", [x, x], name: "c", attributes: [A("axis", 1L)]).Outputs[0]!;
        var g = e.AddNode("Gather", [x, e.AddInitializer("i", Of(new long[] { 0, 1, 2 }, 3))], name: "g", attributes: [A("axis", 1L)]).Outputs[0]!;
        var flat = e.AddNode("Reshape", [x, e.AddInitializer("t0", Longs(0, -1, 2))], name: "flat").Outputs[0]!;
        var batchX = e.AddInput("bx", new TensorTypeInfo(DataType.Float, [new Dimension(null, "B"), 16, 5, 5]));
        var flat2 = e.AddNode("Reshape", [batchX, e.AddInitializer("t1", Longs(-1, 400))], name: "flat2").Outputs[0]!;
        foreach (var v in new[] { y, sq, c, g, flat, flat2 }) e.AddOutput(v);

        ShapeInference.Run(m);

        Assert.Equal(3, y.Type!.Rank);
        Assert.Null(y.Type.ConcreteShape());
        Assert.Equal(new TensorTypeInfo(DataType.Float, [1, Dimension.Unknown, 4, 1]), sq.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [Dimension.Unknown, 8]), c.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [Dimension.Unknown, 3]), g.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [Dimension.Unknown, 2, 2]), flat.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [new Dimension(null, "B"), 400]), flat2.Type);
    }

    [Fact]
    public void DynamicBatchShapeArithmeticKeepsSymbols()
    {
        var m = NewModel(out var e);
        var n = new Dimension(null, "N");
        var x = e.AddInput("x", new TensorTypeInfo(DataType.Float, [n, 3, 4, 4]));
        var shape = e.AddNode("Shape", [x], name: "shape").Outputs[0]!;
        var batch = e.AddNode("Gather", [shape, e.AddInitializer("zero", Tensor<long>.Scalar(0))], name: "g0").Outputs[0]!;
        var batch1 = e.AddNode("Unsqueeze", [batch, e.AddInitializer("ax", Longs(0))], name: "u").Outputs[0]!;
        var target = e.AddNode("Concat", [batch1, e.AddInitializer("m1", Longs(-1))], name: "c", attributes: [A("axis", 0L)]).Outputs[0]!;
        var flat = e.AddNode("Reshape", [x, target], name: "flat").Outputs[0]!;
        // Slice of the shape: [N, 3] then [N, 3, 16] via Concat, and the known channel count folds to a constant.
        var head = e.AddNode("Slice", [shape, e.AddInitializer("s0", Longs(0)), e.AddInitializer("s1", Longs(2))], name: "head").Outputs[0]!;
        var target2 = e.AddNode("Concat", [head, e.AddInitializer("sixteen", Longs(16))], name: "c2", attributes: [A("axis", 0L)]).Outputs[0]!;
        var r2 = e.AddNode("Reshape", [x, target2], name: "r2").Outputs[0]!;
        var ch = e.AddNode("Gather", [shape, e.AddInitializer("one", Tensor<long>.Scalar(1))], name: "g1").Outputs[0]!;
        var zeros = e.AddNode("ConstantOfShape", [shape], name: "zeros").Outputs[0]!;
        var ex = e.AddNode("Expand", [e.AddInitializer("v", Of(new[] { 1f }, 1)), shape], name: "ex").Outputs[0]!;
        foreach (var v in new[] { flat, r2, ch, zeros, ex }) e.AddOutput(v);

        ShapeInference.Run(m);

        Assert.Equal(new TensorTypeInfo(DataType.Int64, [1]), batch1.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [n, 48]), flat.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [n, 3, 16]), r2.Type);
        Assert.Equal(TensorTypeInfo.FromShape(DataType.Int64, []), ch.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [n, 3, 4, 4]), zeros.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [n, 3, 4, 4]), ex.Type);
    }

    [Theory]
    [InlineData("mnist_cntk_opset7.onnx")]
    [InlineData("iris_mlp_opset11.onnx")]
    [InlineData("cifar10_winml_tutorial_cnn.onnx")]
    [InlineData("squeezenet1.0_fp16_opset7.onnx")]
    public void RealModelsGetEveryValueTypedAndTheDeclaredOutputs(string file)
    {
        var m = OnnxModelIO.Load(TestPaths.SharedFile("models", "onnx", file));
        var declared = m.Graph.Outputs.Select(o => o.Type).ToArray();
        foreach (var n in m.Graph.Nodes)
            foreach (var o in n.Outputs)
                if (o is not null) o.Type = null;

        ShapeInference.Run(m);

        var untyped = m.Graph.Nodes.Where(n => n.Outputs.Any(o => o is not null && o.Type?.Shape is null)).Select(n => n.Describe()).ToList();
        Assert.True(untyped.Count == 0, "untyped: " + string.Join(", ", untyped));
        for (int i = 0; i < declared.Length; i++) Assert.Equal(declared[i], m.Graph.Outputs[i].Type);
    }
}
