using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>
/// Depthwise-convolution helpers on int32 planes; results equal <see cref="IntTapsReference"/> exactly (int32
/// products and sums wrap identically in any order).
/// </summary>
public static unsafe class IntTaps
{
    /// <summary>
    /// <see cref="IntTapsReference.Accumulate"/> with the sum of all taps held in a register: per 16 (or 8) outputs,
    /// one load, multiply and add per tap and a single store, instead of one read-modify-write pass per tap.
    /// </summary>
    public static void Accumulate(ReadOnlySpan<int> src, ReadOnlySpan<int> starts, ReadOnlySpan<int> weights, int length, Span<int> acc)
    {
        int taps = starts.Length;
        if (weights.Length != taps || length < 0 || acc.Length < length) throw new QuantSharpException("int taps: bad arguments");
        if (length == 0) return;
        for (int t = 0; t < taps; t++)
            if (starts[t] < 0 || (long)starts[t] + length > src.Length) throw new QuantSharpException($"int taps: tap {t} reads past the source");
        int i = 0;
        fixed (int* ps = src) fixed (int* pst = starts) fixed (int* pw = weights) fixed (int* pa = acc)
        {
            if (Vector512.IsHardwareAccelerated)
                for (; i <= length - 16; i += 16)
                {
                    var s = Vector512<int>.Zero;
                    for (int t = 0; t < taps; t++) s += Vector512.Load(ps + pst[t] + i) * Vector512.Create(pw[t]);
                    s.Store(pa + i);
                }
            if (Vector256.IsHardwareAccelerated)
                for (; i <= length - 8; i += 8)
                {
                    var s = Vector256<int>.Zero;
                    for (int t = 0; t < taps; t++) s += Vector256.Load(ps + pst[t] + i) * Vector256.Create(pw[t]);
                    s.Store(pa + i);
                }
            for (; i < length; i++)
            {
                int s = 0;
                for (int t = 0; t < taps; t++) s = unchecked(s + pw[t] * ps[pst[t] + i]);
                pa[i] = s;
            }
        }
    }

    /// <summary><see cref="IntTapsReference.WidenSubtract"/>, 8 bytes at a time by vpmovzxbd / vpmovsxbd.</summary>
    public static void WidenSubtract(ReadOnlySpan<byte> x, bool signed, int zero, Span<int> dst)
    {
        if (dst.Length < x.Length) throw new QuantSharpException("widen: destination too short");
        int i = 0;
        fixed (byte* px = x) fixed (int* pd = dst)
        {
            if (Avx2.IsSupported)
            {
                var z = Vector256.Create(zero);
                if (signed)
                    for (; i <= x.Length - 8; i += 8) (Avx2.ConvertToVector256Int32((sbyte*)px + i) - z).Store(pd + i);
                else
                    for (; i <= x.Length - 8; i += 8) (Avx2.ConvertToVector256Int32(px + i) - z).Store(pd + i);
            }
            for (; i < x.Length; i++) pd[i] = (signed ? (sbyte)px[i] : px[i]) - zero;
        }
    }
}
