using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.Kernels;

public class Int4GemvTests
{
    private static readonly int[] Ks = [1, 31, 32, 33, 100, 257];
    private static readonly int[] Blocks = [16, 32, 64, 128];
    private static readonly int[] RowCounts = [1, 3, 8];

    /// <summary>Random packed codes (padding nibbles included), scales, zero points and zero-padded A rows.</summary>
    private sealed record Problem(int Rows, int N, int K, int BlockSize, int KBlocks, float[] A, byte[] B, float[] Scales, float[] ZeroPoints)
    {
        public int Kp => KBlocks * BlockSize;

        public static Problem Make(Random r, int rows, int n, int k, int blockSize, bool zeroPoints)
        {
            int kBlocks = (k + blockSize - 1) / blockSize, kp = kBlocks * blockSize;
            var a = new float[rows * kp];
            for (int m = 0; m < rows; m++)
                for (int kk = 0; kk < k; kk++) a[m * kp + kk] = (float)(r.NextDouble() * 2 - 1);
            var b = new byte[n * kp / 2];
            r.NextBytes(b);
            var scales = new float[n * kBlocks];
            for (int i = 0; i < scales.Length; i++) scales[i] = (float)(0.01 + r.NextDouble() * 0.1);
            var zp = new float[n * kBlocks];
            for (int i = 0; i < zp.Length; i++) zp[i] = zeroPoints ? r.Next(0, 16) : 8f;
            return new Problem(rows, n, k, blockSize, kBlocks, a, b, scales, zp);
        }

        public float[] Run(Int4GemvIsa? isa, int ldy)
        {
            var y = new float[Rows * ldy];
            if (isa is { } i)
                Int4Gemv.Multiply(A, Kp, Rows, B, Scales, ZeroPoints, KBlocks, BlockSize, 0, N, y, ldy, i);
            else
                Int4GemvReference.Multiply(A, Kp, Rows, B, Scales, ZeroPoints, KBlocks, BlockSize, 0, N, y, ldy);
            return y;
        }

        /// <summary>Σ_k a·(code − z)·scale over k &lt; K in double, and Σ |a·w| (for the tolerance).</summary>
        public (double Value, double Magnitude) Definition(int m, int j)
        {
            double v = 0, mag = 0;
            for (int k = 0; k < K; k++)
            {
                int p = j * KBlocks + k / BlockSize;
                int code = (B[j * Kp / 2 + k / 2] >> ((k & 1) * 4)) & 0xF;
                double t = A[m * Kp + k] * ((code - (double)ZeroPoints[p]) * Scales[p]);
                v += t;
                mag += Math.Abs(t);
            }
            return (v, mag);
        }
    }

    public static TheoryData<Int4GemvIsa> Isas() => [Int4GemvIsa.V256, Int4GemvIsa.V512];

    [Theory]
    [MemberData(nameof(Isas))]
    public void SimdMatchesReferenceBitForBit(Int4GemvIsa isa)
    {
        if (!Int4Gemv.IsSupported(isa)) return;
        var r = new Random(4000 + (int)isa);
        foreach (int k in Ks)
            foreach (int bs in Blocks)
                foreach (int rows in RowCounts)
                    foreach (bool zp in new[] { false, true })
                    {
                        var p = Problem.Make(r, rows, 7, k, bs, zp);
                        int ldy = p.N + 3;
                        var want = p.Run(null, ldy);
                        var got = p.Run(isa, ldy);
                        for (int i = 0; i < want.Length; i++)
                            Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]),
                                $"{isa} K={k} block={bs} rows={rows} zp={zp} element {i}: got {got[i]:R}, reference {want[i]:R}");
                    }
    }

    [Fact]
    public void ColumnRangeWritesOnlyItsColumns()
    {
        var p = Problem.Make(new Random(7), 5, 9, 100, 32, true);
        var full = p.Run(Int4Gemv.Best, p.N);
        var part = new float[p.Rows * p.N];
        Int4Gemv.Multiply(p.A, p.Kp, p.Rows, p.B, p.Scales, p.ZeroPoints, p.KBlocks, p.BlockSize, 2, 6, part, p.N, Int4Gemv.Best);
        for (int m = 0; m < p.Rows; m++)
            for (int j = 0; j < p.N; j++)
                Assert.Equal(j is >= 2 and < 6 ? full[m * p.N + j] : 0f, part[m * p.N + j]);
    }

    [Fact]
    public void ReferenceAgreesWithDequantizeThenDot()
    {
        var r = new Random(41);
        foreach (int k in Ks)
            foreach (int bs in Blocks)
            {
                var p = Problem.Make(r, 3, 5, k, bs, true);
                var y = p.Run(null, p.N);
                for (int m = 0; m < p.Rows; m++)
                    for (int j = 0; j < p.N; j++)
                    {
                        var (v, mag) = p.Definition(m, j);
                        Assert.True(Math.Abs(y[m * p.N + j] - v) <= 1e-6 + 1e-5 * mag, $"K={k} block={bs} ({m}, {j}): {y[m * p.N + j]} vs {v}");
                    }
            }
    }

    [Fact]
    public void RejectsBlockSizeNotMultipleOf16()
    {
        Assert.False(Int4Gemv.SupportsBlockSize(8));
        Assert.Throws<ArgumentException>(() => Int4Gemv.Multiply(new float[8], 8, 1, new byte[4], new float[1], new float[1], 1, 8, 0, 1, new float[1], 1, Int4GemvIsa.Scalar));
    }

    /// <summary>
    /// The operator (4-bit, k-ordered blocks: the in-register kernel) equals the reference plus bias exactly, and the
    /// dequantize-then-dot definition within float tolerance, with packed, float and default zero points.
    /// </summary>
    [Theory]
    [InlineData(1, 257, 32, "packed", true, true)]
    [InlineData(3, 100, 16, "none", false, false)]
    [InlineData(8, 33, 64, "float", true, true)]
    [InlineData(3, 31, 128, "packed", false, true)]
    [InlineData(1, 1, 16, "none", true, false)]
    public void OperatorMatchesKernelAndDefinition(int rows, int k, int blockSize, string zeroPoints, bool bias, bool constant)
    {
        var r = new Random(rows * 1000 + k);
        int n = 37;
        var p = Problem.Make(r, rows, n, k, blockSize, zeroPoints != "none");
        int kBlocks = p.KBlocks, blob = blockSize / 2;
        if (zeroPoints == "float")
            for (int i = 0; i < p.ZeroPoints.Length; i++) p.ZeroPoints[i] += 0.25f;
        var biasV = new float[n];
        for (int j = 0; j < n; j++) biasV[j] = bias ? (float)(r.NextDouble() - 0.5) : 0f;
        var a = new float[rows * k];
        for (int m = 0; m < rows; m++) Array.Copy(p.A, m * p.Kp, a, m * k, k);
        int zpRow = (kBlocks + 1) / 2;
        var zpPacked = new byte[n * zpRow];
        for (int j = 0; j < n; j++)
            for (int blk = 0; blk < kBlocks; blk++)
                zpPacked[j * zpRow + blk / 2] |= (byte)((int)p.ZeroPoints[j * kBlocks + blk] << ((blk % 2) * 4));
        Tensor? zpT = zeroPoints switch
        {
            "packed" => new Tensor<byte>(zpPacked, [zpPacked.Length]),
            "float" => F(p.ZeroPoints, p.ZeroPoints.Length),
            _ => null,
        };
        var attrs = new[] { A("K", k), A("N", n), A("bits", 4), A("block_size", blockSize) };
        var y = Run1("MatMulNBits", [F(a, rows, k), new Tensor<byte>(p.B, [n, kBlocks, blob]), F(p.Scales, p.Scales.Length), zpT,
            null, bias ? F(biasV, n) : null], attrs, domain: "com.microsoft", constants: constant ? [1, 2, 3, 4, 5] : null);
        Assert.Equal([rows, n], y.Shape);
        var got = ((Tensor<float>)y).Data;
        var kernel = p.Run(null, n);
        for (int m = 0; m < rows; m++)
            for (int j = 0; j < n; j++)
            {
                int i = m * n + j;
                if (Int4Gemv.Best != Int4GemvIsa.Scalar)
                    Assert.Equal(BitConverter.SingleToInt32Bits(bias ? kernel[i] + biasV[j] : kernel[i]), BitConverter.SingleToInt32Bits(got[i]));
                var (v, mag) = p.Definition(m, j);
                Assert.True(Math.Abs(got[i] - (v + biasV[j])) <= 1e-5 + 1e-5 * mag, $"({m}, {j}): {got[i]} vs {v + biasV[j]}");
            }
    }
}
