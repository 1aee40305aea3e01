using System.Numerics;

namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>
/// Scalar reference integer GEMM: C[m, n] = Σ_k (A[m, k] − aZero[m]) · (B[k, n] − bZero[n]) accumulated in int32.
/// Products of 8/16-bit operands never overflow; the int32 accumulation wraps (two's complement) as ONNX allows
/// ("the accumulation may overflow if and only if in 32 bits"). Matrices are row-major with leading dimensions.
/// Zero-point spans have one element (per-tensor), one per row of A / column of B, or are empty (zero).
/// Faster integer kernels must match this bit for bit.
/// </summary>
public static class IntGemmReference
{
    /// <summary>C = (A − aZero) · (B − bZero) for an m×k A and a k×n B.</summary>
    public static void Gemm<TA, TB>(int m, int n, int k,
        ReadOnlySpan<TA> a, int lda, ReadOnlySpan<int> aZeroPoints,
        ReadOnlySpan<TB> b, int ldb, ReadOnlySpan<int> bZeroPoints,
        Span<int> c, int ldc)
        where TA : unmanaged, IBinaryInteger<TA>
        where TB : unmanaged, IBinaryInteger<TB>
    {
        var wide = WidenB(k, n, b, ldb, bZeroPoints);
        GemmWidened(m, n, k, a, lda, aZeroPoints, wide, c, ldc);
    }

    /// <summary>B − bZero as a dense k×n int32 matrix (leading dimension n), the right operand of <see cref="GemmWidened"/>.</summary>
    public static int[] WidenB<TB>(int k, int n, ReadOnlySpan<TB> b, int ldb, ReadOnlySpan<int> bZeroPoints)
        where TB : unmanaged, IBinaryInteger<TB>
    {
        CheckZeroPoints(bZeroPoints, n, "B");
        var wide = new int[checked(k * n)];
        for (int kk = 0; kk < k; kk++)
        {
            var src = b.Slice(kk * ldb, n);
            var dst = wide.AsSpan(kk * n, n);
            for (int j = 0; j < n; j++)
                dst[j] = int.CreateTruncating(src[j]) - ZeroPoint(bZeroPoints, j);
        }
        return wide;
    }

    /// <summary>
    /// C = (A − aZero) · W where W is a k×n int32 matrix with leading dimension n (already zero-point adjusted).
    /// Rows of C are accumulated as axpy over contiguous rows of W.
    /// </summary>
    public static void GemmWidened<TA>(int m, int n, int k,
        ReadOnlySpan<TA> a, int lda, ReadOnlySpan<int> aZeroPoints,
        ReadOnlySpan<int> w, Span<int> c, int ldc)
        where TA : unmanaged, IBinaryInteger<TA>
    {
        CheckZeroPoints(aZeroPoints, m, "A");
        if (w.Length < (long)k * n) throw new QuantSharpException($"int GEMM: right operand has {w.Length} elements, needs {(long)k * n}");
        for (int i = 0; i < m; i++)
        {
            var row = c.Slice(i * ldc, n);
            row.Clear();
            var ai = a.Slice(i * lda, k);
            int za = ZeroPoint(aZeroPoints, i);
            for (int kk = 0; kk < k; kk++)
            {
                int av = int.CreateTruncating(ai[kk]) - za;
                if (av == 0) continue;
                Axpy(av, w.Slice(kk * n, n), row);
            }
        }
    }

    /// <summary>y += a · x in wrapping int32 arithmetic, Vector&lt;int&gt; wide.</summary>
    public static void Axpy(int a, ReadOnlySpan<int> x, Span<int> y)
    {
        int j = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<int>.Count)
        {
            var av = new Vector<int>(a);
            for (; j <= x.Length - Vector<int>.Count; j += Vector<int>.Count)
                (new Vector<int>(x.Slice(j)) * av + new Vector<int>(y.Slice(j))).CopyTo(y.Slice(j));
        }
        for (; j < x.Length; j++) y[j] += a * x[j];
    }

    private static int ZeroPoint(ReadOnlySpan<int> zp, int i) => zp.Length switch
    {
        0 => 0,
        1 => zp[0],
        _ => zp[i],
    };

    private static void CheckZeroPoints(ReadOnlySpan<int> zp, int count, string which)
    {
        if (zp.Length > 1 && zp.Length != count)
            throw new QuantSharpException($"int GEMM: {which} has {zp.Length} zero points, expected 1 or {count}");
    }
}
