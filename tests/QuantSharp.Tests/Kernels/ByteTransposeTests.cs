using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Tests.Kernels;

/// <summary>The vectorised batched 2-D byte transpose equals its scalar reference, including ragged rows (not a multiple of 16) and the last columns.</summary>
public class ByteTransposeTests
{
    [Theory]
    [InlineData(1, 16, 64)]
    [InlineData(1, 64, 16)]
    [InlineData(3, 17, 5)]
    [InlineData(2, 33, 4)]
    [InlineData(1, 1, 1)]
    [InlineData(4, 15, 31)]
    [InlineData(2, 48, 3)]
    [InlineData(1, 0, 7)]
    public void MatchesReference(int batch, int rows, int cols)
    {
        var rnd = new Random(batch * 1000 + rows * 10 + cols);
        var src = new byte[batch * rows * cols];
        rnd.NextBytes(src);
        var expected = new byte[src.Length + 1];
        var actual = new byte[src.Length + 1];
        expected[^1] = actual[^1] = 42;
        ByteTransposeReference.Transpose2D(src, expected.AsSpan(0, src.Length), batch, rows, cols);
        ByteTranspose.Transpose2D(src, actual.AsSpan(0, src.Length), batch, rows, cols);
        Assert.Equal(expected, actual);
    }
}
