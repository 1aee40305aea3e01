using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Operators;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.OpTester;

namespace QuantSharp.Tests.Operators;

public class ElementwiseTests
{
    public static TheoryData<int[], int[]> BroadcastShapes => new()
    {
        { [2, 3, 4], [2, 3, 4] },
        { [2, 3, 4], [4] },
        { [2, 3, 4], [3, 1] },
        { [2, 1, 4], [3, 1] },
        { [1], [2, 3] },
        { [2, 3], [] },
        { [], [5] },
        { [4, 1, 3, 1], [1, 2, 1, 5] },
        { [64, 1024], [1024] },
        { [3, 1, 40000], [3, 2, 1] },
        { [70000], [1] },
        { [2, 0, 3], [3] },
    };

    [Theory]
    [MemberData(nameof(BroadcastShapes))]
    public void ArithmeticBroadcastsLikeNumPy(int[] aShape, int[] bShape)
    {
        var a = F(Random(ShapeUtil.Product(aShape), 1), aShape);
        var b = F(Random(ShapeUtil.Product(bShape), 2, 0.5f, 2f), bShape);
        var outShape = ShapeUtil.Broadcast(aShape, bShape);
        int n = ShapeUtil.Product(outShape);
        foreach (var (op, f) in new (string, Func<double, double, double>)[]
                 { ("Add", (x, y) => x + y), ("Sub", (x, y) => x - y), ("Mul", (x, y) => x * y), ("Div", (x, y) => x / y) })
        {
            foreach (var (first, second, swap) in new[] { (a, b, false), (b, a, true) })
            {
                var y = Run1(op, 14, [first, second]);
                Assert.Equal(outShape, y.Shape);
                var expected = new double[n];
                for (int i = 0; i < n; i++)
                {
                    double av = a.Data[SourceIndex(outShape, aShape, i)], bv = b.Data[SourceIndex(outShape, bShape, i)];
                    expected[i] = swap ? f(bv, av) : f(av, bv);
                }
                AllClose(expected, y, 1e-6, 1e-6);
            }
        }
    }

    [Fact]
    public void Int64ArithmeticForShapeComputations()
    {
        var a = L([6, -7, 1L << 40, 9], 4);
        var b = L([2, 2, 3, -4], 4);
        Assert.Equal([8L, -5, (1L << 40) + 3, 5], Run1("Add", 14, [a, b]).As<long>().Data);
        Assert.Equal([4L, -9, (1L << 40) - 3, 13], Run1("Sub", 14, [a, b]).As<long>().Data);
        Assert.Equal([12L, -14, 3L << 40, -36], Run1("Mul", 14, [a, b]).As<long>().Data);
        // Integer division truncates toward zero.
        Assert.Equal([3L, -3, (1L << 40) / 3, -2], Run1("Div", 14, [a, b]).As<long>().Data);
        var s = Run1("Mul", 14, [L([2, 3, 4], 3), new Tensor<long>([5], [])]);
        Assert.Equal([10L, 15, 20], s.As<long>().Data);
        var i32 = Run1("Add", 14, [new Tensor<int>([int.MaxValue, 1], [2]), new Tensor<int>([1, 2], [2])]);
        Assert.Equal([int.MinValue, 3], i32.As<int>().Data);
    }

    [Fact]
    public void IntegerDivisionByZeroIsAnInputError()
    {
        var ex = Assert.Throws<QuantSharpException>(() => Run1("Div", 14, [new Tensor<int>([1, 2], [2]), new Tensor<int>([1, 0], [2])]));
        Assert.Contains("division by zero", ex.Message);
    }

    [Fact]
    public void PowHandlesScalarExponentsAndMixedTypes()
    {
        var x = F([0.5f, 2f, 3f, 4f], 4);
        foreach (float e in new[] { 1f, 2f, 3f, 0.5f, -1.5f, 2.5f })
        {
            var y = Run1("Pow", 15, [x, new Tensor<float>([e], [])]);
            AllClose(x.Data.Select(v => Math.Pow(v, e)).ToArray(), y, 1e-6);
        }
        var yi = Run1("Pow", 15, [new Tensor<int>([2, 3, -2], [3]), L([3, 2, 3], 3)]);
        Assert.Equal([8, 9, -8], yi.As<int>().Data);
        var yf = Run1("Pow", 15, [F([2f, 9f], 2), L([2, -1], 2)]);
        AllClose([4, 1.0 / 9], yf);
        var yt = Run1("Pow", 15, [L([2, 3], 2), F([1.5f, 0.5f], 2)]);
        Assert.Equal([2L, 1], yt.As<long>().Data); // 2.83 → 2, 1.73 → 1 (truncation, as NumPy astype)
    }

    [Fact]
    public void ClipOpsetVariants()
    {
        var x = F([-5f, -1f, 0f, 2f, 7f, float.NaN], 6);
        AllClose([-2, -1, 0, 2, 3, double.NaN], Run1("Clip", 6, [x], [NodeAttribute.Of("min", -2f), NodeAttribute.Of("max", 3f)]));
        AllClose([-5, -1, 0, 2, 3, double.NaN], Run1("Clip", 6, [x], [NodeAttribute.Of("max", 3f)]));
        AllClose([-2, -1, 0, 2, 7, double.NaN], Run1("Clip", 11, [x, new Tensor<float>([-2f], [])]));
        AllClose([-5, -1, 0, 2, 3, double.NaN], Run1("Clip", 11, [x, null, new Tensor<float>([3f], [])]));
        AllClose([-5, -1, 0, 2, 7, double.NaN], Run1("Clip", 13, [x]));
        // min > max: everything becomes max.
        AllClose([1, 1, 1, 1, 1, double.NaN], Run1("Clip", 13, [x, new Tensor<float>([4f], []), new Tensor<float>([1f], [])], constants: [1, 2]));
        var i8 = Run1("Clip", 13, [new Tensor<sbyte>([-128, -3, 5, 127], [4]), new Tensor<sbyte>([-4], []), new Tensor<sbyte>([4], [])]);
        Assert.Equal([(sbyte)-4, (sbyte)-3, (sbyte)4, (sbyte)4], i8.As<sbyte>().Data);
    }

    [Fact]
    public void UnaryOpsMatchReference()
    {
        var x = F([-2.5f, -1.5f, -0.5f, 0f, 0.5f, 1.5f, 2.5f, 3.7f], 8);
        double[] xs = x.Data.Select(v => (double)v).ToArray();
        AllClose(xs.Select(v => Math.Round(v, MidpointRounding.ToEven)).ToArray(), Run1("Round", 11, [x]));
        AllClose(xs.Select(Math.Floor).ToArray(), Run1("Floor", 13, [x]));
        AllClose(xs.Select(Math.Ceiling).ToArray(), Run1("Ceil", 13, [x]));
        AllClose(xs.Select(v => (double)Math.Sign(v)).ToArray(), Run1("Sign", 13, [x]));
        AllClose(xs.Select(v => -v).ToArray(), Run1("Neg", 13, [x]));
        AllClose(xs.Select(Math.Abs).ToArray(), Run1("Abs", 13, [x]));
        AllClose(xs.Select(v => Math.Max(v, 0)).ToArray(), Run1("Relu", 14, [x]));
        AllClose(xs.Select(Math.Exp).ToArray(), Run1("Exp", 13, [x]), 1e-6);
        AllClose(xs.Select(Math.Tanh).ToArray(), Run1("Tanh", 13, [x]), 1e-6);
        AllClose(xs.Select(v => v < 0 ? 0.1 * v : v).ToArray(), Run1("LeakyRelu", 16, [x], [NodeAttribute.Of("alpha", 0.1f)]));
        AllClose(xs.Select(v => Math.Clamp(0.2 * v + 0.5, 0, 1)).ToArray(), Run1("HardSigmoid", 6, [x]));
        AllClose(xs.Select(v => v * Math.Clamp(v / 6 + 0.5, 0, 1)).ToArray(), Run1("HardSwish", 14, [x]));
        var pos = F([0.25f, 1f, 4f, 9f], 4);
        AllClose([0.5, 1, 2, 3], Run1("Sqrt", 13, [pos]));
        AllClose([4, 1, 0.25, 1.0 / 9], Run1("Reciprocal", 13, [pos]));
        AllClose(pos.Data.Select(v => Math.Log(v)).ToArray(), Run1("Log", 13, [pos]), 1e-6);
        Assert.Equal([3L, 0, 7, long.MinValue], Run1("Abs", 13, [L([-3, 0, 7, long.MinValue], 4)]).As<long>().Data);
        Assert.Equal([-1, 0, 1], Run1("Sign", 13, [new Tensor<int>([-9, 0, 4], [3])]).As<int>().Data);
        Assert.Equal([0, 0, 4], Run1("Relu", 14, [new Tensor<int>([-9, 0, 4], [3])]).As<int>().Data);
    }

    [Fact]
    public void PReluBroadcastsSlope()
    {
        var x = F(Random(2 * 3 * 4, 5), 2, 3, 4);
        var slope = F([0.1f, 0.2f, 0.3f], 3, 1);
        var y = Run1("PRelu", 16, [x, slope]);
        var exp = new double[x.Length];
        for (int i = 0; i < exp.Length; i++) exp[i] = x.Data[i] < 0 ? x.Data[i] * slope.Data[i / 4 % 3] : x.Data[i];
        AllClose(exp, y);
        // Opset 6: a 1-D slope per channel.
        AllClose(exp, Run1("PRelu", 6, [x, F([0.1f, 0.2f, 0.3f], 3)]));
    }

    [Fact]
    public void ComparisonsAndLogic()
    {
        var a = F([1f, 2f, float.NaN, 4f], 4);
        var b = F([2f], 1);
        Assert.Equal([false, true, false, false], Run1("Equal", 13, [a, b]).As<bool>().Data);
        Assert.Equal([true, false, false, false], Run1("Less", 13, [a, b]).As<bool>().Data);
        Assert.Equal([false, false, false, true], Run1("Greater", 13, [a, b]).As<bool>().Data);
        Assert.Equal([true, true, false, false], Run1("LessOrEqual", 16, [a, b]).As<bool>().Data);
        Assert.Equal([false, true, false, true], Run1("GreaterOrEqual", 16, [a, b]).As<bool>().Data);
        Assert.Equal([true, false], Run1("Equal", 13, [L([5, 6], 2), L([5], 1)]).As<bool>().Data);
        var p = new Tensor<bool>([true, false, true, false], [2, 2]);
        var q = new Tensor<bool>([true, false], [2]);
        var q2 = new Tensor<bool>([true, true], [2, 1]);
        Assert.Equal([true, false, true, false], Run1("And", 7, [p, q]).As<bool>().Data);
        Assert.Equal([true, true, true, true], Run1("Or", 7, [p, q2]).As<bool>().Data);
        Assert.Equal([false, true, false, true], Run1("Xor", 7, [p, q2]).As<bool>().Data);
        Assert.Equal([false, true, false, true], Run1("Not", 1, [p]).As<bool>().Data);
        Assert.Equal([true, false, true], Run1("Equal", 13, [new Tensor<bool>([true, true, false], [3]), new Tensor<bool>([true, false, false], [3])]).As<bool>().Data);
        Assert.Equal([true, false], Run1("Equal", 19, [new Tensor<string>(["a", "b"], [2]), new Tensor<string>(["a"], [1])]).As<bool>().Data);
    }

    [Fact]
    public void WhereBroadcastsAllThreeInputs()
    {
        var c = new Tensor<bool>([true, false], [2, 1]);
        var x = F([1f, 2f, 3f], 1, 3);
        var y = new Tensor<float>([-1f], []);
        var r = Run1("Where", 16, [c, x, y]);
        Assert.Equal([2, 3], r.Shape);
        Assert.Equal([1f, 2f, 3f, -1f, -1f, -1f], r.As<float>().Data);
        var c2 = new Tensor<bool>([true, false, false, true], [4]);
        var r2 = Run1("Where", 16, [c2, L([1, 2, 3, 4], 4), L([10, 20, 30, 40, 50, 60, 70, 80], 2, 1, 4)]);
        Assert.Equal([1L, 20, 30, 4, 1, 60, 70, 4], r2.As<long>().Data);
        Assert.Equal([2, 1, 4], r2.Shape);
    }

    [Fact]
    public void VariadicOpsBroadcast()
    {
        var a = F([1f, 5f, 3f], 3);
        var b = F([4f, 2f], 2, 1);
        var c = new Tensor<float>([0f], []);
        Assert.Equal([4f, 5f, 4f, 2f, 5f, 3f], Run1("Max", 13, [a, b, c]).As<float>().Data);
        Assert.Equal([0f, 0f, 0f, 0f, 0f, 0f], Run1("Min", 13, [a, b, c]).As<float>().Data);
        Assert.Equal([5f, 9f, 7f, 3f, 7f, 5f], Run1("Sum", 13, [a, b, c]).As<float>().Data);
        AllClose([5 / 3.0, 3, 7 / 3.0, 1, 7 / 3.0, 5 / 3.0], Run1("Mean", 13, [a, b, c]));
        Assert.Equal([1f, 5f, 3f], Run1("Sum", 13, [a]).As<float>().Data);
        Assert.Equal([7L, 3L], Run1("Max", 13, [L([7, 1], 2), L([2, 3], 2)]).As<long>().Data);
    }

    [Fact]
    public void TypeInferenceBroadcastsSymbolicShapes()
    {
        var g = new Graph.Graph();
        var e = g.Edit();
        var a = e.AddInput("a", new TensorTypeInfo(DataType.Float, [new Dimension(null, "batch"), 1, 4]));
        var b = e.AddInput("b", new TensorTypeInfo(DataType.Float, [3, 1]));
        var n = e.AddNode("Add", [a, b]);
        var k = new AddKernel { Node = n, OpsetVersion = 14 };
        k.InferTypes(new TypeInferenceContext(n, v => v.Initializer));
        Assert.Equal("float[batch,3,4]", n.Outputs[0]!.Type!.ToString());
        var lt = e.AddNode("Less", [a, b]);
        new LessKernel { Node = lt, OpsetVersion = 13 }.InferTypes(new TypeInferenceContext(lt, v => v.Initializer));
        Assert.Equal(DataType.Bool, lt.Outputs[0]!.Type!.ElementType);
    }
}
