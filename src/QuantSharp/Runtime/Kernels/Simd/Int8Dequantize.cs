using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>Vectorised per-tensor DequantizeLinear of 8-bit codes, equal to <see cref="Int8DequantizeReference"/> bit for bit.</summary>
public static unsafe class Int8Dequantize
{
    /// <summary>
    /// y = (float)(x − z) · s: bytes widened to int32 (vpmovzxbd / vpmovsxbd, 16 lanes with AVX-512F, 8 with AVX2),
    /// z subtracted in int32, converted (exact, |x − z| ≤ 510) and multiplied once, as the reference does.
    /// </summary>
    public static void Dequantize(ReadOnlySpan<byte> x, bool signed, float s, int z, Span<float> y)
    {
        int n = y.Length;
        if (x.Length < n) throw new QuantSharpException("int8 dequantize: input shorter than the output");
        int i = 0;
        fixed (byte* px = x) fixed (float* py = y)
        {
            if (Avx512F.IsSupported)
            {
                var vs = Vector512.Create(s);
                var vz = Vector512.Create(z);
                for (; i <= n - 16; i += 16)
                {
                    var v = Vector128.Load(px + i);
                    var w = signed ? Avx512F.ConvertToVector512Int32(v.AsSByte()) : Avx512F.ConvertToVector512Int32(v);
                    (Vector512.ConvertToSingle(w - vz) * vs).Store(py + i);
                }
            }
            if (Avx2.IsSupported)
            {
                var vs = Vector256.Create(s);
                var vz = Vector256.Create(z);
                for (; i <= n - 8; i += 8)
                {
                    var w = signed ? Avx2.ConvertToVector256Int32((sbyte*)px + i) : Avx2.ConvertToVector256Int32(px + i);
                    (Vector256.ConvertToSingle(w - vz) * vs).Store(py + i);
                }
            }
        }
        if (i < n) Int8DequantizeReference.Dequantize(x[i..n], signed, s, z, y[i..]);
    }
}
