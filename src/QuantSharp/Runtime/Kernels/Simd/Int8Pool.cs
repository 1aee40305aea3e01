using System.Buffers;
using System.Runtime.Intrinsics;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>Vectorised 8-bit pooling; results equal <see cref="Int8PoolReference"/> byte for byte.</summary>
public static class Int8Pool
{
    /// <summary>
    /// <see cref="Int8PoolReference.MaxPool2x2"/> in two vector passes, so that short rows (a 14-wide output) still
    /// fill whole vectors: (1) per output row, the byte-wise max of input rows 2oh and 2oh + 1 over their first
    /// 2·ow bytes into a scratch where those rows lie back to back; (2) over the whole scratch, each 16-bit lane's
    /// two bytes (a horizontal pair, low byte first) reduced by max(v &amp; 0xFF, v &gt;&gt; 8) and narrowed back to
    /// bytes. Tails reuse an overlapping last vector (max is idempotent, so rewriting equal bytes is harmless).
    /// Signed bytes are flipped to unsigned order (xor 0x80) and back.
    /// </summary>
    public static void MaxPool2x2(ReadOnlySpan<byte> x, int planes, int ih, int iw, Span<byte> y, int oh, int ow, bool signed)
    {
        Int8PoolReference.Check(x.Length, planes, ih, iw, y.Length, oh, ow);
        int rowOut = 2 * ow, outputs = planes * oh * ow;
        if (outputs == 0) return;
        if (!Vector128.IsHardwareAccelerated)
        {
            Int8PoolReference.MaxPool2x2(x, planes, ih, iw, y, oh, ow, signed);
            return;
        }
        byte flip = (byte)(signed ? 0x80 : 0);
        var f128 = Vector128.Create(flip);
        // 16 bytes of slack: short rows are stored as whole 16-byte vectors whose excess the next row overwrites.
        var scratch = ArrayPool<byte>.Shared.Rent(2 * outputs + 16);
        try
        {
            var s = scratch.AsSpan(0, 2 * outputs);
            var sFull = scratch.AsSpan();
            int at = 0;
            for (int p = 0; p < planes; p++)
            {
                var src = x.Slice(p * ih * iw);
                for (int r = 0; r < oh; r++, at += rowOut)
                {
                    if (rowOut < 16)
                    {
                        // Short rows: one 16-byte max from each row start when the read stays inside x (the extra
                        // bytes land past this row in the scratch and are overwritten or ignored), else bytes.
                        int o0 = 2 * r * iw, o1 = (2 * r + 1) * iw;
                        if (o1 + 16 <= src.Length)
                            (Vector128.Max(Vector128.Create(src.Slice(o0, 16)) ^ f128, Vector128.Create(src.Slice(o1, 16)) ^ f128)).CopyTo(sFull.Slice(at, 16));
                        else
                            for (int c = 0; c < rowOut; c++) s[at + c] = (byte)Math.Max(src[o0 + c] ^ flip, src[o1 + c] ^ flip);
                        continue;
                    }
                    var r0 = src.Slice(2 * r * iw, rowOut);
                    var r1 = src.Slice((2 * r + 1) * iw, rowOut);
                    var d = s.Slice(at, rowOut);
                    for (int c = 0; ; c += 16)
                    {
                        if (c > rowOut - 16) c = rowOut - 16;
                        (Vector128.Max(Vector128.Create(r0.Slice(c, 16)) ^ f128, Vector128.Create(r1.Slice(c, 16)) ^ f128)).CopyTo(d.Slice(c, 16));
                        if (c == rowOut - 16) break;
                    }
                }
            }
            int i = 0;
            if (Vector256.IsHardwareAccelerated && outputs >= 32)
            {
                var f256 = Vector256.Create(flip);
                var low = Vector256.Create((ushort)0xFF);
                for (; ; i += 32)
                {
                    if (i > outputs - 32) i = outputs - 32;
                    var a = Vector256.Create(s.Slice(2 * i, 32)).AsUInt16();
                    var b = Vector256.Create(s.Slice(2 * i + 32, 32)).AsUInt16();
                    var ma = Vector256.Max(a & low, Vector256.ShiftRightLogical(a, 8));
                    var mb = Vector256.Max(b & low, Vector256.ShiftRightLogical(b, 8));
                    (Vector256.Narrow(ma, mb) ^ f256).CopyTo(y.Slice(i, 32));
                    if (i == outputs - 32) return;
                }
            }
            var low128 = Vector128.Create((ushort)0xFF);
            for (; i <= outputs - 16; i += 16)
            {
                var a = Vector128.Create(s.Slice(2 * i, 16)).AsUInt16();
                var b = Vector128.Create(s.Slice(2 * i + 16, 16)).AsUInt16();
                (Vector128.Narrow(Vector128.Max(a & low128, Vector128.ShiftRightLogical(a, 8)), Vector128.Max(b & low128, Vector128.ShiftRightLogical(b, 8))) ^ f128)
                    .CopyTo(y.Slice(i, 16));
            }
            for (; i < outputs; i++) y[i] = (byte)(Math.Max(s[2 * i], s[2 * i + 1]) ^ flip);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }
}
