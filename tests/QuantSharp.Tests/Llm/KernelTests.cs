using QuantSharp.Llm;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Kernels;

namespace QuantSharp.Tests.Llm;

/// <summary>
/// The int8-activation block kernels: every supported instruction-set path against a reference computed from the
/// block structs (the formula in <see cref="QKernels"/>), bit for bit, over odd row counts and partial last blocks.
/// </summary>
public class KernelTests
{
    internal static float[] RandomValues(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * (float)Math.Exp(2 * r.NextDouble() - 1)).ToArray();
    }

    /// <summary>Signed code k of a block (Q8_0: q; Q4_0: nibble − 8; Q4_1: nibble), d and m.</summary>
    private static unsafe (int[] Q, float D, float M) Decode<TBlock>(TBlock b) where TBlock : unmanaged
    {
        var q = new int[32];
        switch (b)
        {
            case BlockQ8_0 a:
                for (int k = 0; k < 32; k++) q[k] = a.Qs[k];
                return (q, (float)a.D, 0);
            case BlockQ4_0 a:
                for (int k = 0; k < 16; k++) { q[k] = (a.Qs[k] & 15) - 8; q[k + 16] = (a.Qs[k] >> 4) - 8; }
                return (q, (float)a.D, 0);
            case BlockQ4_1 a:
                for (int k = 0; k < 16; k++) { q[k] = a.Qs[k] & 15; q[k + 16] = a.Qs[k] >> 4; }
                return (q, (float)a.D, (float)a.M);
            default: throw new ArgumentException(typeof(TBlock).Name);
        }
    }

    /// <summary>Y[t, r] by the defining formula, from the block structs the matrix was built from.</summary>
    internal static unsafe float[] Reference<TBlock>(TBlock[] blocks, int rows, int bpr, Q8Batch x, int tokens) where TBlock : unmanaged
    {
        var y = new float[tokens * rows];
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < rows; r++)
            {
                float acc = 0;
                for (int b = 0; b < bpr; b++)
                {
                    var (q, d, m) = Decode(blocks[r * bpr + b]);
                    int p = 0;
                    sbyte* xq = x.Token(t) + b * 32;
                    for (int k = 0; k < 32; k++) p += q[k] * xq[k];
                    acc = MathF.FusedMultiplyAdd(d * x.D[t * bpr + b], p, acc);
                    if (typeof(TBlock) == typeof(BlockQ4_1)) acc = MathF.FusedMultiplyAdd(m, x.S[t * bpr + b], acc);
                }
                y[t * rows + r] = acc;
            }
        return y;
    }

    public static TheoryData<string, int, int> Shapes()
    {
        var d = new TheoryData<string, int, int>();
        foreach (var f in new[] { "q8_0", "q4_0", "q4_1" })
            foreach (var (r, c) in new[] { (9, 172), (17, 33), (16, 64), (3, 32), (24, 100), (40, 257) })
                d.Add(f, r, c);
        return d;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void EveryPathMatchesTheReferenceBitForBit(string type, int rows, int cols)
    {
        string? err = KernelCheck.Check(type, rows, cols, QKernels.Supported);
        Assert.True(err is null, err);
    }

    [Fact]
    public void PackingKeepsEveryBlock()
    {
        var src = F32Matrix.FromArray("w", 11, 70, RandomValues(11 * 70, 3));
        var blocks = BlockMatrix<BlockQ4_1>.QuantizeRows(src);
        var m = new Q8DotMatrix<BlockQ4_1>("w", 11, 70, blocks);
        for (int r = 0; r < 11; r++)
            for (int b = 0; b < 3; b++)
                Assert.Equal(Bytes(blocks[r * 3 + b]), Bytes(m.GetBlock(r, b)));
        Assert.Equal(Bytes(blocks), Bytes(m.Blocks.ToArray()));
        var reference = new BlockMatrix<BlockQ4_1>("w", 11, 70, blocks);
        var a = new float[70];
        var e = new float[70];
        for (int r = 0; r < 11; r++)
        {
            m.DequantizeRow(r, a);
            reference.DequantizeRow(r, e);
            Assert.Equal(e, a);
        }
    }

    private static unsafe byte[] Bytes<T>(T v) where T : unmanaged => new ReadOnlySpan<byte>(&v, sizeof(T)).ToArray();
    private static byte[] Bytes<T>(T[] v) where T : unmanaged => System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()).ToArray();

    [Fact]
    public unsafe void VectorActivationQuantizationMatchesScalar()
    {
        int n = 32 * 7 + 11;
        var x = RandomValues(n, 5);
        // Block 1: amax 127 → d = 1, so these are exact ties that must round away from zero.
        float[] ties = [127f, 2.5f, -3.5f, 0.5f, -0.5f, 126.5f, -126.5f, 1.5f, -0f, 0f];
        ties.CopyTo(x, 32);
        // Block 2 all zero; block 3 with one huge value.
        Array.Clear(x, 64, 32);
        x[100] = 3e4f;
        var a = new Q8Batch(n, 2);
        var b = new Q8Batch(n, 2);
        a.QuantizeToken(x, 1, simd: false);
        b.QuantizeToken(x, 1, simd: System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx512F.IsSupported);
        Assert.Equal(new ReadOnlySpan<sbyte>(a.Token(1), a.Stride).ToArray(), new ReadOnlySpan<sbyte>(b.Token(1), b.Stride).ToArray());
        Assert.Equal(a.D, b.D);
        Assert.Equal(a.Sums, b.Sums);
        Assert.Equal(a.S, b.S);
        Assert.Equal(3, a.Token(1)[33]);
        Assert.Equal(-4, a.Token(1)[34]);
        Assert.Equal(1, a.Token(1)[35]);
        Assert.Equal(-1, a.Token(1)[36]);
        Assert.Equal(127, a.Token(1)[37]);
    }

    [Fact]
    public void SelectionPicksTheBestSupportedPath()
    {
        Assert.Equal(QKernels.Supported[0], QKernels.Selected);
        Assert.Contains(QKernelIsa.Scalar, QKernels.Supported);
        if (System.Runtime.Intrinsics.X86.AvxVnni.IsSupported) Assert.Equal(QKernelIsa.AvxVnni, QKernels.Selected);
    }
}

/// <summary>The kernel check shared by the tests and the child processes of <see cref="LlmKernelIsaTests"/>.</summary>
public static unsafe class KernelCheck
{
    /// <summary>Null when every path in <paramref name="paths"/> matches the reference for 1 and 5 tokens, else a description.</summary>
    public static string? Check(string type, int rows, int cols, IEnumerable<QKernelIsa> paths)
    {
        var src = F32Matrix.FromArray("w", rows, cols, KernelTests.RandomValues(rows * cols, rows * 1000 + cols));
        return type switch
        {
            "q8_0" => Check<BlockQ8_0>(src, paths),
            "q4_0" => Check<BlockQ4_0>(src, paths),
            _ => Check<BlockQ4_1>(src, paths),
        };
    }

    private static string? Check<TBlock>(F32Matrix src, IEnumerable<QKernelIsa> paths) where TBlock : unmanaged, IQ8DotBlock<TBlock>
    {
        int rows = src.Rows, cols = src.Cols;
        var blocks = BlockMatrix<TBlock>.QuantizeRows(src);
        var m = new Q8DotMatrix<TBlock>("w", rows, cols, blocks);
        foreach (int tokens in new[] { 1, 5 })
        {
            var x = new Q8Batch(cols, tokens);
            x.Quantize(KernelTests.RandomValues(tokens * cols, 77 + cols), tokens, cols);
            var expected = KernelTests.Reference(blocks, rows, m.BlocksPerRow, x, tokens);
            foreach (var isa in paths)
            {
                var y = new float[tokens * rows];
                m.Isa = isa;
                fixed (float* py = y) m.Gemm(x, 0, tokens, py, rows, 0, m.Packed.Groups);
                for (int i = 0; i < y.Length; i++)
                    if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                        return $"{TBlock.TypeName} [{rows},{cols}] {tokens} tokens, {isa}: element {i} is {y[i]:R}, reference {expected[i]:R}";
            }
            if (tokens == 1)
            {
                // The decode entry point with row ranges cut inside 8-row groups.
                var qa = new Q8Activations(cols);
                qa.Quantize(KernelTests.RandomValues(cols, 77 + cols));
                var e1 = KernelTests.Reference(blocks, rows, m.BlocksPerRow, qa.Batch, 1);
                var y1 = new float[rows];
                m.Isa = QKernels.Selected;
                int cut = Math.Min(rows, 3);
                m.MatVecQ8(qa, y1, 0, cut);
                m.MatVecQ8(qa, y1, cut, rows);
                if (!e1.SequenceEqual(y1)) return $"{TBlock.TypeName} [{rows},{cols}]: MatVecQ8 over split row ranges differs from the reference";
            }
        }
        return null;
    }
}
