using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Operators;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.OpTester;

namespace QuantSharp.Tests.Operators;

public class ReductionTests
{
    /// <summary>Reference reduction in double: returns values in output order and the keepdims shape.</summary>
    private static double[] Reduce(float[] x, int[] shape, int[] axes, Func<IEnumerable<double>, double> f, out int[] keptShape)
    {
        int rank = shape.Length;
        var mask = new bool[rank];
        foreach (var a in axes) mask[a < 0 ? a + rank : a] = true;
        keptShape = shape.Select((d, i) => mask[i] ? 1 : d).ToArray();
        int n = ShapeUtil.Product(keptShape);
        var groups = new List<double>[n];
        for (int i = 0; i < n; i++) groups[i] = [];
        var strides = ShapeUtil.Strides(keptShape);
        for (int i = 0; i < x.Length; i++)
        {
            int rem = i, o = 0;
            for (int d = rank - 1; d >= 0; d--)
            {
                int c = rem % shape[d];
                rem /= shape[d];
                if (!mask[d]) o += c * strides[d];
            }
            groups[o].Add(x[i]);
        }
        return groups.Select(f).ToArray();
    }

    public static TheoryData<int[], int[]> ReduceCases => new()
    {
        { [2, 3, 4], [2] },
        { [2, 3, 4], [1] },
        { [2, 3, 4], [0] },
        { [2, 3, 4, 5], [1, 3] },
        { [3, 4, 5, 6], [0, 2] },
        { [2, 3, 4, 5], [0, 1, 3] },
        { [2, 1, 4, 5], [0, 3] },
        { [2, 3, 4], [0, 1, 2] },
        { [2, 3, 4], [-1, -2] },
        { [4, 50000], [0] },
        { [300, 257], [1] },
    };

    [Theory]
    [MemberData(nameof(ReduceCases))]
    public void ReduceOpsMatchReference(int[] shape, int[] axes)
    {
        var x = Random(ShapeUtil.Product(shape), 3);
        var ops = new (string Op, Func<IEnumerable<double>, double> F)[]
        {
            ("ReduceSum", v => v.Sum()), ("ReduceMean", v => v.Average()), ("ReduceMax", v => v.Max()), ("ReduceMin", v => v.Min()),
            ("ReduceProd", v => v.Aggregate(1.0, (a, b) => a * b)), ("ReduceSumSquare", v => v.Sum(t => t * t)),
            ("ReduceL1", v => v.Sum(Math.Abs)), ("ReduceL2", v => Math.Sqrt(v.Sum(t => t * t))),
            ("ReduceLogSumExp", v => Math.Log(v.Sum(Math.Exp))),
        };
        foreach (var (op, f) in ops)
        {
            var expected = Reduce(x, shape, axes, f, out var kept);
            double tol = shape.Length == 2 && shape[1] == 50000 ? 1e-4 : 2e-5;
            // Opset 13: axes attribute for all but ReduceSum; opset 18: axes input for all.
            var t13 = op == "ReduceSum"
                ? Run1(op, 13, [F(x, shape), L(axes.Select(a => (long)a).ToArray(), axes.Length)], constants: [1])
                : Run1(op, 13, [F(x, shape)], [NodeAttribute.Of("axes", axes.Select(a => (long)a).ToArray())]);
            Assert.Equal(kept, t13.Shape);
            AllClose(expected, t13, tol, tol);
            var t18 = Run1(op, 18, [F(x, shape), L(axes.Select(a => (long)a).ToArray(), axes.Length)], [NodeAttribute.Of("keepdims", 0L)]);
            Assert.Equal(shape.Where((_, i) => !axes.Select(a => a < 0 ? a + shape.Length : a).Contains(i)).ToArray(), t18.Shape);
            AllClose(expected, t18, tol, tol);
        }
    }

    [Fact]
    public void EmptyAxesReduceAllOrNothing()
    {
        var x = F([1f, 2f, 3f, 4f], 2, 2);
        var all = Run1("ReduceSum", 13, [x]);
        Assert.Equal([1, 1], all.Shape);
        Assert.Equal(10f, all.As<float>().Data[0]);
        var noop = Run1("ReduceSum", 13, [x, L([], 0)], [NodeAttribute.Of("noop_with_empty_axes", 1L)], constants: [1]);
        Assert.Equal(x.Data, noop.As<float>().Data);
        var mean = Run1("ReduceMean", 11, [x], [NodeAttribute.Of("keepdims", 0L)]);
        Assert.Empty(mean.Shape);
        Assert.Equal(2.5f, mean.As<float>().Data[0]);
    }

    [Fact]
    public void EmptySetReductionsGiveIdentities()
    {
        var x = new Tensor<float>([2, 0, 4]);
        var axes = L([1], 1);
        Assert.All(Run1("ReduceSum", 18, [x, axes], constants: [1]).As<float>().Data, v => Assert.Equal(0f, v));
        Assert.All(Run1("ReduceMax", 18, [x, axes], constants: [1]).As<float>().Data, v => Assert.Equal(float.NegativeInfinity, v));
        Assert.All(Run1("ReduceMin", 18, [x, axes], constants: [1]).As<float>().Data, v => Assert.Equal(float.PositiveInfinity, v));
        Assert.All(Run1("ReduceProd", 18, [x, axes], constants: [1]).As<float>().Data, v => Assert.Equal(1f, v));
        Assert.Equal([2, 1, 4], Run1("ReduceMax", 18, [x, axes], constants: [1]).Shape);
    }

    [Fact]
    public void IntegerReductions()
    {
        var x = L([1, 2, 3, 4, 5, 7], 2, 3);
        Assert.Equal([6L, 16], Run1("ReduceSum", 13, [x, L([1], 1)], [NodeAttribute.Of("keepdims", 0L)], constants: [1]).As<long>().Data);
        Assert.Equal([3L, 7], Run1("ReduceMax", 13, [x], [NodeAttribute.Of("axes", new long[] { 1 }), NodeAttribute.Of("keepdims", 0L)]).As<long>().Data);
        Assert.Equal([6L, 140], Run1("ReduceProd", 13, [x], [NodeAttribute.Of("axes", new long[] { 1 }), NodeAttribute.Of("keepdims", 0L)]).As<long>().Data);
        Assert.Equal([2L, 5], Run1("ReduceMean", 13, [x], [NodeAttribute.Of("axes", new long[] { 1 }), NodeAttribute.Of("keepdims", 0L)]).As<long>().Data);
    }

    [Fact]
    public void ReduceTypeInferenceUsesConstantAxes()
    {
        var g = new Graph.Graph();
        var e = g.Edit();
        var x = e.AddInput("x", new TensorTypeInfo(DataType.Float, [new Dimension(null, "n"), 3, 4]));
        var axes = e.AddInitializer("axes", L([-1], 1));
        var n = e.AddNode("ReduceSum", [x, axes], attributes: [NodeAttribute.Of("keepdims", 0L)]);
        new ReduceSumKernel { Node = n, OpsetVersion = 13 }.InferTypes(new TypeInferenceContext(n, v => v.Initializer));
        Assert.Equal("float[n,3]", n.Outputs[0]!.Type!.ToString());
    }

    [Fact]
    public void ArgMaxTiesAndLastIndex()
    {
        var x = F([1f, 3f, 3f, 0f, 2f, 2f, 5f, 5f], 2, 4);
        Assert.Equal([1L, 2], Run1("ArgMax", 13, [x], [NodeAttribute.Of("axis", 1L), NodeAttribute.Of("keepdims", 0L)]).As<long>().Data);
        Assert.Equal([2L, 3], Run1("ArgMax", 13, [x], [NodeAttribute.Of("axis", 1L), NodeAttribute.Of("keepdims", 0L), NodeAttribute.Of("select_last_index", 1L)]).As<long>().Data);
        var kd = Run1("ArgMax", 13, [x]);
        Assert.Equal([1, 4], kd.Shape);
        Assert.Equal([1L, 0, 1, 1], kd.As<long>().Data);
        Assert.Equal([3L, 0], Run1("ArgMin", 13, [x], [NodeAttribute.Of("axis", 1L), NodeAttribute.Of("keepdims", 0L)]).As<long>().Data);
        // Middle axis on a 3-D tensor.
        var y = F(Random(2 * 5 * 3, 9), 2, 5, 3);
        var am = Run1("ArgMax", 13, [y], [NodeAttribute.Of("axis", 1L)]);
        Assert.Equal([2, 1, 3], am.Shape);
        for (int o = 0; o < 2; o++)
            for (int i = 0; i < 3; i++)
            {
                int best = 0;
                for (int r = 1; r < 5; r++) if (y.Data[o * 15 + r * 3 + i] > y.Data[o * 15 + best * 3 + i]) best = r;
                Assert.Equal(best, am.As<long>().Data[o * 3 + i]);
            }
        Assert.Equal([2L], Run1("ArgMax", 13, [L([4, 1, 9, 9], 4)], [NodeAttribute.Of("keepdims", 0L)]).As<long>().Data);
    }

    private static double[] SoftmaxRef(float[] x, int outer, int reduce, int inner, bool log)
    {
        var r = new double[x.Length];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                double max = double.NegativeInfinity;
                for (int k = 0; k < reduce; k++) max = Math.Max(max, x[(o * reduce + k) * inner + i]);
                double sum = 0;
                for (int k = 0; k < reduce; k++) sum += Math.Exp(x[(o * reduce + k) * inner + i] - max);
                for (int k = 0; k < reduce; k++)
                {
                    double v = x[(o * reduce + k) * inner + i] - max;
                    r[(o * reduce + k) * inner + i] = log ? v - Math.Log(sum) : Math.Exp(v) / sum;
                }
            }
        return r;
    }

    [Fact]
    public void SoftmaxOpsetSemantics()
    {
        var x = F(Random(2 * 3 * 4, 11, -5, 5), 2, 3, 4);
        foreach (bool log in new[] { false, true })
        {
            string op = log ? "LogSoftmax" : "Softmax";
            // Opset 11, axis 1: coerced to [2, 12].
            AllClose(SoftmaxRef(x.Data, 2, 12, 1, log), Run1(op, 11, [x], [NodeAttribute.Of("axis", 1L)]), 1e-5, 1e-6);
            // Opset 11 default axis is 1 as well.
            AllClose(SoftmaxRef(x.Data, 2, 12, 1, log), Run1(op, 11, [x]), 1e-5, 1e-6);
            // Opset 13, axis 1: only the middle dimension.
            AllClose(SoftmaxRef(x.Data, 2, 3, 4, log), Run1(op, 13, [x], [NodeAttribute.Of("axis", 1L)]), 1e-5, 1e-6);
            // Opset 13 default: last axis.
            AllClose(SoftmaxRef(x.Data, 6, 4, 1, log), Run1(op, 13, [x]), 1e-5, 1e-6);
            AllClose(SoftmaxRef(x.Data, 1, 2, 12, log), Run1(op, 13, [x], [NodeAttribute.Of("axis", 0L)]), 1e-5, 1e-6);
        }
        // Large inputs do not overflow.
        var big = F([10000f, 10001f, 10002f, -10000f], 1, 4);
        AllClose(SoftmaxRef(big.Data, 1, 4, 1, false), Run1("Softmax", 13, [big]), 1e-5, 1e-7);
    }
}
