using System.Runtime.InteropServices;
using QuantSharp.Llm.Gguf;

namespace QuantSharp.Llm.Formats;

/// <summary>
/// Q4_K with llama.cpp's super-block layout (144 bytes / 256 weights = 4.5 bits per weight): fp16 d, fp16 dmin,
/// 12 bytes holding eight 6-bit sub-block scales sc[s] and mins m[s], 128 nibble bytes. Weight i of sub-block
/// s = i/32 has value d·sc[s]·q − dmin·m[s]; its nibble is in byte 32·(s/2) + i%32, low nibble for even s, high for odd.
/// The reference quantizer is <see cref="GgmlBlocks"/>' round-to-nearest Q4_K (the bytes are identical to a GGUF Q4_K
/// block). A partial super-block (rows shorter than, or not a multiple of, 256) is quantized with zeros in the missing
/// slots; its full 144 bytes are counted, so a 64-wide row costs 18 bits per weight.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public unsafe struct BlockQ4_K : IWeightBlock<BlockQ4_K>
{
    public Half D;
    public Half DMin;
    public fixed byte Scales[12];
    public fixed byte Qs[128];

    public static int Count => 256;
    public static string TypeName => "q4_k";

    public static BlockQ4_K Quantize(ReadOnlySpan<float> v)
    {
        Span<float> padded = stackalloc float[256];
        padded.Clear();
        v.CopyTo(padded);
        var b = new BlockQ4_K();
        GgmlBlocks.PackQ4_K(padded, MemoryMarshal.AsBytes(new Span<BlockQ4_K>(ref b)));
        return b;
    }

    public static void Dequantize(in BlockQ4_K b, Span<float> dst)
    {
        var copy = b;
        GgmlBlocks.UnpackQ4_K(MemoryMarshal.AsBytes(new ReadOnlySpan<BlockQ4_K>(ref copy)), dst);
    }

    /// <summary>Re-rounds slot <paramref name="i"/> to <paramref name="x"/> on its sub-block's stored grid; returns the stored value.</summary>
    public static float SetCode(ref BlockQ4_K b, int i, float x)
    {
        int s = i / 32, l = i % 32, c = s / 2, shift = (s & 1) * 4;
        var scales = MemoryMarshal.AsBytes(new Span<BlockQ4_K>(ref b)).Slice(4, 12);
        var (sc, m) = GgmlBlocks.Q4KScaleMin(scales, s);
        float scale = (float)b.D * sc, min = (float)b.DMin * m;
        float inv = scale > 0 ? 1f / scale : 0f;
        int q = Math.Clamp((int)MathF.Round((x + min) * inv, MidpointRounding.AwayFromZero), 0, 15);
        int at = 32 * c + l;
        b.Qs[at] = (byte)((b.Qs[at] & ~(0xF << shift)) | (q << shift));
        return scale * q - min;
    }
}
