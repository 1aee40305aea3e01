namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>
/// Scalar single-precision GEMM, the definition the SIMD kernels are tested against:
/// C(i, j) = alpha · Σ_p op(A)(i, p) · op(B)(p, j) + (accumulate ? C(i, j) : 0) for i &lt; m, j &lt; n, p &lt; k.
/// Matrices are row-major with leading dimensions (row strides) lda, ldb, ldc.
/// op(A)(i, p) = transA ? a[p·lda + i] : a[i·lda + p]; op(B)(p, j) = transB ? b[j·ldb + p] : b[p·ldb + j].
/// The sum runs over p in increasing order in a float accumulator.
/// </summary>
public static class SgemmReference
{
    public static void Multiply(bool transA, bool transB, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc,
        float alpha = 1f, bool accumulate = false)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                float sum = 0f;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[p * lda + i] : a[i * lda + p];
                    float bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    sum += av * bv;
                }
                float r = alpha * sum;
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + r : r;
            }
        }
    }
}
