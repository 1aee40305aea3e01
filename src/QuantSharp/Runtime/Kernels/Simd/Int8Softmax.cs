using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>One row of the quantized Softmax, equal to <see cref="Int8SoftmaxReference.Row"/> byte for byte.</summary>
public static class Int8Softmax
{
    /// <summary>
    /// The reference's row with its first and last passes vectorised: the row maximum of the (flipped) bytes 16 at a
    /// time, and the output 16 lanes at a time (the same float product, round half to even, clamp while float, which
    /// equals clamping the integer because the rounded value is an integer, then + yz). The exponentials are looked
    /// up once into <paramref name="scratch"/> and summed one by one in index order, as the reference sums them.
    /// </summary>
    public static void Row(ReadOnlySpan<byte> x, byte flip, ReadOnlySpan<float> exp, float ys, int yz, int lo, int hi, Span<byte> y, Span<float> scratch)
    {
        int n = x.Length;
        if (y.Length < n || scratch.Length < n || exp.Length != 256) throw new QuantSharpException("int8 softmax: buffer sizes do not match the row");
        int j = 0, m = 0;
        if (Vector128.IsHardwareAccelerated && n >= 16)
        {
            var vf = Vector128.Create(flip);
            var vm = Vector128<byte>.Zero;
            for (; j <= n - 16; j += 16) vm = Vector128.Max(vm, Vector128.Create(x.Slice(j, 16)) ^ vf);
            if (Sse2.IsSupported)
            {
                // Horizontal maximum by halving: lanes shifted in are zero, which never exceeds a byte.
                vm = Vector128.Max(vm, Sse2.ShiftRightLogical128BitLane(vm, 8));
                vm = Vector128.Max(vm, Sse2.ShiftRightLogical128BitLane(vm, 4));
                vm = Vector128.Max(vm, Sse2.ShiftRightLogical128BitLane(vm, 2));
                vm = Vector128.Max(vm, Sse2.ShiftRightLogical128BitLane(vm, 1));
                m = vm.ToScalar();
            }
            else for (int l = 0; l < 16; l++) m = Math.Max(m, vm.GetElement(l));
        }
        for (; j < n; j++) m = Math.Max(m, x[j] ^ flip);
        float sum = 0;
        for (j = 0; j < n; j++)
        {
            float e = exp[m - (x[j] ^ flip)];
            scratch[j] = e;
            sum += e;
        }
        float inv = 1f / (sum * ys);
        j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vi = Vector512.Create(inv);
            var fLo = Vector512.Create((float)(lo - yz));
            var fHi = Vector512.Create((float)(hi - yz));
            var vz = Vector512.Create(yz);
            for (; j <= n - 16; j += 16)
            {
                var r = Vector512.Round(Vector512.Create<float>(scratch.Slice(j, 16)) * vi);
                if (Avx512F.IsSupported)
                {
                    // r is a finite integer here, so vmaxps/vminps, vcvtps2dq and the truncating vpmovdb (the code's
                    // low byte, as the portable narrowing gives) are exact; the portable forms add NaN/overflow fix-ups.
                    var qi = Avx512F.Add(Avx512F.ConvertToVector512Int32(Avx512F.Min(Avx512F.Max(r, fLo), fHi)), vz);
                    Avx512F.ConvertToVector128Byte(qi).CopyTo(y.Slice(j, 16));
                    continue;
                }
                var q = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(r, fLo), fHi)) + vz;
                var n16 = Vector256.Narrow(q.GetLower(), q.GetUpper());
                Vector128.Narrow(n16.GetLower(), n16.GetUpper()).AsByte().CopyTo(y.Slice(j, 16));
            }
        }
        for (; j < n; j++) y[j] = (byte)Math.Clamp((int)MathF.Round(scratch[j] * inv) + yz, lo, hi);
    }
}
