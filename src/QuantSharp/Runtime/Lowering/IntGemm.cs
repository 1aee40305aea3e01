using System.Numerics;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// The integer GEMM seam the lowered operators call: a constant signed 8-bit right operand B (K×N) prepared once,
/// then C (m×N, int32) = (A − zA) · (B − zB[n]) for 8-bit activations A (m×K, row-major). Backed by
/// <see cref="IntGemmReference"/> (B widened to int32 with its zero points subtracted).
/// </summary>
internal sealed class IntGemmWeights
{
    private readonly int[] _wide;

    public int Depth { get; }
    public int Columns { get; }

    /// <summary>Element (k, n) of B is <c>transposed ? b[n·K + k] : b[k·N + n]</c>; zero points: 0, 1 or N of them.</summary>
    public IntGemmWeights(int k, int n, ReadOnlySpan<sbyte> b, bool transposed, ReadOnlySpan<int> zeroPoints)
    {
        Depth = k;
        Columns = n;
        _wide = new int[checked(k * n)];
        for (int kk = 0; kk < k; kk++)
            for (int j = 0; j < n; j++)
            {
                int zb = zeroPoints.Length == 0 ? 0 : zeroPoints[zeroPoints.Length == 1 ? 0 : j];
                _wide[kk * n + j] = (transposed ? b[j * k + kk] : b[kk * n + j]) - zb;
            }
    }

    /// <summary>C = (A − aZero) · (B − zB) for u8 or s8 A.</summary>
    public void Multiply<T>(int m, ReadOnlySpan<T> a, int lda, int aZero, Span<int> c, int ldc) where T : unmanaged, IBinaryInteger<T> =>
        IntGemmReference.GemmWidened(m, Columns, Depth, a, lda, [aZero], _wide, c, ldc);
}
