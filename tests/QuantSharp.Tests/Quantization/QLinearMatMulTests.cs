using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.Quantization;

public class QLinearMatMulTests
{
    [Theory]
    [InlineData(DataType.UInt8, DataType.UInt8, DataType.UInt8, false)]
    [InlineData(DataType.Int8, DataType.Int8, DataType.Int8, false)]
    [InlineData(DataType.UInt8, DataType.Int8, DataType.UInt8, true)]
    [InlineData(DataType.Int8, DataType.UInt8, DataType.Int8, true)]
    public void MatchesDequantizeMatMulQuantize(DataType ta, DataType tb, DataType ty, bool perChannel)
    {
        var r = new Random((int)ta * 31 + (int)tb * 7 + (perChannel ? 1 : 0));
        int batch = 2, m = 4, k = 9, n = 5;
        var (alo, ahi) = RangeOf(ta);
        var (blo, bhi) = RangeOf(tb);
        var (ylo, yhi) = RangeOf(ty);
        var a = RandomInts(r, batch * m * k, alo, ahi);
        var b = RandomInts(r, k * n, blo, bhi);
        var aS = perChannel ? RandomFloats(r, m, 0.01f, 0.05f) : [0.02f];
        var aZ = perChannel ? RandomInts(r, m, alo / 2, ahi / 2) : [(alo + ahi) / 2];
        var bS = perChannel ? RandomFloats(r, n, 0.005f, 0.03f) : [0.015f];
        var bZ = perChannel ? RandomInts(r, n, blo / 2, bhi / 2) : [(blo + bhi) / 3];
        float yS = 0.02f;
        int yZ = (ylo + yhi) / 2 + 3;
        int[] ps(int len) => perChannel ? [len] : [];
        var y = Run1("QLinearMatMul", [Ints(ta, a, batch, m, k), F(aS, ps(m)), Ints(ta, aZ, ps(m)),
            Ints(tb, b, k, n), F(bS, ps(n)), Ints(tb, bZ, ps(n)), FScalar(yS), Ints(ty, [yZ])]);
        Assert.Equal(ty, y.DataType);
        Assert.Equal([batch, m, n], y.Shape);
        var got = IntsOf(y);
        int off1 = 0, exactMismatch = 0;
        for (int t = 0; t < batch; t++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    int pa = perChannel ? i : 0, pb = perChannel ? j : 0;
                    // Integer path: acc · (sa·sb / sy), rounded half to even.
                    long acc = 0;
                    double real = 0;
                    for (int kk = 0; kk < k; kk++)
                    {
                        int av = a[(t * m + i) * k + kk] - aZ[pa], bv = b[kk * n + j] - bZ[pb];
                        acc += av * bv;
                        real += (double)(av * aS[pa]) * (bv * bS[pb]);
                    }
                    float mult = aS[pa] * bS[pb] / yS;
                    int exact = (int)Math.Clamp(Math.Round(acc * (double)mult, MidpointRounding.ToEven) + yZ, ylo, yhi);
                    int viaFloat = RefQuantize((float)real, yS, yZ, ty);
                    int g = got[(t * m + i) * n + j];
                    if (g != exact) exactMismatch++;
                    Assert.True(Math.Abs(g - viaFloat) <= 1, $"[{t},{i},{j}] got {g}, float reference {viaFloat}");
                    if (g != viaFloat) off1++;
                }
        Assert.Equal(0, exactMismatch);
        Assert.True(off1 <= batch * m * n / 10, $"{off1} results differ by one from the float reference");
    }

    [Fact]
    public void SaturatesOutput()
    {
        var a = Ints(DataType.UInt8, [255, 255, 0, 0], 2, 2);
        var b = Ints(DataType.UInt8, [255, 0, 255, 0], 2, 2);
        var y = Run1("QLinearMatMul", [a, FScalar(1f), Ints(DataType.UInt8, [0]), b, FScalar(1f), Ints(DataType.UInt8, [128]),
            FScalar(1f), Ints(DataType.Int8, [0])], opset: 10);
        // Row 0: (255·127 + 255·127, 255·−128 + 255·−128) → saturated to 127 and −128; row 1 is all zero.
        Assert.Equal([127, -128, 0, 0], IntsOf(y));
    }

    [Fact]
    public void Float16Scales()
    {
        var r = new Random(33);
        var a = RandomInts(r, 12, 0, 255);
        var b = RandomInts(r, 12, 0, 255);
        Tensor<Half> H(float v) => new([(Half)v], []);
        var y = Run1("QLinearMatMul", [Ints(DataType.UInt8, a, 3, 4), H(0.02f), Ints(DataType.UInt8, [120]),
            Ints(DataType.UInt8, b, 4, 3), H(0.01f), Ints(DataType.UInt8, [130]), H(0.05f), Ints(DataType.UInt8, [100])]);
        float mult = (float)(Half)0.02f * (float)(Half)0.01f / (float)(Half)0.05f;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
            {
                int acc = 0;
                for (int kk = 0; kk < 4; kk++) acc += (a[i * 4 + kk] - 120) * (b[kk * 3 + j] - 130);
                int want = (int)Math.Clamp(Math.Round(acc * (double)mult, MidpointRounding.ToEven) + 100, 0, 255);
                Assert.Equal(want, IntsOf(y)[i * 3 + j]);
            }
    }
}
