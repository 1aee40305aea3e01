using QuantSharp.Graph;
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
        foreach (var v in new[] { y, sq, c, g }) e.AddOutput(v);

        ShapeInference.Run(m);

        Assert.Equal(3, y.Type!.Rank);
        Assert.Null(y.Type.ConcreteShape());
        Assert.Equal(new TensorTypeInfo(DataType.Float, [1, Dimension.Unknown, 4, 1]), sq.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [Dimension.Unknown, 8]), c.Type);
        Assert.Equal(new TensorTypeInfo(DataType.Float, [Dimension.Unknown, 3]), g.Type);
    }
}
