using System.Buffers.Binary;

namespace QuantSharp.Llm.Gguf;

/// <summary>
/// Reference packers and unpackers for the ggml block layouts GGUF export uses. Blocks run along ne[0] (a row);
/// fp16 fields are IEEE binary16 little-endian (System.Half rounds to nearest even, as F16C hardware does).
/// <list type="bullet">
/// <item>Q8_0 (34 bytes / 32 weights): fp16 d, int8 q[32]; value = q·d with d = max|x|/127, q = round(x/d).</item>
/// <item>Q4_0 (18 bytes / 32): fp16 d, byte j = q[j] | q[j+16]&lt;&lt;4; value = (q−8)·d with d = m/−8 where m is the
/// element of largest magnitude (sign kept), q = min(15, trunc(x/d + 8.5)).</item>
/// <item>Q4_1 (20 bytes / 32): fp16 d, fp16 m, nibbles as Q4_0; value = q·d + m with m = min, d = (max−min)/15,
/// q = min(15, trunc((x−m)/d + 0.5)).</item>
/// <item>Q4_K (144 bytes / 256): fp16 d, fp16 dmin, 12 bytes of eight 6-bit sub-block scales sc and mins m, 128 nibble
/// bytes; sub-block s (32 weights) has value = d·sc[s]·q − dmin·m[s]. Scale bytes: for s &lt; 4, byte s = sc[s] | (sc[s+4]≫4)≪6
/// and byte s+4 = m[s] | (m[s+4]≫4)≪6; for s ≥ 4, byte s+4 = (sc[s] &amp; 15) | (m[s] &amp; 15)≪4. Nibble byte 32c+l holds
/// element 64c+l (low) and 64c+32+l (high).</item>
/// </list>
/// </summary>
public static class GgmlBlocks
{
    public const int QK = 32;

    /// <summary>Types <see cref="Quantize"/> writes.</summary>
    public static bool CanQuantize(GgmlType t) => t is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q4_K;

    /// <summary>Types <see cref="Dequantize"/> reads.</summary>
    public static bool CanDequantize(GgmlType t) => CanQuantize(t);

    /// <summary>Packs row-major values (rows of <paramref name="rowLength"/>) into <paramref name="type"/>.</summary>
    public static byte[] Quantize(GgmlType type, ReadOnlySpan<float> values, long rowLength)
    {
        if (!CanQuantize(type)) throw new QuantSharpException($"writing {type} tensors is not supported (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k)");
        if (rowLength <= 0 || values.Length % rowLength != 0) throw new QuantSharpException($"{values.Length} values are not whole rows of {rowLength}");
        long rowBytes = GgmlTypes.RowBytes(type, rowLength);
        var dst = new byte[checked(values.Length / rowLength * rowBytes)];
        int bs = GgmlTypes.BlockSize(type), ts = GgmlTypes.TypeSize(type);
        int blocks = values.Length / bs;
        for (int b = 0; b < blocks; b++)
        {
            var x = values.Slice(b * bs, bs);
            var o = dst.AsSpan(b * ts, ts);
            switch (type)
            {
                case GgmlType.F32: BinaryPrimitives.WriteSingleLittleEndian(o, x[0]); break;
                case GgmlType.F16: BinaryPrimitives.WriteHalfLittleEndian(o, (Half)x[0]); break;
                case GgmlType.BF16: BinaryPrimitives.WriteUInt16LittleEndian(o, ToBf16(x[0])); break;
                case GgmlType.Q8_0: PackQ8_0(x, o); break;
                case GgmlType.Q4_0: PackQ4_0(x, o); break;
                case GgmlType.Q4_K: PackQ4_K(x, o); break;
                default: PackQ4_1(x, o); break;
            }
        }
        return dst;
    }

    /// <summary>Unpacks <paramref name="data"/> of <paramref name="type"/> into FP32; sizes must agree exactly.</summary>
    public static void Dequantize(GgmlType type, ReadOnlySpan<byte> data, Span<float> destination)
    {
        if (!CanDequantize(type)) throw new QuantSharpException($"reading {type} tensors is not supported (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k)");
        int bs = GgmlTypes.BlockSize(type), ts = GgmlTypes.TypeSize(type);
        if (destination.Length % bs != 0 || (long)destination.Length / bs * ts != data.Length)
            throw new QuantSharpException($"{data.Length} bytes of {type} do not hold {destination.Length} values");
        int blocks = destination.Length / bs;
        for (int b = 0; b < blocks; b++)
        {
            var i = data.Slice(b * ts, ts);
            var y = destination.Slice(b * bs, bs);
            switch (type)
            {
                case GgmlType.F32: y[0] = BinaryPrimitives.ReadSingleLittleEndian(i); break;
                case GgmlType.F16: y[0] = (float)BinaryPrimitives.ReadHalfLittleEndian(i); break;
                case GgmlType.BF16: y[0] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(i) << 16); break;
                case GgmlType.Q8_0:
                    {
                        float d = (float)BinaryPrimitives.ReadHalfLittleEndian(i);
                        for (int j = 0; j < QK; j++) y[j] = (sbyte)i[2 + j] * d;
                        break;
                    }
                case GgmlType.Q4_0:
                    {
                        float d = (float)BinaryPrimitives.ReadHalfLittleEndian(i);
                        for (int j = 0; j < QK / 2; j++)
                        {
                            y[j] = ((i[2 + j] & 0xF) - 8) * d;
                            y[j + QK / 2] = ((i[2 + j] >> 4) - 8) * d;
                        }
                        break;
                    }
                case GgmlType.Q4_K: UnpackQ4_K(i, y); break;
                default:
                    {
                        float d = (float)BinaryPrimitives.ReadHalfLittleEndian(i);
                        float m = (float)BinaryPrimitives.ReadHalfLittleEndian(i[2..]);
                        for (int j = 0; j < QK / 2; j++)
                        {
                            y[j] = (i[4 + j] & 0xF) * d + m;
                            y[j + QK / 2] = (i[4 + j] >> 4) * d + m;
                        }
                        break;
                    }
            }
        }
    }

    // BF16 = the upper 16 bits of the FP32 pattern, rounded to nearest even; NaN stays a (quiet) NaN.
    private static ushort ToBf16(float x)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        if (float.IsNaN(x)) return (ushort)((u >> 16) | 0x40);
        return (ushort)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
    }

    private static void PackQ8_0(ReadOnlySpan<float> x, Span<byte> o)
    {
        float amax = 0;
        foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(o, (Half)d);
        // round() of C: halves away from zero; |x·id| ≤ 127 so no clamp is needed.
        for (int j = 0; j < QK; j++) o[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    private static void PackQ4_0(ReadOnlySpan<float> x, Span<byte> o)
    {
        float amax = 0, max = 0;
        foreach (float v in x)
            if (MathF.Abs(v) > amax) { amax = MathF.Abs(v); max = v; }
        // d = max/−8 maps the largest-magnitude element exactly onto level 0 (or 16 → clamped to 15 for the opposite sign).
        float d = max / -8f;
        float id = d != 0 ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(o, (Half)d);
        for (int j = 0; j < QK / 2; j++)
        {
            int q0 = Math.Min(15, (int)(x[j] * id + 8.5f));
            int q1 = Math.Min(15, (int)(x[j + QK / 2] * id + 8.5f));
            o[2 + j] = (byte)(q0 | q1 << 4);
        }
    }

    private static void PackQ4_1(ReadOnlySpan<float> x, Span<byte> o)
    {
        float min = float.MaxValue, max = -float.MaxValue;
        foreach (float v in x)
        {
            min = MathF.Min(min, v);
            max = MathF.Max(max, v);
        }
        float d = (max - min) / 15f;
        float id = d != 0 ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(o, (Half)d);
        BinaryPrimitives.WriteHalfLittleEndian(o[2..], (Half)min);
        for (int j = 0; j < QK / 2; j++)
        {
            int q0 = Math.Min(15, (int)((x[j] - min) * id + 0.5f));
            int q1 = Math.Min(15, (int)((x[j + QK / 2] - min) * id + 0.5f));
            o[4 + j] = (byte)(q0 | q1 << 4);
        }
    }

    /// <summary>6-bit scale and min of sub-block <paramref name="s"/> from Q4_K's 12 packed bytes.</summary>
    public static (int Scale, int Min) Q4KScaleMin(ReadOnlySpan<byte> scales, int s) => s < 4
        ? (scales[s] & 63, scales[s + 4] & 63)
        : ((scales[s + 4] & 0xF) | (scales[s - 4] >> 6) << 4, (scales[s + 4] >> 4) | (scales[s] >> 6) << 4);

    internal static void UnpackQ4_K(ReadOnlySpan<byte> b, Span<float> y)
    {
        float d = (float)BinaryPrimitives.ReadHalfLittleEndian(b);
        float dmin = (float)BinaryPrimitives.ReadHalfLittleEndian(b[2..]);
        var scales = b.Slice(4, 12);
        var qs = b.Slice(16, 128);
        for (int s = 0; s < 8; s++)
        {
            var (sc, m) = Q4KScaleMin(scales, s);
            float scale = d * sc, min = dmin * m;
            int c = s / 2, shift = (s & 1) * 4;
            for (int l = 0; l < 32; l++) y[s * 32 + l] = scale * ((qs[32 * c + l] >> shift) & 0xF) - min;
        }
    }

    // Round-to-nearest Q4_K: each 32-weight sub-block gets the affine grid [min(0, x_min), x_max] with 15 steps; the
    // sub-block steps and (non-negative) offsets are then themselves quantized to 6 bits against the fp16 super-scales
    // d = max step/63 and dmin = max offset/63, and the weights rounded against the grid actually stored.
    internal static void PackQ4_K(ReadOnlySpan<float> x, Span<byte> o)
    {
        Span<float> step = stackalloc float[8], off = stackalloc float[8];
        for (int s = 0; s < 8; s++)
        {
            float mn = 0, mx = 0;
            for (int l = 0; l < 32; l++)
            {
                mn = MathF.Min(mn, x[s * 32 + l]);
                mx = MathF.Max(mx, x[s * 32 + l]);
            }
            step[s] = (mx - mn) / 15f;
            off[s] = -mn;
        }
        float maxStep = 0, maxOff = 0;
        for (int s = 0; s < 8; s++)
        {
            maxStep = MathF.Max(maxStep, step[s]);
            maxOff = MathF.Max(maxOff, off[s]);
        }
        float d = (float)(Half)(maxStep / 63f), dmin = (float)(Half)(maxOff / 63f);
        BinaryPrimitives.WriteHalfLittleEndian(o, (Half)d);
        BinaryPrimitives.WriteHalfLittleEndian(o[2..], (Half)dmin);
        Span<int> sc = stackalloc int[8], m = stackalloc int[8];
        for (int s = 0; s < 8; s++)
        {
            sc[s] = d > 0 ? Math.Clamp((int)MathF.Round(step[s] / d, MidpointRounding.AwayFromZero), 0, 63) : 0;
            m[s] = dmin > 0 ? Math.Clamp((int)MathF.Round(off[s] / dmin, MidpointRounding.AwayFromZero), 0, 63) : 0;
        }
        var scales = o.Slice(4, 12);
        for (int s = 0; s < 4; s++)
        {
            scales[s] = (byte)(sc[s] | (sc[s + 4] >> 4) << 6);
            scales[s + 4] = (byte)(m[s] | (m[s + 4] >> 4) << 6);
            scales[s + 8] = (byte)((sc[s + 4] & 0xF) | (m[s + 4] & 0xF) << 4);
        }
        var qs = o.Slice(16, 128);
        qs.Clear();
        for (int s = 0; s < 8; s++)
        {
            float scale = d * sc[s], min = dmin * m[s];
            float inv = scale > 0 ? 1f / scale : 0f;
            int c = s / 2, shift = (s & 1) * 4;
            for (int l = 0; l < 32; l++)
            {
                int q = Math.Clamp((int)MathF.Round((x[s * 32 + l] + min) * inv, MidpointRounding.AwayFromZero), 0, 15);
                qs[32 * c + l] |= (byte)(q << shift);
            }
        }
    }
}
