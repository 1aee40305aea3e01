namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar references for the depthwise helpers in <see cref="Simd.IntTaps"/>.</summary>
public static class IntTapsReference
{
    /// <summary>acc[i] = Σ_t weights[t] · src[starts[t] + i] for i in [0, length), wrapping int32.</summary>
    public static void Accumulate(ReadOnlySpan<int> src, ReadOnlySpan<int> starts, ReadOnlySpan<int> weights, int length, Span<int> acc)
    {
        for (int i = 0; i < length; i++)
        {
            int s = 0;
            for (int t = 0; t < starts.Length; t++) s = unchecked(s + weights[t] * src[starts[t] + i]);
            acc[i] = s;
        }
    }

    /// <summary>dst[i] = x[i] − zero, x read as u8, or as s8 when <paramref name="signed"/>.</summary>
    public static void WidenSubtract(ReadOnlySpan<byte> x, bool signed, int zero, Span<int> dst)
    {
        for (int i = 0; i < x.Length; i++) dst[i] = (signed ? (sbyte)x[i] : x[i]) - zero;
    }

    /// <summary>even[j] = x[2j] − zero, odd[j] = x[2j + 1] − zero (u8, or s8 when <paramref name="signed"/>).</summary>
    public static void WidenSubtractDeinterleave(ReadOnlySpan<byte> x, bool signed, int zero, Span<int> even, Span<int> odd)
    {
        for (int i = 0; i < x.Length; i++)
        {
            int v = (signed ? (sbyte)x[i] : x[i]) - zero;
            if ((i & 1) == 0) even[i >> 1] = v;
            else odd[i >> 1] = v;
        }
    }
}
