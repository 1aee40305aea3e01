using QuantSharp.Graph;
using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.Quantization;

public class MatMulIntegerTests
{
    /// <summary>Naive reference: batched (broadcast) matmul of 3-D views with per-row/column zero points.</summary>
    private static int[] RefMatMul(int[] a, int[] aBatchOf, int[] b, int[] bBatchOf, int batches, int m, int k, int n,
        Func<int, int, int> azp, Func<int, int, int> bzp)
    {
        var y = new int[batches * m * n];
        for (int t = 0; t < batches; t++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    long acc = 0;
                    int ab = aBatchOf[t], bb = bBatchOf[t];
                    for (int kk = 0; kk < k; kk++)
                        acc += (long)(a[(ab * m + i) * k + kk] - azp(ab, i)) * (b[(bb * k + kk) * n + j] - bzp(bb, j));
                    y[(t * m + i) * n + j] = (int)acc;
                }
        return y;
    }

    [Theory]
    [InlineData(DataType.UInt8, DataType.UInt8)]
    [InlineData(DataType.Int8, DataType.UInt8)]
    [InlineData(DataType.UInt8, DataType.Int8)]
    [InlineData(DataType.Int8, DataType.Int8)]
    public void TwoDimensionalWithPerRowAndPerColumnZeroPoints(DataType ta, DataType tb)
    {
        var r = new Random((int)ta * 7 + (int)tb);
        int m = 5, k = 7, n = 6;
        var (alo, ahi) = RangeOf(ta);
        var (blo, bhi) = RangeOf(tb);
        var a = RandomInts(r, m * k, alo, ahi);
        var b = RandomInts(r, k * n, blo, bhi);
        var azp = RandomInts(r, m, alo, ahi);
        var bzp = RandomInts(r, n, blo, bhi);
        // No zero points.
        var y0 = Run1("MatMulInteger", [Ints(ta, a, m, k), Ints(tb, b, k, n)], opset: 10);
        Assert.Equal(DataType.Int32, y0.DataType);
        Assert.Equal(RefMatMul(a, [0], b, [0], 1, m, k, n, (_, _) => 0, (_, _) => 0), IntsOf(y0));
        // Scalar zero points.
        var y1 = Run1("MatMulInteger", [Ints(ta, a, m, k), Ints(tb, b, k, n), Ints(ta, [azp[0]]), Ints(tb, [bzp[0]])], opset: 10);
        Assert.Equal(RefMatMul(a, [0], b, [0], 1, m, k, n, (_, _) => azp[0], (_, _) => bzp[0]), IntsOf(y1));
        // Per-row (A) and per-column (B) vectors.
        var y2 = Run1("MatMulInteger", [Ints(ta, a, m, k), Ints(tb, b, k, n), Ints(ta, azp, m), Ints(tb, bzp, n)], opset: 10);
        Assert.Equal(RefMatMul(a, [0], b, [0], 1, m, k, n, (_, i) => azp[i], (_, j) => bzp[j]), IntsOf(y2));
        // B's zero point alone, as initializers.
        var y3 = Run1("MatMulInteger", [Ints(ta, a, m, k), Ints(tb, b, k, n), null, Ints(tb, bzp, n)], opset: 10, constants: [1, 3]);
        Assert.Equal(RefMatMul(a, [0], b, [0], 1, m, k, n, (_, _) => 0, (_, j) => bzp[j]), IntsOf(y3));
    }

    [Fact]
    public void BatchedBroadcastAndNdZeroPoints()
    {
        var r = new Random(21);
        // A [2, 1, 3, 4] · B [3, 4, 5] → [2, 3, 3, 5]; A's zero point [2, 1, 3, 1], B's [3, 1, 5].
        int m = 3, k = 4, n = 5;
        var a = RandomInts(r, 2 * m * k, 0, 255);
        var b = RandomInts(r, 3 * k * n, -128, 127);
        var azp = RandomInts(r, 2 * m, 0, 255);
        var bzp = RandomInts(r, 3 * n, -128, 127);
        var y = Run1("MatMulInteger", [Ints(DataType.UInt8, a, 2, 1, m, k), Ints(DataType.Int8, b, 3, k, n),
            Ints(DataType.UInt8, azp, 2, 1, m, 1), Ints(DataType.Int8, bzp, 3, 1, n)], opset: 10);
        Assert.Equal([2, 3, m, n], y.Shape);
        int[] aOf = [0, 0, 0, 1, 1, 1], bOf = [0, 1, 2, 0, 1, 2];
        Assert.Equal(RefMatMul(a, aOf, b, bOf, 6, m, k, n, (ab, i) => azp[ab * m + i], (bb, j) => bzp[bb * n + j]), IntsOf(y));
    }

    [Fact]
    public void OneDimensionalOperands()
    {
        var r = new Random(22);
        var a = RandomInts(r, 4, 0, 255);
        var b = RandomInts(r, 4 * 3, 0, 255);
        var y = Run1("MatMulInteger", [Ints(DataType.UInt8, a, 4), Ints(DataType.UInt8, b, 4, 3), Ints(DataType.UInt8, [3])], opset: 10);
        Assert.Equal([3], y.Shape);
        Assert.Equal(RefMatMul(a, [0], b, [0], 1, 1, 4, 3, (_, _) => 3, (_, _) => 0), IntsOf(y));
        var v = Run1("MatMulInteger", [Ints(DataType.UInt8, b, 3, 4), Ints(DataType.UInt8, a, 4)], opset: 10);
        Assert.Equal([3], v.Shape);
    }

    [Fact]
    public void InfersShapeAndType()
    {
        var t = Infer("MatMulInteger", [TensorTypeInfo.FromShape(DataType.UInt8, [2, 1, 3, 4]), TensorTypeInfo.FromShape(DataType.Int8, [5, 4, 6])], opset: 10)[0]!;
        Assert.Equal(DataType.Int32, t.ElementType);
        Assert.Equal([2, 5, 3, 6], t.ConcreteShape()!);
    }

    [Fact]
    public void ReferenceGemmWrapsInt32Accumulation()
    {
        // 2^31 / (255·255) ≈ 33026 terms overflow int32: the reference wraps like two's complement.
        int k = 40000;
        var a = Enumerable.Repeat((byte)255, k).ToArray();
        var b = Enumerable.Repeat((byte)255, k).ToArray();
        var c = new int[1];
        IntGemmReference.Gemm<byte, byte>(1, 1, k, a, k, [], b, 1, [], c, 1);
        Assert.Equal(unchecked((int)(255L * 255 * k)), c[0]);
    }
}
