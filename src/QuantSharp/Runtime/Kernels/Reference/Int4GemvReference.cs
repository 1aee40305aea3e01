namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>
/// Scalar definition of the 4-bit weight-only GEMV that <see cref="Simd.Int4Gemv"/> reproduces bit for bit:
/// y[m, j] = Σ_blk scale[j, blk] · Σ_{t &lt; block_size} (code[j, blk·block_size + t] − zero_point[j, blk]) · a[m, blk·block_size + t].
/// <para>B is packed as com.microsoft MatMulNBits stores it: row j holds k_blocks blobs of block_size / 2 bytes,
/// code k is the low nibble of byte k / 2 when k is even and the high nibble when k is odd.</para>
/// <para>Each row of A has lda ≥ k_blocks · block_size floats and is zero beyond K, so the last (partial) block is
/// processed over its full block_size: the padding codes of B are read as stored and multiply zeros.</para>
/// <para>Float order (the SIMD kernels keep exactly this): 32 lanes (two independent FMA chains per 512-bit step,
/// which hides the FMA latency); inside a block, t goes to lane t mod 32 with
/// s[l] = fma(float(code) − z, a, s[l]) in increasing t, s starting at +0; after the block
/// acc[l] = fma(scale, s[l], acc[l]) (acc starts at +0); at the end the lanes are summed in a fixed tree:
/// v[i] = acc[i] + acc[i+16], w[i] = v[i] + v[i+8], x[i] = w[i] + w[i+4] (i &lt; 4), y = (x[0] + x[2]) + (x[1] + x[3]).</para>
/// </summary>
public static class Int4GemvReference
{
    public const int Lanes = 32;

    /// <summary>y[m·ldy + j] for m &lt; rows, j in [n0, n1); scales and zeroPoints are [N · k_blocks] row-major.</summary>
    public static void Multiply(ReadOnlySpan<float> a, int lda, int rows, ReadOnlySpan<byte> b,
        ReadOnlySpan<float> scales, ReadOnlySpan<float> zeroPoints, int kBlocks, int blockSize,
        int n0, int n1, Span<float> y, int ldy)
    {
        int blob = blockSize / 2;
        Span<float> s = stackalloc float[Lanes];
        Span<float> acc = stackalloc float[Lanes];
        for (int j = n0; j < n1; j++)
        {
            var row = b.Slice(j * kBlocks * blob, kBlocks * blob);
            for (int m = 0; m < rows; m++)
            {
                var ar = a.Slice(m * lda, kBlocks * blockSize);
                acc.Clear();
                for (int blk = 0; blk < kBlocks; blk++)
                {
                    float z = zeroPoints[j * kBlocks + blk], scale = scales[j * kBlocks + blk];
                    s.Clear();
                    for (int t = 0; t < blockSize; t++)
                    {
                        int k = blk * blockSize + t;
                        int code = (row[k >> 1] >> ((k & 1) << 2)) & 0xF;
                        s[t % Lanes] = MathF.FusedMultiplyAdd(code - z, ar[k], s[t % Lanes]);
                    }
                    for (int l = 0; l < Lanes; l++) acc[l] = MathF.FusedMultiplyAdd(scale, s[l], acc[l]);
                }
                y[m * ldy + j] = ReduceLanes(acc);
            }
        }
    }

    /// <summary>The fixed 32 → 16 → 8 → 4 → 1 lane-sum tree shared with the SIMD kernels.</summary>
    public static float ReduceLanes(ReadOnlySpan<float> acc)
    {
        Span<float> v = stackalloc float[16];
        for (int i = 0; i < 16; i++) v[i] = acc[i] + acc[i + 16];
        Span<float> w = stackalloc float[8];
        for (int i = 0; i < 8; i++) w[i] = v[i] + v[i + 8];
        float x0 = w[0] + w[4], x1 = w[1] + w[5], x2 = w[2] + w[6], x3 = w[3] + w[7];
        return (x0 + x2) + (x1 + x3);
    }
}
