using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Runtime.Operators.Quantization;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.Jit;

/// <summary>
/// MatMulInteger / QLinearMatMul with a constant int8 B go through the int8 GEMM driver (B packed once): their
/// outputs equal those of the general path (B as a graph input) with generated code on and off, 1 and 2 threads.
/// </summary>
public class JitMatMulIntegerTests
{
    private static int[] RunOp(string op, Tensor?[] inputs, int[] constants, bool generated, int threads)
    {
        var model = Build(op, inputs, null, op == "MatMulInteger" ? 10 : 21, "", 1, constants, out var feeds);
        using var session = new InferenceSession(model, new SessionOptions
        {
            IntraOpThreads = threads,
            IntegerExecution = new IntegerExecutionOptions { GeneratedCode = generated },
        });
        return IntsOf(session.Run(feeds)[model.Graph.Outputs[0].Name]);
    }

    [Theory]
    [InlineData(DataType.UInt8)]
    [InlineData(DataType.Int8)]
    public void ConstantInt8BMatchesTheGeneralPath(DataType ta)
    {
        var r = new Random((int)ta);
        int lo = ta == DataType.UInt8 ? 0 : -128, hi = ta == DataType.UInt8 ? 255 : 127;
        foreach (var (batch, m, k, n) in new[] { (1, 1, 67, 33), (2, 37, 70, 45), (3, 6, 4, 16), (1, 97, 130, 17) })
        {
            var a = Ints(ta, Enumerable.Range(0, batch * m * k).Select(_ => r.Next(lo, hi + 1)).ToArray(), batch, m, k);
            var b = Ints(DataType.Int8, Enumerable.Range(0, k * n).Select(_ => r.Next(-128, 128)).ToArray(), k, n);
            var azp = Ints(ta, [r.Next(lo, hi + 1)]);
            var bzp = Ints(DataType.Int8, Enumerable.Range(0, n).Select(_ => r.Next(-128, 128)).ToArray(), n);
            var expected = RunOp("MatMulInteger", [a, b, azp, bzp], [], true, 1);
            long before = Interlocked.Read(ref ConstantInt8MatMulB.Uses);
            foreach (bool generated in new[] { true, false })
                foreach (int threads in new[] { 1, 2 })
                    Assert.Equal(expected, RunOp("MatMulInteger", [a, b, azp, bzp], [1, 3], generated, threads));
            Assert.True(Interlocked.Read(ref ConstantInt8MatMulB.Uses) >= before + 4, "the packed path was not taken");

            Tensor?[] q = [a, F([0.02f], []), azp, b, F(Enumerable.Range(0, n).Select(j => 0.01f + j * 1e-4f).ToArray(), n), bzp,
                F([0.5f], []), Ints(DataType.UInt8, [128])];
            var qExpected = RunOp("QLinearMatMul", q, [], true, 1);
            foreach (bool generated in new[] { true, false })
                Assert.Equal(qExpected, RunOp("QLinearMatMul", q, [1, 2, 3, 4, 5, 6, 7], generated, 2));
        }
    }
}
