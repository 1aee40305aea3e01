using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.Quantization;

public class DequantizeLinearTests
{
    [Fact]
    public void EveryIntegerTypePerTensor()
    {
        var r = new Random(11);
        foreach (var t in new[] { DataType.UInt8, DataType.Int8, DataType.UInt16, DataType.Int16, DataType.UInt4, DataType.Int4 })
        {
            var (lo, hi) = RangeOf(t);
            var q = RandomInts(r, 30, lo, hi);
            q[0] = lo; q[1] = hi;
            int zp = RandomInts(r, 1, lo, hi)[0];
            var y = Run1("DequantizeLinear", [Ints(t, q, 30), FScalar(0.125f), Ints(t, [zp])]);
            Assert.Equal(DataType.Float, y.DataType);
            Assert.Equal(q.Select(v => (float)(v - zp) * 0.125f), FloatsOf(y));
        }
    }

    [Fact]
    public void Int32WithoutZeroPoint()
    {
        var q = Ints(DataType.Int32, [int.MinValue + 1, -70000, 0, 12345, int.MaxValue], 5);
        var y = Run1("DequantizeLinear", [q, FScalar(0.5f)], opset: 10);
        Assert.Equal(IntsOf(q).Select(v => (float)v * 0.5f), FloatsOf(y));
    }

    [Fact]
    public void PerAxisAndFloat16Output()
    {
        var r = new Random(12);
        int[] shape = [3, 4];
        var q = RandomInts(r, 12, 0, 255);
        var zp = RandomInts(r, 4, 0, 255);
        var s = RandomFloats(r, 4, 0.01f, 1f);
        var y = Run1("DequantizeLinear", [Ints(DataType.UInt8, q, shape), F(s, 4), Ints(DataType.UInt8, zp, 4)], [A("axis", 1)], opset: 13);
        Assert.Equal(q.Select((v, i) => (float)(v - zp[i % 4]) * s[i % 4]), FloatsOf(y));

        var sh = new Tensor<Half>(s.Select(v => (Half)v).ToArray(), [4]);
        var yh = Run1("DequantizeLinear", [Ints(DataType.UInt8, q, shape), sh, Ints(DataType.UInt8, zp, 4)], [A("axis", -1)]);
        Assert.Equal(DataType.Float16, yh.DataType);
        Assert.Equal(q.Select((v, i) => (Half)((float)(v - zp[i % 4]) * (float)sh.Data[i % 4])), yh.As<Half>().Data);

        // output_dtype float16 with a float scale.
        var yo = Run1("DequantizeLinear", [Ints(DataType.UInt8, q, shape), F(s, 4), Ints(DataType.UInt8, zp, 4)], [A("axis", 1), A("output_dtype", (long)DataType.Float16)], opset: 23);
        Assert.Equal(DataType.Float16, yo.DataType);
        Assert.Equal(q.Select((v, i) => (Half)((float)(v - zp[i % 4]) * s[i % 4])), yo.As<Half>().Data);

        // output_dtype overrides the scale's type.
        var yf = Run1("DequantizeLinear", [Ints(DataType.UInt8, q, shape), sh, Ints(DataType.UInt8, zp, 4)], [A("axis", 1), A("output_dtype", (long)DataType.Float)], opset: 23);
        Assert.Equal(DataType.Float, yf.DataType);
        Assert.Equal(q.Select((v, i) => (float)(v - zp[i % 4]) * (float)sh.Data[i % 4]), FloatsOf(yf));
    }

    [Fact]
    public void ZeroPointTypeMustMatch()
    {
        var ex = Assert.Throws<QuantSharpException>(() =>
            Run1("DequantizeLinear", [Ints(DataType.UInt8, [1], 1), FScalar(1f), Ints(DataType.Int8, [0])]));
        Assert.Contains("x_zero_point", ex.Message);
    }
}
