using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Tests.Kernels;

/// <summary>Shared inputs and the comparison of one kernel run with the scalar reference.</summary>
public static class Int8GemmCheck
{
    /// <summary>Odd and block-edge sizes (blocks: 4-deep k groups, 16-column panels, 2/4/6-row tiles, 96-row tasks).</summary>
    public static readonly int[] EdgeSizes = [1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257];

    /// <summary>(m, n, k) triples sampled from <see cref="EdgeSizes"/> and 0, keeping m·n·k small enough for the scalar reference.</summary>
    public static List<(int M, int N, int K)> Shapes()
    {
        var rnd = new Random(1234);
        var list = new List<(int, int, int)> { (0, 5, 3), (3, 0, 5), (4, 7, 0), (1, 1, 1), (1, 257, 129), (257, 17, 3), (6, 16, 4), (97, 33, 65) };
        while (list.Count < 36)
        {
            int m = EdgeSizes[rnd.Next(EdgeSizes.Length)], n = EdgeSizes[rnd.Next(EdgeSizes.Length)], k = EdgeSizes[rnd.Next(EdgeSizes.Length)];
            if ((long)m * n * k <= 1_500_000) list.Add((m, n, k));
        }
        return list;
    }

    /// <summary>Random bytes with a quarter of them at the extremes of the type.</summary>
    public static byte[] Bytes(Random rnd, int count, bool signed)
    {
        var v = new byte[count];
        for (int i = 0; i < count; i++)
        {
            int r = rnd.Next(8);
            v[i] = r == 0 ? (signed ? (byte)0x80 : (byte)0) : r == 1 ? (signed ? (byte)0x7F : (byte)0xFF) : (byte)rnd.Next(256);
        }
        return v;
    }

    /// <summary>
    /// Runs the GEMM through <paramref name="kernel"/> (null: the default) and the reference; returns null when
    /// equal, else a description of the first difference.
    /// </summary>
    public static string? Compare(IInt8GemmKernel? kernel, int m, int n, int k, byte[] a, bool signedA, int za,
        sbyte[] b, bool transB, int[] zb, int threads)
    {
        int ldb = transB ? k : n;
        var packed = PackedInt8Weights.Pack(k, n, b, ldb, transB, zb);
        var expected = new int[m * n];
        var actual = new int[m * n];
        Array.Fill(actual, 0x5A5A5A5A);
        if (signedA)
        {
            var sa = (sbyte[])(Array)a;
            Int8GemmReference.Gemm<sbyte>(m, n, k, sa, k, za, b, ldb, transB, zb, expected, n);
            Int8Gemm.Multiply(m, (ReadOnlySpan<sbyte>)sa, k, za, packed, actual, n, threads, kernel);
        }
        else
        {
            Int8GemmReference.Gemm<byte>(m, n, k, a, k, za, b, ldb, transB, zb, expected, n);
            Int8Gemm.Multiply(m, (ReadOnlySpan<byte>)a, k, za, packed, actual, n, threads, kernel);
        }
        for (int i = 0; i < expected.Length; i++)
            if (expected[i] != actual[i])
                return $"{kernel?.Name ?? Int8Gemm.Default.Name} {m}x{n}x{k} signedA={signedA} za={za} zb=[{string.Join(",", zb.Take(3))}] transB={transB} threads={threads}: " +
                       $"C[{i / n},{i % n}] expected {expected[i]}, got {actual[i]}";
        return null;
    }

    /// <summary>The shape grid with varied zero points and layouts through one kernel; the first failure or null.</summary>
    public static string? RunGrid(IInt8GemmKernel? kernel, int threads)
    {
        var rnd = new Random(99);
        int t = 0;
        foreach (var (m, n, k) in Shapes())
        {
            bool signedA = (t & 1) != 0, transB = (t & 2) != 0;
            int za = (t % 3) switch { 0 => 0, 1 => signedA ? -7 : 131, _ => signedA ? 127 : 255 };
            int[] zb = (t % 4) switch { 0 => [], 1 => [3], 2 => Enumerable.Range(0, n).Select(j => j % 5 - 2).ToArray(), _ => [-128] };
            var a = Bytes(rnd, m * k, signedA);
            var b = (sbyte[])(Array)Bytes(rnd, k * n, true);
            var err = Compare(kernel, m, n, k, a, signedA, za, b, transB, zb, threads);
            if (err != null) return err;
            t++;
        }
        return null;
    }
}

public class Int8GemmTests
{
    public static TheoryData<string> KernelNames()
    {
        var d = new TheoryData<string>();
        foreach (var k in Int8Gemm.SupportedKernels) d.Add(k.Name);
        return d;
    }

    [Theory]
    [MemberData(nameof(KernelNames))]
    public void KernelMatchesReferenceOverShapeGrid(string name)
    {
        Assert.Null(Int8GemmCheck.RunGrid(Int8Gemm.Find(name), threads: 1));
    }

    [Theory]
    [MemberData(nameof(KernelNames))]
    public void WorstCaseSaturationInputsAreExact(string name)
    {
        var kernel = Int8Gemm.Find(name);
        // 255·127 + 255·127 and 255·(−128) + 255·(−128) overflow an int16 pair sum (vpmaddubsw saturates).
        foreach (int k in new[] { 2, 4, 7, 64, 257 })
            foreach (sbyte bv in new sbyte[] { 127, -128 })
                foreach (bool signedA in new[] { false, true })
                {
                    int m = 7, n = 19;
                    var a = Enumerable.Repeat(signedA ? (byte)0x80 : (byte)255, m * k).ToArray();
                    var b = Enumerable.Repeat(bv, k * n).ToArray();
                    Assert.Null(Int8GemmCheck.Compare(kernel, m, n, k, a, signedA, 0, b, false, [], 1));
                    Assert.Null(Int8GemmCheck.Compare(kernel, m, n, k, a, signedA, signedA ? 127 : 255, b, true, [bv], 1));
                }
    }

    [Fact]
    public void ThreadCountDoesNotChangeResults()
    {
        var rnd = new Random(5);
        foreach (var (m, n, k) in new[] { (200, 130, 77), (1, 300, 64), (257, 33, 129) })
        {
            var a = Int8GemmCheck.Bytes(rnd, m * k, false);
            var b = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, k * n, true);
            var packed = PackedInt8Weights.Pack(k, n, b, n, false, [1]);
            var c1 = new int[m * n];
            var c2 = new int[m * n];
            Int8Gemm.Multiply(m, (ReadOnlySpan<byte>)a, k, 3, packed, c1, n, threads: 1);
            Int8Gemm.Multiply(m, (ReadOnlySpan<byte>)a, k, 3, packed, c2, n, threads: 2);
            Assert.Equal(c1, c2);
            Assert.Null(Int8GemmCheck.Compare(null, m, n, k, a, false, 3, b, false, [1], 2));
        }
    }

    [Fact]
    public void ReferenceEqualsDirectIntGemm()
    {
        var rnd = new Random(8);
        int m = 9, n = 21, k = 13;
        var a = Int8GemmCheck.Bytes(rnd, m * k, false);
        var b = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, k * n, true);
        var zb = Enumerable.Range(0, n).Select(j => j - 10).ToArray();
        var expanded = new int[m * n];
        var direct = new int[m * n];
        Int8GemmReference.Gemm<byte>(m, n, k, a, k, 200, b, n, false, zb, expanded, n);
        IntGemmReference.Gemm<byte, sbyte>(m, n, k, a, k, [200], b, n, zb, direct, n);
        Assert.Equal(direct, expanded);
    }

    [Fact]
    public void LargeOutputStridesAndPaddedAlignment()
    {
        var rnd = new Random(3);
        int m = 5, n = 40, k = 70, ldc = 45;
        var a = Int8GemmCheck.Bytes(rnd, m * k, false);
        var b = (sbyte[])(Array)Int8GemmCheck.Bytes(rnd, k * n, true);
        // K padded to 64 (the AMX tile depth) must give the same product as the default 4.
        var packed = PackedInt8Weights.Pack(k, n, b, n, false, [2], kAlignment: 64);
        Assert.Equal(128, packed.PaddedDepth);
        var expected = new int[m * n];
        Int8GemmReference.Gemm<byte>(m, n, k, a, k, 7, b, n, false, [2], expected, n);
        foreach (var kernel in Int8Gemm.SupportedKernels)
        {
            var c = Enumerable.Repeat(-1, m * ldc).ToArray();
            Int8Gemm.Multiply(m, (ReadOnlySpan<byte>)a, k, 7, packed, c, ldc, 1, kernel);
            for (int i = 0; i < m; i++)
            {
                Assert.Equal(expected.AsSpan(i * n, n).ToArray(), c.AsSpan(i * ldc, n).ToArray());
                Assert.All(c.AsSpan(i * ldc + n, ldc - n).ToArray(), v => Assert.Equal(-1, v));
            }
        }
    }

    [Fact]
    public void BadShapesAreRejected()
    {
        Assert.Throws<QuantSharpException>(() => PackedInt8Weights.Pack(4, 4, new sbyte[10], 4, false));
        Assert.Throws<QuantSharpException>(() => PackedInt8Weights.Pack(4, 4, new sbyte[16], 4, false, [1, 2]));
        var p = PackedInt8Weights.Pack(4, 4, new sbyte[16], 4, false);
        Assert.Throws<QuantSharpException>(() => Int8Gemm.Multiply(2, new byte[7], 4, 0, p, new int[8], 4));
        Assert.Throws<QuantSharpException>(() => Int8Gemm.Find("NoSuchKernel"));
    }
}
