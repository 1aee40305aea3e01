using System.Numerics;
using System.Runtime.InteropServices;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// The integer GEMM seam the lowered operators call: a constant signed 8-bit right operand B (K×N) packed once
/// (<see cref="PackedInt8Weights"/>, the layout of the dot-product micro-kernels), then
/// C (m×N, int32) = (A − zA) · (B − zB[n]) for 8-bit activations A (m×K, row-major) through <see cref="Int8Gemm"/>,
/// whose kernel is chosen at start-up from the instruction sets available.
/// </summary>
internal sealed class IntGemmWeights
{
    private readonly PackedInt8Weights _packed;
    private readonly IInt8GemmKernel? _kernel;

    public int Depth { get; }
    public int Columns { get; }

    /// <summary>Element (k, n) of B is <c>transposed ? b[n·K + k] : b[k·N + n]</c>; zero points: 0, 1 or N of them.
    /// <paramref name="kernel"/>: the micro-kernel to use (null: the driver's start-up default).</summary>
    public IntGemmWeights(int k, int n, ReadOnlySpan<sbyte> b, bool transposed, ReadOnlySpan<int> zeroPoints, IInt8GemmKernel? kernel = null)
    {
        _kernel = kernel;
        Depth = k;
        Columns = n;
        _packed = PackedInt8Weights.Pack(k, n, b, transposed ? k : n, transposed, zeroPoints, Kernels.Jit.GeneratedInt8Kernel.KAlignmentFor(kernel));
    }

    /// <summary>C = (A − aZero) · (B − zB) for u8 or s8 A, split over output tiles on up to <paramref name="threads"/> threads.</summary>
    public void Multiply<T>(int m, ReadOnlySpan<T> a, int lda, int aZero, Span<int> c, int ldc, int threads = 1) where T : unmanaged, IBinaryInteger<T>
    {
        if (typeof(T) == typeof(byte)) Int8Gemm.Multiply(m, MemoryMarshal.Cast<T, byte>(a), lda, aZero, _packed, c, ldc, threads, _kernel);
        else if (typeof(T) == typeof(sbyte)) Int8Gemm.Multiply(m, MemoryMarshal.Cast<T, sbyte>(a), lda, aZero, _packed, c, ldc, threads, _kernel);
        else throw new QuantSharpException($"int GEMM: activations must be uint8 or int8, got {typeof(T).Name}");
    }

    /// <summary>The same product handed tile by tile to <paramref name="sink"/> (e.g. <see cref="RowOutputSink"/>,
    /// which requantizes each tile while it is in cache) instead of being stored as int32.</summary>
    public void Multiply<T>(int m, ReadOnlySpan<T> a, int lda, int aZero, IInt8GemmTileSink sink, int threads = 1) where T : unmanaged, IBinaryInteger<T>
    {
        if (typeof(T) == typeof(byte)) Int8Gemm.Multiply(m, MemoryMarshal.Cast<T, byte>(a), lda, aZero, _packed, sink, threads, _kernel);
        else if (typeof(T) == typeof(sbyte)) Int8Gemm.Multiply(m, MemoryMarshal.Cast<T, sbyte>(a), lda, aZero, _packed, sink, threads, _kernel);
        else throw new QuantSharpException($"int GEMM: activations must be uint8 or int8, got {typeof(T).Name}");
    }
}

/// <summary>
/// Tile sink of a lowered Gemm / MatMul: requantizes each finished int32 tile through the operator's
/// <see cref="OutputStage"/> into the row-major output (row r, channel c at dst[r·N + c]). Per element this is the
/// same function as requantizing whole rows afterwards, so the output does not depend on the tiling.
/// </summary>
internal sealed unsafe class RowOutputSink(OutputStage stage, Array dst, int n) : IInt8GemmTileSink
{
    public void Consume(int* tile, int ldt, int row0, int rows, int col0, int cols)
    {
        for (int i = 0; i < rows; i++)
            stage.WriteRow(dst, (row0 + i) * n + col0, new Span<int>(tile + (long)i * ldt, cols), col0);
    }
}
