namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar float pooling that <see cref="Simd.FloatPool"/> must match bit for bit.</summary>
public static class FloatPoolReference
{
    /// <summary>
    /// 2×2 max pooling with stride 2 over <paramref name="planes"/> consecutive planes (no padding; only windows
    /// fully inside are produced): y[p, oh, ow] = max(max(x[2oh, 2ow], x[2oh + 1, 2ow]), max(x[2oh, 2ow + 1],
    /// x[2oh + 1, 2ow + 1])) with max the IEEE 754-2019 maximum (<see cref="float.Max"/>: a NaN tap gives NaN,
    /// +0 beats −0), the order the vector kernel reduces in (rows first, then the horizontal pair).
    /// </summary>
    public static void MaxPool2x2(ReadOnlySpan<float> x, int planes, int ih, int iw, Span<float> y, int oh, int ow)
    {
        Check(x.Length, planes, ih, iw, y.Length, oh, ow);
        for (int p = 0; p < planes; p++)
        {
            var src = x.Slice(p * ih * iw);
            var dst = y.Slice(p * oh * ow);
            for (int r = 0; r < oh; r++)
                for (int c = 0; c < ow; c++)
                {
                    int o0 = 2 * r * iw + 2 * c, o1 = o0 + iw;
                    float left = float.Max(src[o0], src[o1]), right = float.Max(src[o0 + 1], src[o1 + 1]);
                    dst[r * ow + c] = float.Max(left, right);
                }
        }
    }

    internal static void Check(int xLength, int planes, int ih, int iw, int yLength, int oh, int ow)
    {
        if (planes < 0 || oh < 0 || ow < 0 || 2L * oh > ih || 2L * ow > iw || (long)planes * ih * iw > xLength || (long)planes * oh * ow > yLength)
            throw new QuantSharpException($"2x2 max pool: {planes} planes of {ih}x{iw} ({xLength} values) cannot give {oh}x{ow} outputs ({yLength} values)");
    }
}
