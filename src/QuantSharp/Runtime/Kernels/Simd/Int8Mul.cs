using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>Vectorised quantized same-shape Mul, equal to <see cref="Int8MulReference"/> byte for byte.</summary>
public static unsafe class Int8Mul
{
    /// <summary>
    /// <see cref="Int8MulReference.Mul(ReadOnlySpan{byte}, bool, ReadOnlySpan{byte}, bool, Span{byte}, float, int, int, int, int, int)"/>,
    /// 16 elements at a time with AVX-512F (8 with AVX2): bytes widened to int32 (vpmovzxbd / vpmovsxbd), zero points
    /// subtracted and multiplied in int32 (exact), converted, one float multiply, round half to even, + zy, clamped
    /// while float (the value is an integer, so this equals the reference's comparisons), truncated to bytes.
    /// </summary>
    public static void Mul(ReadOnlySpan<byte> a, bool aSigned, ReadOnlySpan<byte> b, bool bSigned, Span<byte> y,
        float m, int za, int zb, int zy, int min, int max)
    {
        int n = y.Length;
        if (a.Length < n || b.Length < n) throw new QuantSharpException("int8 mul: inputs shorter than the output");
        int i = 0;
        fixed (byte* pa = a) fixed (byte* pb = b) fixed (byte* py = y)
        {
            if (Avx512F.IsSupported)
            {
                var vm = Vector512.Create(m);
                var vza = Vector512.Create(za);
                var vzb = Vector512.Create(zb);
                var vzy = Vector512.Create((float)zy);
                var lo = Vector512.Create((float)min);
                var hi = Vector512.Create((float)max);
                for (; i <= n - 16; i += 16)
                {
                    var la = Vector128.Load(pa + i);
                    var lb = Vector128.Load(pb + i);
                    var xa = aSigned ? Avx512F.ConvertToVector512Int32(la.AsSByte()) : Avx512F.ConvertToVector512Int32(la);
                    var xb = bSigned ? Avx512F.ConvertToVector512Int32(lb.AsSByte()) : Avx512F.ConvertToVector512Int32(lb);
                    var p = Vector512.ConvertToSingle((xa - vza) * (xb - vzb));
                    var r = Vector512.Round(vm * p) + vzy;
                    var q = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(r, lo), hi));
                    Avx512F.ConvertToVector128Byte(q).Store(py + i);
                }
            }
            if (Avx2.IsSupported)
            {
                var vm = Vector256.Create(m);
                var vza = Vector256.Create(za);
                var vzb = Vector256.Create(zb);
                var vzy = Vector256.Create((float)zy);
                var lo = Vector256.Create((float)min);
                var hi = Vector256.Create((float)max);
                for (; i <= n - 8; i += 8)
                {
                    var xa = aSigned ? Avx2.ConvertToVector256Int32((sbyte*)pa + i) : Avx2.ConvertToVector256Int32(pa + i);
                    var xb = bSigned ? Avx2.ConvertToVector256Int32((sbyte*)pb + i) : Avx2.ConvertToVector256Int32(pb + i);
                    var p = Vector256.ConvertToSingle((xa - vza) * (xb - vzb));
                    var r = Vector256.Round(vm * p) + vzy;
                    var q = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(r, lo), hi));
                    var s = Vector128.Narrow(q.GetLower(), q.GetUpper());
                    *(ulong*)(py + i) = Vector128.Narrow(s, s).AsUInt64().ToScalar();
                }
            }
            for (; i < n; i++)
                py[i] = (byte)Int8MulReference.Mul(aSigned ? (sbyte)pa[i] : pa[i], bSigned ? (sbyte)pb[i] : pb[i], m, za, zb, zy, min, max);
        }
    }
}
