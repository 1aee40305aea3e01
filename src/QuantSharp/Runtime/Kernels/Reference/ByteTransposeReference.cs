namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>Scalar reference of the batched 2-D byte transpose that <see cref="Simd.ByteTranspose"/> must match exactly.</summary>
public static class ByteTransposeReference
{
    /// <summary>For each of <paramref name="batch"/> matrices: dst[b, c, r] = src[b, r, c] (src rows × cols, dst cols × rows).</summary>
    public static void Transpose2D(ReadOnlySpan<byte> src, Span<byte> dst, int batch, int rows, int cols)
    {
        int size = rows * cols;
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < cols; c++)
                for (int r = 0; r < rows; r++)
                    dst[b * size + c * rows + r] = src[b * size + r * cols + c];
    }
}
