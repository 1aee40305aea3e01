using QuantSharp.Graph;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Runtime.Lowering;
using QuantSharp.Tensors;
using QuantSharp.Tests.Kernels;

namespace QuantSharp.Tests.Lowering;

/// <summary>
/// The transformer lowerings reproduce the unlowered QDQ graph exactly (they run its own float formulas on the
/// codes): DQ → LayerNormalization → Q as one integer LayerNormalization, DQ → Add/Sub/Mul/Div(scalar) → Q as one
/// table, and DequantizeLinear of constants folded into initializers. Also: the int8 GEMM's work threshold (small
/// products stay on one thread) leaves results equal to the scalar reference for every thread count.
/// </summary>
public class TransformerLoweringTests
{
    private static void AssertSameOutputs(Model m, Dictionary<string, Tensor> feeds)
    {
        var reference = QdqGraphBuilder.Run(m, feeds, lowered: false);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            var lowered = QdqGraphBuilder.Run(m, feeds, lowered: true, threads: threads);
            foreach (var (name, r) in reference)
            {
                var a = r.As<float>();
                var b = lowered[name].As<float>();
                Assert.Equal(a.Shape, b.Shape);
                for (int i = 0; i < a.Length; i++)
                    Assert.True(a.Data[i].Equals(b.Data[i]), $"{name}[{i}] threads={threads}: QDQ graph {a.Data[i]}, lowered {b.Data[i]}");
            }
        }
    }

    private static Model Lowered(Model m)
    {
        var copy = m.Clone();
        IntegerLowering.Apply(copy);
        return copy;
    }

    [Theory]
    [InlineData(false, false, -1L, true, true)]
    [InlineData(true, false, -1L, true, false)]
    [InlineData(false, true, -1L, false, true)]
    [InlineData(true, true, 1L, true, true)]
    [InlineData(false, false, 2L, false, false)]
    public void LayerNormBecomesOneIntegerNodeWithTheSameCodes(bool signedIn, bool signedOut, long axis, bool quantizedScale, bool withBias)
    {
        var b = new QdqGraphBuilder(71);
        int[] shape = [3, 5, 37];
        int size = axis == 1 ? 5 * 37 : 37;
        var x = b.Qdq(b.Input("x", -3f, 2.5f, shape), 6f / 255, signedIn ? -10 : 118, signedIn);
        Value scale = quantizedScale
            ? b.Weight([size], 0, perChannel: true).Dq
            : b.Edit.AddInitializer("g", new Tensor<float>(b.Random(size, 0.5f, 1.5f), [size]));
        Value? bias = withBias ? b.Edit.AddInitializer("beta", new Tensor<float>(b.Random(size, -0.3f, 0.3f), [size])) : null;
        var ln = b.Node("LayerNormalization", [x, scale, bias], NodeAttribute.Of("axis", axis), NodeAttribute.Of("epsilon", 1e-5f));
        var m = b.Finish(b.Qdq(ln, 4f / 255, signedOut ? 3 : 128, signedOut));

        var ops = Lowered(m).Graph.Nodes.Select(n => (n.Domain, n.OpType)).ToArray();
        Assert.Contains((IntegerLowering.Domain, "LayerNormalization"), ops);
        Assert.DoesNotContain(("", "LayerNormalization"), ops);
        Assert.Equal(1, ops.Count(o => o.OpType == "DequantizeLinear"));
        AssertSameOutputs(m, b.Feeds);
    }

    [Fact]
    public void LayerNormWithUsedStatisticsIsNotLowered()
    {
        var b = new QdqGraphBuilder(72);
        var x = b.Qdq(b.Input("x", -1f, 1f, 2, 9), 2f / 255, 128);
        var g = b.Edit.AddInitializer("g", new Tensor<float>(b.Random(9, 0.5f, 1.5f), [9]));
        var node = b.Edit.AddNode("LayerNormalization", [x, g], outputCount: 2);
        var m = b.Finish(b.Qdq(node.Outputs[0]!, 4f / 255, 128), node.Outputs[1]!);
        Assert.Contains(Lowered(m).Graph.Nodes, n => n.Domain.Length == 0 && n.OpType == "LayerNormalization");
        AssertSameOutputs(m, b.Feeds);
    }

    public static TheoryData<string, bool, int> ScalarOps() => new()
    {
        { "Mul", false, 0 }, { "Mul", true, 1 }, { "Div", false, 2 }, { "Div", true, 0 },
        { "Sub", false, 1 }, { "Sub", true, 2 }, { "Add", true, 0 }, { "Add", false, 1 },
    };

    /// <summary>Constant kinds: 0 float initializer, 1 DequantizeLinear of an int8 scalar without zero point (as the quantizer writes it), 2 Constant node.</summary>
    [Theory]
    [MemberData(nameof(ScalarOps))]
    public void ScalarConstantOpBecomesOneTableWithTheSameCodes(string op, bool constantFirst, int constantKind)
    {
        var b = new QdqGraphBuilder(73);
        var x = b.Qdq(b.Input("x", -4f, 4f, 2, 3, 17), 8f / 255, 120);
        Value c = constantKind switch
        {
            0 => b.Edit.AddInitializer("c", new Tensor<float>([0.37f], [])),
            1 => b.Node("DequantizeLinear", [b.Edit.AddInitializer("cq", new Tensor<sbyte>([(sbyte)93], [])), b.Edit.AddInitializer("cs", new Tensor<float>([0.004f], []))]),
            _ => b.Node("Constant", [], NodeAttribute.Of("value", new Tensor<float>([1.75f], []))),
        };
        var y = b.Node(op, constantFirst ? [c, x] : [x, c]);
        var m = b.Finish(b.Qdq(y, 5f / 255, 100));

        var lowered = Lowered(m).Graph.Nodes;
        Assert.Contains(lowered, n => n.Domain == IntegerLowering.Domain && n.OpType == "Lut");
        Assert.DoesNotContain(lowered, n => n.Domain.Length == 0 && n.OpType == op);
        AssertSameOutputs(m, b.Feeds);
    }

    [Fact]
    public void ScalarConstantThatRaisesTheRankIsNotTabled()
    {
        var b = new QdqGraphBuilder(74);
        var x = b.Qdq(b.Input("x", -1f, 1f, 4, 5), 2f / 255, 128);
        var c = b.Edit.AddInitializer("c", new Tensor<float>([0.5f], [1, 1, 1]));
        var m = b.Finish(b.Qdq(b.Node("Mul", [x, c]), 1f / 255, 128));
        Assert.DoesNotContain(Lowered(m).Graph.Nodes, n => n.OpType == "Lut");
        AssertSameOutputs(m, b.Feeds);
    }

    [Fact]
    public void DequantizeOfConstantsIsFoldedIntoInitializers()
    {
        var b = new QdqGraphBuilder(75);
        var x = b.Qdq(b.Input("x", -2f, 2f, 3, 11), 4f / 255, 128);
        var lut = b.Qdq(b.Node("Relu", [x]), 2f / 255, 0);
        var other = b.Input("f", -1f, 1f, 3, 11);
        var (w, _) = b.Weight([3, 11], 0, perChannel: true);
        var m = b.Finish(lut, b.Node("Add", [other, w]));

        var nodes = Lowered(m).Graph.Nodes;
        Assert.DoesNotContain(nodes, n => n.OpType == "DequantizeLinear" && n.Inputs.All(i => i is null || i.IsInitializer));
        Assert.Contains(nodes, n => n.OpType == "Add" && n.Inputs.Any(i => i!.IsInitializer));
        AssertSameOutputs(m, b.Feeds);
    }

    /// <summary>Products just below and above the per-thread work threshold, through every thread count, equal the reference.</summary>
    [Theory]
    [InlineData(16, 64, 64)]
    [InlineData(33, 129, 127)]
    [InlineData(97, 65, 96)]
    [InlineData(193, 80, 67)]
    [InlineData(300, 33, 129)]
    public void GemmWorkThresholdKeepsResultsExact(int m, int n, int k)
    {
        var rnd = new Random(m * 7 + n);
        var a = Int8GemmCheck.Bytes(rnd, m * k, signed: false);
        var w = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, k * n, signed: true);
        int[] zb = Enumerable.Range(0, n).Select(j => j % 3 - 1).ToArray();
        foreach (int threads in new[] { 1, 2, 3, 8 })
            Assert.Null(Int8GemmCheck.Compare(null, m, n, k, a, false, 77, w, false, zb, threads));
        Assert.True((long)m * n * k < 4 * Int8Gemm.MinMacsPerChunk, "shapes stay near the threshold");
    }

    /// <summary>The vectorised second stage (MatMul → Q → DQ → Add(bias) → Q) equals its table for every code and odd channel counts.</summary>
    [Theory]
    [InlineData(DataType.UInt8, DataType.UInt8, 37)]
    [InlineData(DataType.Int8, DataType.UInt8, 64)]
    [InlineData(DataType.UInt8, DataType.Int8, 67)]
    [InlineData(DataType.Int8, DataType.Int8, 15)]
    public void SecondStageVectorEqualsItsTable(DataType first, DataType second, int n)
    {
        var rnd = new Random(n);
        var bias = Enumerable.Range(0, n).Select(_ => (rnd.NextSingle() - 0.5f) * 3f).ToArray();
        int z1 = first == DataType.Int8 ? -3 : 121, z2 = second == DataType.Int8 ? 5 : 130;
        var map = new SecondStageMap(first, 0.031f, z1, bias, second, 0.017f, z2);
        int min = first == DataType.Int8 ? -128 : 0;
        var row = new int[n];
        for (int shift = 0; shift < 256; shift++)
        {
            for (int j = 0; j < n; j++) row[j] = min + (shift + 37 * j) % 256;
            var input = (int[])row.Clone();
            map.ApplyRow(row);
            for (int j = 0; j < n; j++)
                Assert.True(row[j] == map.Apply(input[j], j), $"channel {j} code {input[j]}: vector {row[j]}, table {map.Apply(input[j], j)}");
        }
    }

    /// <summary>
    /// A u8 A whose rows hold K = padded depth bytes with zero B zero points is read in place (no panel copy),
    /// also with a leading dimension larger than K, through every supported kernel: equal to the reference.
    /// </summary>
    [Theory]
    [InlineData(16, 64, 64, 64)]
    [InlineData(7, 33, 12, 20)]
    [InlineData(13, 16, 4, 4)]
    [InlineData(100, 70, 128, 131)]
    public void GemmReadsAlignedUnsignedRowsInPlace(int m, int n, int k, int lda)
    {
        var rnd = new Random(m + n + k);
        var a = Int8GemmCheck.Bytes(rnd, (m - 1) * lda + k, signed: false);
        var w = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, k * n, signed: true);
        foreach (var kernel in Int8Gemm.SupportedKernels)
        {
            var packed = PackedInt8Weights.Pack(k, n, w, n, false, [0], QuantSharp.Runtime.Kernels.Jit.GeneratedInt8Kernel.KAlignmentFor(kernel));
            var expected = new int[m * n];
            QuantSharp.Runtime.Kernels.Reference.Int8GemmReference.Gemm<byte>(m, n, k, a, lda, 131, w, n, false, [0], expected, n);
            foreach (int threads in new[] { 1, 2 })
            {
                var actual = new int[m * n];
                Int8Gemm.Multiply(m, (ReadOnlySpan<byte>)a, lda, 131, packed, actual, n, threads, kernel);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"{kernel.Name} {m}x{n}x{k} lda {lda} threads {threads}");
            }
        }
    }
}
