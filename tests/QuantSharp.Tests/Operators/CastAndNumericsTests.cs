using QuantSharp.Graph;
using QuantSharp.Runtime;
using QuantSharp.Runtime.Operators;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Operators.OpTester;

namespace QuantSharp.Tests.Operators;

public class CastAndNumericsTests
{
    private static Tensor Cast(Tensor x, DataType to, int opset = 19) => Run1("Cast", opset, [x], [NodeAttribute.Of("to", (long)to)]);

    [Fact]
    public void CastBetweenEveryNumericPair()
    {
        var types = new[] { DataType.Float, DataType.Double, DataType.Float16, DataType.BFloat16, DataType.Int8, DataType.Int16,
            DataType.Int32, DataType.Int64, DataType.UInt8, DataType.UInt16, DataType.UInt32, DataType.UInt64, DataType.Bool };
        // Values every type represents exactly (bool: 0/1).
        double[] values = [0, 1, 2, 7, 100];
        foreach (var from in types)
        {
            var src = Conversions.Convert(new Tensor<double>(from == DataType.Bool ? [0, 1, 1, 0, 1] : values, [5]), from);
            foreach (var to in types)
            {
                var y = Cast(src, to);
                Assert.Equal(to, y.DataType);
                for (int i = 0; i < 5; i++)
                {
                    double v = src.GetDouble(i);
                    double want = to == DataType.Bool ? (v != 0 ? 1 : 0) : v;
                    Assert.Equal(want, y.GetDouble(i));
                }
            }
        }
    }

    [Fact]
    public void CastRoundsAndTruncatesLikeNumPy()
    {
        var x = F([1.7f, -1.7f, 2.5f, -0.4f, 65519f, 65520f, 1e-8f, 3.14159265f], 8);
        var h = Cast(x, DataType.Float16).As<Half>().Data;
        for (int i = 0; i < 8; i++) Assert.Equal((Half)x.Data[i], h[i]);
        Assert.Equal(Half.PositiveInfinity, h[5]); // 65520 rounds up past the largest half
        var back = Cast(Cast(x, DataType.Float16), DataType.Float).As<float>().Data;
        for (int i = 0; i < 8; i++) Assert.Equal((float)(Half)x.Data[i], back[i]);
        // bfloat16: round to nearest even on the dropped 16 bits.
        var bx = F([1.00390625f, 1.01171875f, 1.0f + 1f / 512f, -3.3f], 4);
        var b = Cast(bx, DataType.BFloat16).As<BFloat16>().Data;
        Assert.Equal(1.0f, (float)b[0]);        // exactly half-way, even mantissa stays
        Assert.Equal(1.015625f, (float)b[1]);   // half-way, odd mantissa rounds up
        Assert.Equal(1.0f, (float)b[2]);
        Assert.Equal(BitConverter.SingleToUInt32Bits(-3.3f) + 0x8000u >> 16, b[3].Bits);
        Assert.Equal([1, -1, 2, 0, 65519, 65520, 0, 3], Cast(x, DataType.Int32).As<int>().Data);
        Assert.Equal([1L << 33 | 5, -1], Cast(L([1L << 33 | 5, -1], 2), DataType.Int64).As<long>().Data);
        Assert.Equal([5, -1], Cast(L([1L << 33 | 5, -1], 2), DataType.Int32).As<int>().Data); // low bits kept
        Assert.Equal([(byte)255, (byte)0], Cast(new Tensor<int>([-1, 256], [2]), DataType.UInt8).As<byte>().Data);
        Assert.Equal([true, false, true], Cast(F([float.NaN, 0f, -0.1f], 3), DataType.Bool).As<bool>().Data);
    }

    [Fact]
    public void CastStringsAndOpsetOneNames()
    {
        var s = Cast(F([1.5f, -2f, float.PositiveInfinity], 3), DataType.String).As<string>().Data;
        Assert.Equal(["1.5", "-2", "inf"], s);
        var f = Cast(new Tensor<string>(["3.25", "-INF", "NaN", "1e3"], [4]), DataType.Float).As<float>().Data;
        Assert.Equal([3.25f, float.NegativeInfinity, float.NaN, 1000f], f);
        Assert.Equal([42L, -7], Cast(new Tensor<string>(["42", "-7"], [2]), DataType.Int64).As<long>().Data);
        var named = Run1("Cast", 1, [F([1.9f], 1)], [NodeAttribute.Of("to", "INT32")]);
        Assert.Equal([1], named.As<int>().Data);
        var like = Run1("CastLike", 15, [F([2.5f], 1), L([0], 1)]);
        Assert.Equal([2L], like.As<long>().Data);
    }

    /// <summary>erf in double: Maclaurin series for |x| ≤ 3, continued fraction for erfc beyond.</summary>
    private static double ErfRef(double x)
    {
        double a = Math.Abs(x);
        double r;
        if (a <= 3)
        {
            double sum = 0, term = a;
            for (int n = 0; n < 200; n++)
            {
                double t = term / (2 * n + 1);
                sum += t;
                if (Math.Abs(t) < 1e-18) break;
                term *= -a * a / (n + 1);
            }
            r = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // erfc(x) = exp(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), evaluated from the tail.
            double f = a;
            for (int k = 80; k >= 1; k--) f = a + k / 2.0 / f;
            r = 1 - Math.Exp(-a * a) / Math.Sqrt(Math.PI) / f;
        }
        return x < 0 ? -r : r;
    }

    [Fact]
    public void ErfIsAccurateEverywhere()
    {
        var xs = new List<float>();
        for (int i = -6000; i <= 6000; i++) xs.Add(i / 1000f);
        xs.AddRange([1e-30f, -1e-20f, 1e-7f, 0f, 10f, -30f, float.MaxValue, float.NegativeInfinity, float.PositiveInfinity]);
        var x = F(xs.ToArray(), xs.Count);
        var y = Run1("Erf", 13, [x]).As<float>().Data;
        for (int i = 0; i < xs.Count; i++)
        {
            double want = ErfRef(xs[i]);
            double err = Math.Abs(y[i] - want);
            Assert.True(err <= 2.5e-7 * Math.Abs(want) + 1e-45, $"erf({xs[i]}) = {y[i]}, want {want}");
        }
        Assert.True(float.IsNaN(Run1("Erf", 13, [F([float.NaN], 1)]).As<float>().Data[0]));
        var d = Run1("Erf", 13, [new Tensor<double>([0.3, -2.2, 5.0], [3])]).As<double>().Data;
        for (int i = 0; i < 3; i++) Assert.True(Math.Abs(d[i] - ErfRef(new[] { 0.3, -2.2, 5.0 }[i])) < 1e-8);
    }

    [Fact]
    public void GeluBothFormsMatchReference()
    {
        var x = F(Random(3000, 21, -8f, 8f).Concat([0f, -20f, 20f, 1e-6f]).ToArray(), 3004);
        var exact = Run1("Gelu", 20, [x]);
        AllClose(x.Data.Select(v => 0.5 * v * (1 + ErfRef(v / Math.Sqrt(2)))).ToArray(), exact, 1e-6, 1e-7);
        var approx = Run1("Gelu", 20, [x], [NodeAttribute.Of("approximate", "tanh")]);
        AllClose(x.Data.Select(v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * Math.Pow(v, 3))))).ToArray(), approx, 1e-5, 1e-6);
    }

    [Fact]
    public void SigmoidAndTanhAreStableAtExtremes()
    {
        float[] v = [-1000f, -100f, -88f, -20f, -1f, 0f, 1f, 20f, 88f, 100f, 1000f, float.NegativeInfinity, float.PositiveInfinity];
        var s = Run1("Sigmoid", 13, [F(v, v.Length)]).As<float>().Data;
        for (int i = 0; i < v.Length; i++)
        {
            double want = v[i] < 0 ? Math.Exp(v[i]) / (1 + Math.Exp(v[i])) : 1 / (1 + Math.Exp(-v[i]));
            Assert.False(float.IsNaN(s[i]));
            Assert.True(Math.Abs(s[i] - want) <= 2e-7 * want + 1e-45, $"sigmoid({v[i]}) = {s[i]}, want {want}");
        }
        Assert.True(s[1] > 0); // 3.7e-44 survives as a subnormal instead of flushing to 0
        var t = Run1("Tanh", 13, [F(v, v.Length)]).As<float>().Data;
        for (int i = 0; i < v.Length; i++) Assert.True(Math.Abs(t[i] - Math.Tanh(v[i])) <= 1e-6, $"tanh({v[i]}) = {t[i]}");
        Assert.True(float.IsNaN(Run1("Sigmoid", 13, [F([float.NaN], 1)]).As<float>().Data[0]));
    }
}
