using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Quantization.Math;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// Maps an int32 accumulator Σ (x − zx)(w − zw[c]) of output channel c to the output's quantized value, with the
/// activation (Relu / Clip) folded into the clamp range. Float mode: y = sat(round(acc · M[c] + B[c]) + zy) with
/// M[c] = s_x·s_w[c] / s_y and B[c] = bias[c] / s_y. Fixed-point mode: M[c] = q31 · 2^−s, bias in accumulator units.
/// </summary>
internal sealed class Requantizer
{
    private readonly float[] _multiplier;
    private readonly float[] _offset;
    private readonly long[] _q31;
    private readonly int[] _shift;
    private readonly int[] _biasAcc;
    private readonly bool _fixed;

    public int ZeroPoint { get; }
    public int Min { get; }
    public int Max { get; }

    /// <param name="accScale">s_x · s_w[c] per channel (length 1 or channels).</param>
    /// <param name="bias">float bias per channel, or null.</param>
    public Requantizer(int channels, ReadOnlySpan<float> accScale, float[]? bias, float yScale, int yZero, int qmin, int qmax, RequantizationMode mode)
    {
        ZeroPoint = yZero;
        Min = qmin;
        Max = qmax;
        _fixed = mode == RequantizationMode.FixedPoint;
        _multiplier = new float[channels];
        _offset = new float[channels];
        _q31 = new long[channels];
        _shift = new int[channels];
        _biasAcc = new int[channels];
        for (int c = 0; c < channels; c++)
        {
            double s = accScale[accScale.Length == 1 ? 0 : c];
            double b = bias is null ? 0 : bias[bias.Length == 1 ? 0 : c];
            _multiplier[c] = (float)(s / yScale);
            _offset[c] = (float)(b / yScale);
            (_q31[c], _shift[c]) = Normalise(s / yScale);
            _biasAcc[c] = s == 0 ? 0 : QuantMath.RoundToInt32(b / s);
        }
        if (!_fixed) Channel = new Kernels.Simd.Int8ChannelRequantization(_multiplier, _offset, yZero, qmin, qmax);
    }

    /// <summary>The float-mode parameters for kernels that requantize in their epilogue (null in fixed-point mode).</summary>
    public Kernels.Simd.Int8ChannelRequantization? Channel { get; }

    /// <summary>m = q31 · 2^−shift with q31 in [2^30, 2^31) (m normalised to [0.5, 1) times 2^31); shift kept in [1, 62].</summary>
    private static (long Q31, int Shift) Normalise(double m)
    {
        if (m <= 0 || !double.IsFinite(m)) return (0, 31);
        int e = (int)Math.Floor(Math.Log2(m)) + 1; // m = f · 2^e, f in [0.5, 1)
        double f = m / Math.Pow(2, e);
        long q = (long)Math.Round(f * (1L << 31));
        if (q == 1L << 31) { q >>= 1; e++; }
        int shift = 31 - e;
        while (shift > 62) { q >>= 1; shift--; }
        while (shift < 1) { shift++; q >>= 1; }
        return (q, shift);
    }

    public int Apply(int acc, int c)
    {
        int v;
        if (_fixed)
        {
            long p = ((long)acc + _biasAcc[c]) * _q31[c];
            v = (int)Math.Clamp((p + (1L << (_shift[c] - 1))) >> _shift[c], int.MinValue / 2, int.MaxValue / 2) + ZeroPoint;
        }
        else
        {
            float r = MathF.Round(acc * _multiplier[c] + _offset[c], MidpointRounding.ToEven);
            v = r <= Min - ZeroPoint ? Min : r >= Max - ZeroPoint ? Max : (int)r + ZeroPoint;
        }
        return v < Min ? Min : v > Max ? Max : v;
    }

    /// <summary>
    /// Requantizes a row in place: acc[j] of channel c0 + j becomes its output value (the same formula as
    /// <see cref="Apply"/>; float mode eight lanes at a time: convert, multiply-add, round half to even, add the
    /// zero point, clamp).
    /// </summary>
    public void ApplyRow(Span<int> acc, int c0)
    {
        int j = 0;
        if (!_fixed && Vector256.IsHardwareAccelerated)
        {
            var zp = Vector256.Create(ZeroPoint);
            var lo = Vector256.Create(Min);
            var hi = Vector256.Create(Max);
            var fLo = Vector256.Create((float)(Min - ZeroPoint) - 1f);
            var fHi = Vector256.Create((float)(Max - ZeroPoint) + 1f);
            for (; j <= acc.Length - 8; j += 8)
            {
                var a = Vector256.ConvertToSingle(Vector256.Create<int>(acc.Slice(j, 8)));
                var r = Vector256.Round(a * Vector256.Create<float>(_multiplier.AsSpan(c0 + j, 8)) + Vector256.Create<float>(_offset.AsSpan(c0 + j, 8)));
                r = Vector256.Min(Vector256.Max(r, fLo), fHi);
                var q = Vector256.Min(Vector256.Max(Vector256.ConvertToInt32(r) + zp, lo), hi);
                q.CopyTo(acc.Slice(j, 8));
            }
        }
        for (; j < acc.Length; j++) acc[j] = Apply(acc[j], c0 + j);
    }

    /// <summary>Requantizes acc values of one channel c in place.</summary>
    public void ApplyChannel(Span<int> acc, int c)
    {
        int j = 0;
        if (_fixed && Avx512F.IsSupported && Avx512DQ.IsSupported)
        {
            // Fixed point eight lanes at a time, the scalar formula in 64-bit lanes: ((acc + bias)·q31 + 2^(s−1)) >> s
            // (wrapping multiply, arithmetic shift), clamped to [int.MinValue/2, int.MaxValue/2], narrowed, + zp, clamped.
            var bias = Vector512.Create((long)_biasAcc[c]);
            var q = Vector512.Create(_q31[c]);
            var round = Vector512.Create(1L << (_shift[c] - 1));
            int sh = _shift[c];
            var lo64 = Vector512.Create((long)(int.MinValue / 2));
            var hi64 = Vector512.Create((long)(int.MaxValue / 2));
            var zp = Vector256.Create(ZeroPoint);
            var qLo = Vector256.Create(Min);
            var qHi = Vector256.Create(Max);
            for (; j <= acc.Length - 8; j += 8)
            {
                var a = Avx512F.ConvertToVector512Int64(Vector256.Create<int>(acc.Slice(j, 8)));
                var p = Vector512.ShiftRightArithmetic(Avx512DQ.MultiplyLow(a + bias, q) + round, sh);
                var v = Avx512F.ConvertToVector256Int32(Vector512.Min(Vector512.Max(p, lo64), hi64)) + zp;
                Vector256.Min(Vector256.Max(v, qLo), qHi).CopyTo(acc.Slice(j, 8));
            }
        }
        if (!_fixed && Vector256.IsHardwareAccelerated)
        {
            // The same lane arithmetic as ApplyRow with the channel's multiplier and offset broadcast.
            var zp = Vector256.Create(ZeroPoint);
            var lo = Vector256.Create(Min);
            var hi = Vector256.Create(Max);
            var fLo = Vector256.Create((float)(Min - ZeroPoint) - 1f);
            var fHi = Vector256.Create((float)(Max - ZeroPoint) + 1f);
            var mul = Vector256.Create(_multiplier[c]);
            var off = Vector256.Create(_offset[c]);
            for (; j <= acc.Length - 8; j += 8)
            {
                var a = Vector256.ConvertToSingle(Vector256.Create<int>(acc.Slice(j, 8)));
                var r = Vector256.Min(Vector256.Max(Vector256.Round(a * mul + off), fLo), fHi);
                var q = Vector256.Min(Vector256.Max(Vector256.ConvertToInt32(r) + zp, lo), hi);
                q.CopyTo(acc.Slice(j, 8));
            }
        }
        for (; j < acc.Length; j++) acc[j] = Apply(acc[j], c);
    }
}
