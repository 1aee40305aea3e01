using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>Vectorised quantized Add, equal to <see cref="Int8AddReference"/> byte for byte.</summary>
public static unsafe class Int8Add
{
    /// <summary>
    /// <see cref="Int8AddReference.Add(ReadOnlySpan{byte}, bool, ReadOnlySpan{byte}, bool, Span{byte}, float, int, float, int, int, int, int)"/>,
    /// 16 (AVX-512F) or 8 (AVX2) elements at a time: bytes widened to int32 (vpmovzxbd / vpmovsxbd), the reference's float operations in the
    /// same order (convert, two multiplies, add, round half to even, add zy), clamped while float (the rounded value
    /// is an integer, so this equals the reference's comparisons), converted and narrowed.
    /// </summary>
    public static void Add(ReadOnlySpan<byte> a, bool aSigned, ReadOnlySpan<byte> b, bool bSigned, Span<byte> y,
        float ma, int za, float mb, int zb, int zy, int min, int max)
    {
        int n = y.Length;
        if (a.Length < n || b.Length < n) throw new QuantSharpException("int8 add: inputs shorter than the output");
        int i = 0;
        fixed (byte* pa = a) fixed (byte* pb = b) fixed (byte* py = y)
        {
            if (Avx512F.IsSupported)
            {
                // The same lane formula 16 at a time; vpmovdb keeps the low byte of each (already clamped) lane.
                var vma = Vector512.Create(ma);
                var vmb = Vector512.Create(mb);
                var vza = Vector512.Create(za);
                var vzb = Vector512.Create(zb);
                var vzy = Vector512.Create((float)zy);
                var lo = Vector512.Create((float)min);
                var hi = Vector512.Create((float)max);
                for (; i <= n - 16; i += 16)
                {
                    var va = Vector128.Load(pa + i);
                    var vb = Vector128.Load(pb + i);
                    var xa = aSigned ? Avx512F.ConvertToVector512Int32(va.AsSByte()) : Avx512F.ConvertToVector512Int32(va);
                    var xb = bSigned ? Avx512F.ConvertToVector512Int32(vb.AsSByte()) : Avx512F.ConvertToVector512Int32(vb);
                    var fa = Vector512.ConvertToSingle(xa - vza);
                    var fb = Vector512.ConvertToSingle(xb - vzb);
                    var r = Vector512.Round(vma * fa + vmb * fb) + vzy;
                    var q = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(r, lo), hi));
                    Avx512F.ConvertToVector128Byte(q).Store(py + i);
                }
            }
            if (Avx2.IsSupported)
            {
                var vma = Vector256.Create(ma);
                var vmb = Vector256.Create(mb);
                var vza = Vector256.Create(za);
                var vzb = Vector256.Create(zb);
                var vzy = Vector256.Create((float)zy);
                var lo = Vector256.Create((float)min);
                var hi = Vector256.Create((float)max);
                for (; i <= n - 8; i += 8)
                {
                    var xa = aSigned ? Avx2.ConvertToVector256Int32((sbyte*)pa + i) : Avx2.ConvertToVector256Int32(pa + i);
                    var xb = bSigned ? Avx2.ConvertToVector256Int32((sbyte*)pb + i) : Avx2.ConvertToVector256Int32(pb + i);
                    var fa = Vector256.ConvertToSingle(xa - vza);
                    var fb = Vector256.ConvertToSingle(xb - vzb);
                    var r = Vector256.Round(vma * fa + vmb * fb) + vzy;
                    var q = Vector256.ConvertToInt32(Vector256.Min(Vector256.Max(r, lo), hi));
                    var s = Vector128.Narrow(q.GetLower(), q.GetUpper());
                    *(ulong*)(py + i) = Vector128.Narrow(s, s).AsUInt64().ToScalar();
                }
            }
            for (; i < n; i++)
                py[i] = (byte)Int8AddReference.Add(aSigned ? (sbyte)pa[i] : pa[i], bSigned ? (sbyte)pb[i] : pb[i], ma, za, mb, zb, zy, min, max);
        }
    }
}
