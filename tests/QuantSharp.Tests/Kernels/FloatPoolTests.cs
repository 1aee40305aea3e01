using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Runtime.Operators;

namespace QuantSharp.Tests.Kernels;

/// <summary>The vectorised float 2×2/stride-2 max pool against its scalar reference and the generic window loop.</summary>
public class FloatPoolTests
{
    private static readonly int[] Widths = [0, 1, 2, 3, 7, 14, 15, 16, 17, 28, 31, 32, 33, 64, 65, 97];

    private static float[] Values(Random rnd, int n, bool specials)
    {
        var v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float)(rnd.NextDouble() * 20 - 10);
        if (specials && n > 0)
        {
            // NaN, infinities and both zeros at random places: the IEEE maximum is defined for all of them.
            float[] s = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f];
            for (int k = 0; k < Math.Max(1, n / 10); k++) v[rnd.Next(n)] = s[rnd.Next(s.Length)];
        }
        return v;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MaxPool2x2MatchesReferenceBitForBit(bool specials)
    {
        var rnd = new Random(specials ? 11 : 12);
        foreach (int planes in new[] { 1, 3 })
            foreach (int ih in new[] { 0, 1, 2, 7, 14 })
                foreach (int iw in Widths)
                    foreach (int ow in new[] { iw / 2, Math.Max(0, iw / 2 - 1) })
                    {
                        int oh = ih / 2;
                        var x = Values(rnd, planes * ih * iw, specials);
                        var expected = new float[planes * oh * ow + 1];
                        var actual = new float[planes * oh * ow + 1];
                        expected[^1] = actual[^1] = 1234.5f;
                        FloatPoolReference.MaxPool2x2(x, planes, ih, iw, expected, oh, ow);
                        FloatPool.MaxPool2x2(x, planes, ih, iw, actual, oh, ow);
                        for (int i = 0; i < expected.Length; i++)
                            Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                                $"planes={planes} {ih}x{iw} -> {oh}x{ow} at {i}: {expected[i]} vs {actual[i]}");
                    }
    }

    [Fact]
    public void MaxPool2x2AgreesWithTheGenericWindowLoopOnOrdinaryValues()
    {
        var rnd = new Random(5);
        const int planes = 4, ih = 14, iw = 15, oh = 7, ow = 7;
        var x = Values(rnd, planes * ih * iw, specials: false);
        var fast = new float[planes * oh * ow];
        FloatPool.MaxPool2x2(x, planes, ih, iw, fast, oh, ow);
        var generic = new float[planes * oh * ow];
        var win = Window(ih, iw, oh, ow);
        PoolLoops.Max<float>(win, x, generic, default, false, 0, planes);
        Assert.Equal(generic, fast);
    }

    private static Window3D Window(int ih, int iw, int oh, int ow)
    {
        var g = ConvGeometry.ForPool(new WindowAttributes { KernelShape = [2, 2], Strides = [2, 2] }, [1, 1, ih, iw]);
        var w = new Window3D(g);
        Assert.Equal((oh, ow), (w.OH, w.OW));
        return w;
    }
}
