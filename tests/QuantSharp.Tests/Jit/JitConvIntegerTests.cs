using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Runtime.Operators.Quantization;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.Jit;

/// <summary>
/// ConvInteger / QLinearConv with constant int8 weights go through the int8 GEMM driver (weights packed once per
/// group, position-major im2col): outputs equal the general path's (weights as a graph input) with generated code on
/// and off and 1 or 2 threads, over groups, padding, strides, dilations, 1-D and 2-D, per-channel zero points and bias.
/// </summary>
public class JitConvIntegerTests
{
    private static int[] RunOp(string op, Tensor?[] inputs, NodeAttribute[] attrs, int[] constants, bool generated, int threads)
    {
        var model = Build(op, inputs, attrs, 10, "", 1, constants, out var feeds);
        using var session = new InferenceSession(model, new SessionOptions
        {
            IntraOpThreads = threads,
            IntegerExecution = new IntegerExecutionOptions { GeneratedCode = generated },
        });
        return IntsOf(session.Run(feeds)[model.Graph.Outputs[0].Name]);
    }

    private static Tensor RandomInts(Random r, DataType dt, params int[] shape)
    {
        int lo = dt == DataType.UInt8 ? 0 : -128, hi = dt == DataType.UInt8 ? 255 : 127;
        return Ints(dt, Enumerable.Range(0, shape.Aggregate(1, (a, b) => a * b)).Select(_ => r.Next(lo, hi + 1)).ToArray(), shape);
    }

    public static TheoryData<DataType, int> Cases() => new() { { DataType.UInt8, 0 }, { DataType.Int8, 1 }, { DataType.UInt8, 2 }, { DataType.Int8, 3 } };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ConstantInt8WeightsMatchTheGeneralPath(DataType xt, int variant)
    {
        var r = new Random(variant * 31 + (int)xt);
        // (x shape, w shape, attributes)
        var (xs, ws, attrs) = variant switch
        {
            0 => (new[] { 2, 4, 9, 7 }, new[] { 6, 2, 3, 3 }, new[] { A("group", 2), A("pads", [1, 1, 1, 1]) }),
            1 => (new[] { 1, 3, 11, 10 }, new[] { 17, 3, 3, 2 }, new[] { A("strides", [2, 1]), A("dilations", [1, 2]), A("pads", [2, 0, 1, 1]) }),
            2 => (new[] { 3, 5, 13 }, new[] { 9, 5, 4 }, new[] { A("pads", [3, 2]), A("strides", [2]) }),
            _ => (new[] { 1, 8, 6, 6 }, new[] { 8, 1, 3, 3 }, new[] { A("group", 8), A("pads", [1, 1, 1, 1]) }),
        };
        int m = ws[0];
        var x = RandomInts(r, xt, xs);
        var w = RandomInts(r, DataType.Int8, ws);
        var xz = Ints(xt, [xt == DataType.UInt8 ? r.Next(0, 256) : r.Next(-128, 128)]);
        var wz = variant % 2 == 0 ? Ints(DataType.Int8, Enumerable.Range(0, m).Select(_ => r.Next(-10, 11)).ToArray(), m) : Ints(DataType.Int8, [3]);

        Tensor?[] ci = [x, w, xz, wz];
        var expected = RunOp("ConvInteger", ci, attrs, [], true, 1);
        long before = Interlocked.Read(ref ConstantInt8ConvWeights.Uses);
        foreach (bool generated in new[] { true, false })
            foreach (int threads in new[] { 1, 2 })
                Assert.Equal(expected, RunOp("ConvInteger", ci, attrs, [1, 3], generated, threads));
        Assert.True(Interlocked.Read(ref ConstantInt8ConvWeights.Uses) >= before + 4, "the packed path was not taken");

        var bias = Ints(DataType.Int32, Enumerable.Range(0, m).Select(_ => r.Next(-5000, 5000)).ToArray(), m);
        Tensor?[] qi = [x, F([0.05f], []), xz, w, F(Enumerable.Range(0, m).Select(j => 0.01f + j * 1e-3f).ToArray(), m), wz,
            F([0.7f], []), Ints(DataType.UInt8, [120]), bias];
        var qExpected = RunOp("QLinearConv", qi, attrs, [], true, 1);
        foreach (bool generated in new[] { true, false })
            Assert.Equal(qExpected, RunOp("QLinearConv", qi, attrs, [1, 2, 3, 4, 5, 6, 7, 8], generated, 2));
    }
}
