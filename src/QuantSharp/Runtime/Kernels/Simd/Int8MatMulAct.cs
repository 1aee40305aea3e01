using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>Product of two 8-bit activation matrices (attention's Q·Kᵀ and P·V), equal to <see cref="Int8MatMulActReference"/> byte for byte.</summary>
public static unsafe class Int8MatMulAct
{
    /// <summary>
    /// <see cref="Int8MatMulActReference.Multiply"/>: with AVX-512F, 16 output columns at a time, each row of b
    /// widened to int32 (vpmovzxbd / vpmovsxbd) minus zb, times the broadcast a[i, p] − za, summed in int32 (exact, so
    /// the order does not matter), then the reference's float requantization per lane; other columns and machines
    /// use the reference.
    /// </summary>
    public static void Multiply(ReadOnlySpan<byte> a, bool aSigned, ReadOnlySpan<byte> b, bool bSigned, Span<byte> y,
        int m, int n, int k, float mult, int za, int zb, int zy, int min, int max)
    {
        if (a.Length < m * k || b.Length < k * n || y.Length < m * n) throw new QuantSharpException("int8 matmul: operand shorter than its shape");
        int n16 = Avx512F.IsSupported ? n / 16 * 16 : 0;
        if (n16 == n && n > 0 && k <= 256 && k * n <= 4096)
        {
            MultiplyFloat(a, aSigned, b, bSigned, y, m, n, k, mult, za, zb, zy, min, max);
            return;
        }
        if (n16 > 0)
        {
            fixed (byte* pa = a) fixed (byte* pb = b) fixed (byte* py = y)
            {
                var vzb = Vector512.Create(zb);
                var vm = Vector512.Create(mult);
                var vzy = Vector512.Create((float)zy);
                var lo = Vector512.Create((float)min);
                var hi = Vector512.Create((float)max);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n16; j += 16)
                    {
                        var acc = Vector512<int>.Zero;
                        for (int p = 0; p < k; p++)
                        {
                            int av = (aSigned ? ((sbyte*)pa)[i * k + p] : pa[i * k + p]) - za;
                            var row = Vector128.Load(pb + p * n + j);
                            var bv = bSigned ? Avx512F.ConvertToVector512Int32(row.AsSByte()) : Avx512F.ConvertToVector512Int32(row);
                            acc += (bv - vzb) * Vector512.Create(av);
                        }
                        var r = Vector512.Round(vm * Vector512.ConvertToSingle(acc)) + vzy;
                        var q = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(r, lo), hi));
                        Avx512F.ConvertToVector128Byte(q).Store(py + i * n + j);
                    }
            }
        }
        if (n16 == n) return;
        for (int i = 0; i < m; i++)
            for (int j = n16; j < n; j++)
            {
                int acc = 0;
                for (int p = 0; p < k; p++)
                    acc += ((aSigned ? (sbyte)a[i * k + p] : a[i * k + p]) - za) * ((bSigned ? (sbyte)b[p * n + j] : b[p * n + j]) - zb);
                y[i * n + j] = (byte)Int8MatMulActReference.Requantize(acc, mult, zy, min, max);
            }
    }

    /// <summary>
    /// The same sums in float32 with fused multiply-add: every product is an integer of magnitude ≤ 255² and every
    /// partial sum of at most 256 of them stays below 2^24, so each step is exact and the result equals the int32
    /// sum. b − zb is converted once into a stack buffer (K·N ≤ 4096 floats), then each row of y is 16-lane FMAs.
    /// </summary>
    private static void MultiplyFloat(ReadOnlySpan<byte> a, bool aSigned, ReadOnlySpan<byte> b, bool bSigned, Span<byte> y,
        int m, int n, int k, float mult, int za, int zb, int zy, int min, int max)
    {
        Span<float> bf = stackalloc float[k * n];
        fixed (byte* pb = b)
            for (int i = 0; i < k * n; i += 16)
            {
                var row = Vector128.Load(pb + i);
                var w = bSigned ? Avx512F.ConvertToVector512Int32(row.AsSByte()) : Avx512F.ConvertToVector512Int32(row);
                Vector512.ConvertToSingle(w - Vector512.Create(zb)).CopyTo(bf.Slice(i, 16));
            }
        var vm = Vector512.Create(mult);
        var vzy = Vector512.Create((float)zy);
        var lo = Vector512.Create((float)min);
        var hi = Vector512.Create((float)max);
        fixed (byte* py = y)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j += 16)
                {
                    var acc = Vector512<float>.Zero;
                    for (int p = 0; p < k; p++)
                    {
                        float av = (aSigned ? (sbyte)a[i * k + p] : a[i * k + p]) - za;
                        acc = Vector512.FusedMultiplyAdd(Vector512.Create(av), Vector512.Create(bf.Slice(p * n + j, 16)), acc);
                    }
                    var r = Vector512.Round(vm * acc) + vzy;
                    var q = Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(r, lo), hi));
                    Avx512F.ConvertToVector128Byte(q).Store(py + i * n + j);
                }
    }
}
