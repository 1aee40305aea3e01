using QuantSharp.Runtime.Kernels.Reference;
using QuantSharp.Runtime.Kernels.Simd;

namespace QuantSharp.Tests.Kernels;

public class Int8RequantizeTests
{
    private static int[] Accumulators(Random rnd, int count)
    {
        var v = new int[count];
        for (int i = 0; i < count; i++)
            v[i] = rnd.Next(6) switch
            {
                0 => int.MaxValue - rnd.Next(100),
                1 => int.MinValue + rnd.Next(100),
                2 => rnd.Next(-300, 300),
                _ => rnd.Next(-2_000_000, 2_000_000),
            };
        return v;
    }

    /// <summary>Per-tensor and per-channel multipliers, bias, u8/s8 ranges and a fused Relu.</summary>
    public static IEnumerable<Int8Requantization> Cases(int n, RequantizationMode mode)
    {
        var rnd = new Random(17);
        var perChannel = Enumerable.Range(0, n).Select(_ => (float)Math.Exp(rnd.NextDouble() * -14)).ToArray();
        var bias = Enumerable.Range(0, n).Select(_ => rnd.Next(-5000, 5000)).ToArray();
        yield return Int8Requantization.Create(n, [0.0007f], [], 128, 0, 255, mode);
        yield return Int8Requantization.Create(n, perChannel, bias, -3, -128, 127, mode);
        yield return Int8Requantization.Create(n, perChannel, bias, 10, 10, 255, mode);
        yield return Int8Requantization.Create(n, [1.75f], bias, 0, -128, 127, mode);
        yield return Int8Requantization.Create(n, [3e-10f], [], 5, 0, 255, mode);
        // Exact halves: 0.5 · odd numbers tie, exercising round-half-even vs away-from-zero.
        yield return Int8Requantization.Create(n, [0.5f], [], 0, -128, 127, mode);
    }

    [Theory]
    [InlineData(RequantizationMode.FloatMultiplier)]
    [InlineData(RequantizationMode.FixedPoint)]
    public void SimdMatchesReferenceBitForBit(RequantizationMode mode)
    {
        var rnd = new Random(4);
        foreach (int n in new[] { 1, 7, 8, 9, 33, 64 })
        {
            int m = 5, ld = n + 3;
            var acc = Accumulators(rnd, m * ld);
            foreach (var p in Cases(n, mode))
            {
                var expected = new byte[m * ld];
                var actual = new byte[m * ld];
                Int8RequantizeReference.Run(m, n, acc, ld, p, expected, ld);
                Int8Requantize.Run(m, n, acc, ld, p, actual, ld);
                Assert.Equal(expected, actual);
            }
        }
    }

    [Fact]
    public void FloatAndFixedPointAgreeWithinOneUnit()
    {
        var rnd = new Random(6);
        int n = 24;
        for (int trial = 0; trial < 40; trial++)
        {
            var mult = Enumerable.Range(0, n).Select(_ => (float)Math.Exp(rnd.NextDouble() * -12)).ToArray();
            var pf = Int8Requantization.Create(n, mult, [], 3, -128, 127, RequantizationMode.FloatMultiplier);
            var pq = Int8Requantization.Create(n, mult, [], 3, -128, 127, RequantizationMode.FixedPoint);
            for (int i = 0; i < 200; i++)
            {
                int j = rnd.Next(n);
                // Accumulators whose scaled value stays in or near the output range, where rounding matters.
                int acc = (int)Math.Clamp(rnd.NextDouble() * 300 / mult[j] - 150 / mult[j], int.MinValue, int.MaxValue);
                int yf = Int8RequantizeReference.Requantize(acc, j, pf);
                int yq = Int8RequantizeReference.Requantize(acc, j, pq);
                Assert.True(Math.Abs(yf - yq) <= 1, $"acc {acc}, multiplier {mult[j]}: float {yf}, fixed {yq}");
            }
        }
    }

    [Fact]
    public void FixedPointRoundsHalvesAwayFromZeroAndReconstructsMultiplier()
    {
        foreach (double m in new[] { 0.5, 0.75, 1e-3, 0.999999, 1.0, 3.25, 1e-9 })
        {
            var (q, left, right) = Int8Requantization.QuantizeMultiplier(m);
            Assert.InRange(q, 1 << 30, int.MaxValue);
            double back = q / Math.Pow(2, 31) * Math.Pow(2, left - right);
            Assert.True(Math.Abs(back - m) <= m * 1e-9, $"{m} -> {back}");
        }
        var (q5, l5, r5) = Int8Requantization.QuantizeMultiplier(0.5);
        Assert.Equal(2, Int8RequantizeReference.FixedPointMultiply(3, q5, l5, r5));
        Assert.Equal(-2, Int8RequantizeReference.FixedPointMultiply(-3, q5, l5, r5));
        Assert.Equal(1 << 30, Int8RequantizeReference.FixedPointMultiply(int.MaxValue, 1 << 30, 1, 0));
    }
}
