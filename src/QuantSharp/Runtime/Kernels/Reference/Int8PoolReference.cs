namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar 8-bit pooling that the SIMD versions in <see cref="Simd.Int8Pool"/> must match exactly.</summary>
public static class Int8PoolReference
{
    /// <summary>
    /// 2×2 max pooling with stride 2 over <paramref name="planes"/> consecutive planes (no padding; only windows
    /// fully inside are produced): y[p, oh, ow] = max(x[p, 2oh, 2ow], x[p, 2oh, 2ow + 1], x[p, 2oh + 1, 2ow],
    /// x[p, 2oh + 1, 2ow + 1]) for oh &lt; oh_n, ow &lt; ow_n, with 2·oh_n ≤ ih and 2·ow_n ≤ iw. Bytes compare as
    /// unsigned, or as signed two's complement when <paramref name="signed"/>.
    /// </summary>
    public static void MaxPool2x2(ReadOnlySpan<byte> x, int planes, int ih, int iw, Span<byte> y, int oh, int ow, bool signed)
    {
        Check(x.Length, planes, ih, iw, y.Length, oh, ow);
        int flip = signed ? 0x80 : 0;
        for (int p = 0; p < planes; p++)
        {
            var src = x.Slice(p * ih * iw);
            var dst = y.Slice(p * oh * ow);
            for (int r = 0; r < oh; r++)
                for (int c = 0; c < ow; c++)
                {
                    int a = src[2 * r * iw + 2 * c] ^ flip, b = src[2 * r * iw + 2 * c + 1] ^ flip;
                    int d = src[(2 * r + 1) * iw + 2 * c] ^ flip, e = src[(2 * r + 1) * iw + 2 * c + 1] ^ flip;
                    dst[r * ow + c] = (byte)(Math.Max(Math.Max(a, b), Math.Max(d, e)) ^ flip);
                }
        }
    }

    internal static void Check(int xLength, int planes, int ih, int iw, int yLength, int oh, int ow)
    {
        if (planes < 0 || oh < 0 || ow < 0 || 2L * oh > ih || 2L * ow > iw || (long)planes * ih * iw > xLength || (long)planes * oh * ow > yLength)
            throw new QuantSharpException($"2x2 max pool: {planes} planes of {ih}x{iw} ({xLength} bytes) cannot give {oh}x{ow} outputs ({yLength} bytes)");
    }
}
