using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using QuantSharp.Runtime.Kernels.Reference;

namespace QuantSharp.Runtime.Kernels.Simd;

/// <summary>Batched 2-D transpose of 8-bit tensors (attention's head split and merge on codes), equal to <see cref="ByteTransposeReference"/>.</summary>
public static unsafe class ByteTranspose
{
    /// <summary>
    /// dst[b, c, r] = src[b, r, c]. With AVX2 and AVX-512F, 16 consecutive output bytes dst[b, c, r..r+15] come from two
    /// 8-lane dword gathers at src + (r + i)·cols + c (i = 0..15) narrowed to the low byte of each lane (vpmovdb). A dword
    /// reads 3 bytes past its element, so the last 3 columns (whose dwords could pass the end of the last row) and
    /// rows past the last full group of 16 are copied one byte at a time.
    /// </summary>
    public static void Transpose2D(ReadOnlySpan<byte> src, Span<byte> dst, int batch, int rows, int cols)
    {
        long size = (long)rows * cols;
        if (batch < 0 || rows < 0 || cols < 0 || src.Length < batch * size || dst.Length < batch * size)
            throw new QuantSharpException($"byte transpose: buffers too small for {batch}×{rows}×{cols}");
        if (size == 0) return;
        int vecCols = Avx512F.IsSupported && Avx2.IsSupported ? Math.Max(0, cols - 3) : 0;
        int vecRows = rows / 16 * 16;
        fixed (byte* ps = src) fixed (byte* pd = dst)
        {
            var lo = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * Vector256.Create(cols);
            var hi = lo + Vector256.Create(8 * cols);
            for (int b = 0; b < batch; b++)
            {
                byte* s = ps + b * size;
                byte* d = pd + b * size;
                for (int c = 0; c < cols; c++)
                {
                    byte* drow = d + (long)c * rows;
                    int r = 0;
                    if (c < vecCols)
                    {
                        for (; r < vecRows; r += 16)
                        {
                            int* p = (int*)(s + (long)r * cols + c);
                            var v = Vector512.Create(Avx2.GatherVector256(p, lo, 1), Avx2.GatherVector256(p, hi, 1));
                            Avx512F.ConvertToVector128Byte(v).Store(drow + r);
                        }
                    }
                    for (; r < rows; r++) drow[r] = s[(long)r * cols + c];
                }
            }
        }
    }
}
