using System.Runtime.Intrinsics;
using QuantSharp.Runtime.Operators;

namespace QuantSharp.Tests.Operators;

/// <summary>
/// The 16-lane e^x for x ≤ 0 used by Erf and Softmax: identical bits to its scalar reference, relative error within
/// 3e-7 of double exp on [−80, 0], 0 below ln(2⁻¹²⁶) and for −∞, NaN kept.
/// </summary>
public class ExpNonPositiveTests
{
    private static float[] Inputs()
    {
        var rnd = new Random(17);
        var xs = new List<float> { 0f, -0f, -1e-30f, -0.34657359f, -0.6931472f, -1f, -16f, -87.33654f, -87.3366f, -87.5f,
            -100f, float.NegativeInfinity, float.NaN, -float.Epsilon };
        for (int i = 0; i < 3001; i++) xs.Add((float)(-rnd.NextDouble() * 90));
        for (int i = 0; i < 1001; i++) xs.Add((float)(-rnd.NextDouble() * 2));
        return xs.ToArray();
    }

    [Fact]
    public void VectorMatchesScalarReferenceBitForBit()
    {
        if (!Vector512.IsHardwareAccelerated) return; // the vector form only runs where Vector512 is accelerated
        var xs = Inputs();
        var lanes = new float[16];
        for (int i = 0; i < xs.Length; i += 16)
        {
            int n = Math.Min(16, xs.Length - i);
            Array.Clear(lanes);
            xs.AsSpan(i, n).CopyTo(lanes);
            var v = ActivationMath.ExpNonPositive(Vector512.Create(lanes));
            for (int j = 0; j < n; j++)
                Assert.Equal(BitConverter.SingleToInt32Bits(ActivationMath.ExpNonPositive(xs[i + j])), BitConverter.SingleToInt32Bits(v[j]));
        }
    }

    [Fact]
    public void ScalarReferenceIsExpWithinFloatRounding()
    {
        foreach (float x in Inputs())
        {
            float y = ActivationMath.ExpNonPositive(x);
            if (float.IsNaN(x)) Assert.True(float.IsNaN(y));
            else if (x < -87.33654f) Assert.Equal(0f, y);
            else if (x >= -80f)
            {
                double want = Math.Exp(x);
                Assert.True(Math.Abs(y - want) <= 3e-7 * want, $"exp({x}) = {y}, expected {want}");
            }
            else Assert.True(y >= 0f && Math.Abs(y - Math.Exp(x)) <= 1e-37, $"exp({x}) = {y}");
        }
    }
}
