using System.Buffers;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>Vectorised float pooling; results equal <see cref="FloatPoolReference"/> bit for bit.</summary>
public static class FloatPool
{
    /// <summary>
    /// <see cref="FloatPoolReference.MaxPool2x2"/> in two vector passes so that short rows (a 14-wide output) still
    /// fill whole vectors: (1) per output row, the element-wise maximum of input rows 2oh and 2oh + 1 over their
    /// first 2·ow values into a scratch where those rows lie back to back; (2) over the whole scratch, the maximum
    /// of each horizontal pair (even and odd elements separated by a two-source permute). Vector maxima are the
    /// IEEE 754-2019 maximum like <see cref="float.Max"/>. Tails reuse an overlapping last vector (max is
    /// idempotent, so rewriting equal values is harmless).
    /// </summary>
    public static void MaxPool2x2(ReadOnlySpan<float> x, int planes, int ih, int iw, Span<float> y, int oh, int ow)
    {
        FloatPoolReference.Check(x.Length, planes, ih, iw, y.Length, oh, ow);
        int rowOut = 2 * ow, outputs = planes * oh * ow;
        if (outputs == 0) return;
        if (!Avx512F.IsSupported || outputs < 16)
        {
            FloatPoolReference.MaxPool2x2(x, planes, ih, iw, y, oh, ow);
            return;
        }
        var scratch = ArrayPool<float>.Shared.Rent(2 * outputs);
        try
        {
            var s = scratch.AsSpan(0, 2 * outputs);
            int at = 0;
            for (int p = 0; p < planes; p++)
            {
                var src = x.Slice(p * ih * iw);
                for (int r = 0; r < oh; r++, at += rowOut)
                {
                    var r0 = src.Slice(2 * r * iw, rowOut);
                    var r1 = src.Slice((2 * r + 1) * iw, rowOut);
                    var d = s.Slice(at, rowOut);
                    if (rowOut < 16)
                    {
                        for (int c = 0; c < rowOut; c++) d[c] = float.Max(r0[c], r1[c]);
                        continue;
                    }
                    for (int c = 0; ; c += 16)
                    {
                        if (c > rowOut - 16) c = rowOut - 16;
                        Vector512.Max(Vector512.Create(r0.Slice(c, 16)), Vector512.Create(r1.Slice(c, 16))).CopyTo(d.Slice(c, 16));
                        if (c == rowOut - 16) break;
                    }
                }
            }
            // vpermt2ps indices: elements 0..15 of (a, b) are a's, 16..31 are b's.
            var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var odd = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            for (int i = 0; ; i += 16)
            {
                if (i > outputs - 16) i = outputs - 16;
                var a = Vector512.Create(s.Slice(2 * i, 16));
                var b = Vector512.Create(s.Slice(2 * i + 16, 16));
                Vector512.Max(Avx512F.PermuteVar16x32x2(a, even, b), Avx512F.PermuteVar16x32x2(a, odd, b)).CopyTo(y.Slice(i, 16));
                if (i == outputs - 16) break;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scratch);
        }
    }
}
