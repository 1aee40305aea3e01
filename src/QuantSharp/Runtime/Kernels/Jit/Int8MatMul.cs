using System.Numerics.Tensors;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Runtime.Kernels.Jit;

/// <summary>
/// Public batched int8 matrix product for other parts of QuantSharp (e.g. LLM prompt processing): activations A
/// (m×K, u8 or s8, row-major) times signed 8-bit weights W packed once (<see cref="PackWeights"/>), on the fastest
/// kernel of the <see cref="Int8Gemm"/> driver — the generated 512-bit VNNI code (AMX-class CPUs included) when
/// allowed and available, else the best managed SIMD kernel. Results are exact int32 and identical whichever kernel
/// runs or how many threads are used.
/// </summary>
public static unsafe class Int8MatMul
{
    /// <summary>
    /// Packs W once: element (k, n) is <c>transposed ? w[n·K + k] : w[k·N + n]</c> (transposed = the usual
    /// [out_features, in_features] weight layout). Zero points: none, one, or N (per output column). K is padded to
    /// what the fastest kernel here wants (64 on AMX, else 4).
    /// </summary>
    public static PackedInt8Weights PackWeights(ReadOnlySpan<sbyte> w, int k, int n, bool transposed, ReadOnlySpan<int> zeroPoints = default) =>
        PackedInt8Weights.Pack(k, n, w, transposed ? k : n, transposed, zeroPoints, GeneratedInt8Kernel.KAlignmentFor(null));

    /// <summary>The micro-kernel the calls below use.</summary>
    public static IInt8GemmKernel Kernel(bool allowGenerated = true) => GeneratedInt8Kernel.Select(allowGenerated) ?? Int8Gemm.Default;

    /// <summary>C[i, j] = Σ_k (A[i, k] − aZero)·(W[k, j] − zw[j]) in wrapping int32, for s8 A.</summary>
    public static void Multiply(int m, ReadOnlySpan<sbyte> a, int lda, int aZero, PackedInt8Weights w, Span<int> c, int ldc,
        int threads = 1, bool allowGenerated = true) =>
        Int8Gemm.Multiply(m, a, lda, aZero, w, c, ldc, threads, Kernel(allowGenerated));

    /// <summary>C[i, j] = Σ_k (A[i, k] − aZero)·(W[k, j] − zw[j]) in wrapping int32, for u8 A.</summary>
    public static void Multiply(int m, ReadOnlySpan<byte> a, int lda, int aZero, PackedInt8Weights w, Span<int> c, int ldc,
        int threads = 1, bool allowGenerated = true) =>
        Int8Gemm.Multiply(m, a, lda, aZero, w, c, ldc, threads, Kernel(allowGenerated));

    /// <summary>
    /// Float output for symmetric s8 activations: C[i, j] = fma((float)acc[i, j], aScales[i]·wScales[j], bias[j])
    /// with acc = Σ_k A[i, k]·(W[k, j] − zw[j]) (the product aScales[i]·wScales[j] in float32, then one fused
    /// multiply-add). aScales: one per row or a single value; wScales: one per column or a single value; bias: N
    /// values or empty (0).
    /// </summary>
    public static void MultiplyScaled(int m, ReadOnlySpan<sbyte> a, int lda, ReadOnlySpan<float> aScales, PackedInt8Weights w,
        ReadOnlySpan<float> wScales, ReadOnlySpan<float> bias, Span<float> c, int ldc, int threads = 1, bool allowGenerated = true)
    {
        int n = w.Columns;
        if (m < 0) throw new QuantSharpException($"int8 matmul: negative row count {m}");
        if (aScales.Length != 1 && aScales.Length != m) throw new QuantSharpException($"int8 matmul: {aScales.Length} activation scales, expected 1 or {m}");
        if (wScales.Length != 1 && wScales.Length != n) throw new QuantSharpException($"int8 matmul: {wScales.Length} weight scales, expected 1 or {n}");
        if (bias.Length != 0 && bias.Length != n) throw new QuantSharpException($"int8 matmul: {bias.Length} bias values, expected 0 or {n}");
        if (m == 0 || n == 0) return;
        if (ldc < n || (long)(m - 1) * ldc + n > c.Length)
            throw new QuantSharpException($"int8 matmul: C buffer of {c.Length} elements too small for {m}x{n} with leading dimension {ldc}");
        var zeros = bias.Length == 0 ? new float[n] : null;
        // Each finished tile is scaled into C straight from the driver's tile buffer (no m×N int32 pass).
        fixed (float* pc = c) fixed (float* pas = aScales) fixed (float* pws = wScales) fixed (float* pb = bias) fixed (float* pz = zeros)
        {
            var sink = new ScaledSink(pc, ldc, pas, aScales.Length, pws, wScales.Length, zeros is null ? pb : pz);
            var kernel = Kernel(allowGenerated);
            Int8Gemm.Multiply(m, a, lda, 0, w, sink, threads, kernel);
        }
    }

    /// <summary>
    /// out[i, j] = fma((float)acc[i, j], aScales[i]·wScales[j], add[j]) for one tile, with the same operations as a
    /// whole-row pass (int → float conversion, the scale product in float32, one fused multiply-add), so results do
    /// not depend on the tiling.
    /// </summary>
    private sealed unsafe class ScaledSink(float* c, int ldc, float* aScales, int aCount, float* wScales, int wCount, float* add) : IInt8GemmTileSink
    {
        public void Consume(int* tile, int ldt, int row0, int rows, int col0, int cols)
        {
            var scale = cols <= 1024 ? stackalloc float[cols] : new float[cols];
            var addSpan = new ReadOnlySpan<float>(add + col0, cols);
            for (int i = 0; i < rows; i++)
            {
                float sa = aScales[aCount == 1 ? 0 : row0 + i];
                if (wCount == 1) scale.Fill(sa * wScales[0]);
                else TensorPrimitives.Multiply(new ReadOnlySpan<float>(wScales + col0, cols), sa, scale);
                var row = new Span<float>(c + (long)(row0 + i) * ldc + col0, cols);
                TensorPrimitives.ConvertTruncating<int, float>(new ReadOnlySpan<int>(tile + (long)i * ldt, cols), row);
                TensorPrimitives.FusedMultiplyAdd(row, scale, addSpan, row);
            }
        }
    }
}
