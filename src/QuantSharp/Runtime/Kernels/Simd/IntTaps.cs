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
            if (Vector512.IsHardwareAccelerated && length >= 16)
            {
                // The last vector overlaps the previous one instead of a scalar tail: every output depends only on the
                // sources, so writing it twice stores the same value (acc must not overlap src).
                for (; ; i += 16)
                {
                    if (i > length - 16) i = length - 16;
                    var s = Vector512<int>.Zero;
                    for (int t = 0; t < taps; t++) s += Vector512.Load(ps + pst[t] + i) * Vector512.Create(pw[t]);
                    s.Store(pa + i);
                    if (i == length - 16) return;
                }
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
                // The last 8 overlap the previous ones (same values rewritten) instead of a scalar tail.
                if (x.Length >= 8)
                    for (; ; i += 8)
                    {
                        if (i > x.Length - 8) i = x.Length - 8;
                        var v = signed ? Avx2.ConvertToVector256Int32((sbyte*)px + i) : Avx2.ConvertToVector256Int32(px + i);
                        (v - z).Store(pd + i);
                        if (i == x.Length - 8) return;
                    }
            }
            for (; i < x.Length; i++) pd[i] = (signed ? (sbyte)px[i] : px[i]) - zero;
        }
    }

    /// <summary>
    /// <see cref="IntTapsReference.WidenSubtractDeinterleave"/>, 16 bytes at a time: as 16-bit lanes the even byte is
    /// the low half and the odd byte the high half (extracted with a mask / shift, or for s8 with arithmetic shifts
    /// that sign-extend), each widened to int32 (vpmovzxwd / vpmovsxwd) and z subtracted.
    /// </summary>
    public static void WidenSubtractDeinterleave(ReadOnlySpan<byte> x, bool signed, int zero, Span<int> even, Span<int> odd)
    {
        if (even.Length < (x.Length + 1) / 2 || odd.Length < x.Length / 2) throw new QuantSharpException("deinterleave: destination too short");
        int i = 0;
        fixed (byte* px = x) fixed (int* pe = even) fixed (int* po = odd)
        {
            if (Avx2.IsSupported)
            {
                var z = Vector256.Create(zero);
                // The last block starts at an even offset and may overlap the previous one (same values rewritten);
                // at most one odd trailing byte is left to the scalar loop.
                int lastStart = (x.Length - 16) & ~1;
                for (; x.Length >= 16; i += 16)
                {
                    if (i > lastStart) i = lastStart;
                    var v = Vector128.Load((short*)(px + i));
                    Vector128<short> e, o;
                    if (signed)
                    {
                        e = Vector128.ShiftRightArithmetic(Vector128.ShiftLeft(v, 8), 8);
                        o = Vector128.ShiftRightArithmetic(v, 8);
                    }
                    else
                    {
                        e = v & Vector128.Create((short)0xFF);
                        o = Vector128.ShiftRightLogical(v, 8);
                    }
                    (Avx2.ConvertToVector256Int32(e) - z).Store(pe + i / 2);
                    (Avx2.ConvertToVector256Int32(o) - z).Store(po + i / 2);
                    if (i == lastStart)
                    {
                        i += 16;
                        break;
                    }
                }
            }
            for (; i < x.Length; i++)
            {
                int v = (signed ? (sbyte)px[i] : px[i]) - zero;
                if ((i & 1) == 0) pe[i >> 1] = v;
                else po[i >> 1] = v;
            }
        }
    }
}
