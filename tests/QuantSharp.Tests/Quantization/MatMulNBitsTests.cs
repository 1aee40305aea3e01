using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;
using static QuantSharp.Tests.Quantization.QuantGraph;

namespace QuantSharp.Tests.Quantization;

public class MatMulNBitsTests
{

    public static TheoryData<int, int, int, int, string, bool, bool, bool, bool> Cases() => new()
    {
        { 4, 32, 5, 16, "none", false, false, false, true },
        { 4, 40, 6, 16, "packed", false, true, false, true },   // K not a multiple of block_size: padded last block
        { 4, 40, 3, 32, "float", false, false, false, false },
        { 4, 48, 4, 16, "packed", true, true, false, true },    // g_idx (act-order block assignment)
        { 4, 33, 7, 16, "packed", false, true, true, false },   // float16 A, odd k_blocks → packed zero points padded
        { 8, 40, 5, 16, "packed", false, true, false, true },
        { 2, 40, 5, 16, "packed", false, false, false, true },
        { 2, 64, 3, 32, "none", false, true, false, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesDequantizedFloatMatMul(int bits, int k, int n, int blockSize, string zeroPoints, bool gIdx, bool bias, bool half, bool constant)
    {
        var r = new Random(bits * 1000 + k * 10 + n);
        int kBlocks = (k + blockSize - 1) / blockSize, blob = blockSize * bits / 8, maxCode = (1 << bits) - 1;
        // Codes per (n, k) with padding codes beyond K (they must not contribute).
        var codes = new int[n, kBlocks * blockSize];
        for (int j = 0; j < n; j++) for (int kk = 0; kk < kBlocks * blockSize; kk++) codes[j, kk] = r.Next(0, maxCode + 1);
        var bBytes = new byte[n * kBlocks * blob];
        int perByte = 8 / bits;
        for (int j = 0; j < n; j++)
            for (int kk = 0; kk < kBlocks * blockSize; kk++)
                bBytes[j * kBlocks * blob + kk / perByte] |= (byte)(codes[j, kk] << ((kk % perByte) * bits));
        var scales = RandomFloats(r, n * kBlocks, 0.01f, 0.1f);
        var zpInt = RandomInts(r, n * kBlocks, 0, maxCode);
        var zpFloat = RandomFloats(r, n * kBlocks, 0f, maxCode);
        int zpRow = (kBlocks * bits + 7) / 8;
        var zpPacked = new byte[n * zpRow];
        for (int j = 0; j < n; j++)
            for (int blk = 0; blk < kBlocks; blk++)
                zpPacked[j * zpRow + blk / perByte] |= (byte)(zpInt[j * kBlocks + blk] << ((blk % perByte) * bits));
        var gi = Enumerable.Range(0, k).Select(kk => gIdx ? (kk * 7 + 3) % kBlocks : kk / blockSize).ToArray();
        var biasV = RandomFloats(r, n, -1f, 1f);
        int m = 3;
        var a = RandomFloats(r, 2 * m * k, -1f, 1f);
        if (half) a = a.Select(v => (float)(Half)v).ToArray();

        // Reference: dequantize to float [N, K] and multiply in double.
        var want = new float[2 * m * n];
        for (int row = 0; row < 2 * m; row++)
            for (int j = 0; j < n; j++)
            {
                double acc = 0;
                for (int kk = 0; kk < k; kk++)
                {
                    int p = j * kBlocks + gi[kk];
                    float zp = zeroPoints switch { "packed" => zpInt[p], "float" => zpFloat[p], _ => 1 << (bits - 1) };
                    acc += (double)a[row * k + kk] * ((codes[j, kk] - zp) * scales[p]);
                }
                want[row * n + j] = (float)(acc + (bias ? biasV[j] : 0));
            }

        Tensor aT = half ? new Tensor<Half>(a.Select(v => (Half)v).ToArray(), [2, m, k]) : F(a, 2, m, k);
        Tensor S(float[] v) => half ? new Tensor<Half>(v.Select(x => (Half)x).ToArray(), [v.Length]) : F(v, v.Length);
        Tensor? zpT = zeroPoints switch
        {
            "packed" => new Tensor<byte>(zpPacked, [zpPacked.Length]),
            "float" => S(zpFloat),
            _ => null,
        };
        var attrs = new[] { A("K", k), A("N", n), A("bits", bits), A("block_size", blockSize), A("accuracy_level", 4) };
        var y = Run1("MatMulNBits", [aT, new Tensor<byte>(bBytes, [n, kBlocks, blob]), S(scales), zpT,
            gIdx ? Ints(DataType.Int32, gi, k) : null, bias ? S(biasV) : null], attrs, domain: "com.microsoft",
            constants: constant ? [1, 2, 3, 4, 5] : null);
        Assert.Equal([2, m, n], y.Shape);
        Assert.Equal(half ? DataType.Float16 : DataType.Float, y.DataType);
        var got = FloatsOf(y);
        for (int i = 0; i < want.Length; i++)
        {
            float tol = half ? 2e-2f + Math.Abs(want[i]) * 2e-3f : 1e-4f + Math.Abs(want[i]) * 1e-5f;
            Assert.True(Math.Abs(got[i] - want[i]) <= tol, $"element {i}: got {got[i]}, want {want[i]}");
        }
    }

    [Fact]
    public void RejectsWrongBlobShape()
    {
        var ex = Assert.Throws<QuantSharpException>(() => Run1("MatMulNBits",
            [F(new float[32], 1, 32), new Tensor<byte>(new byte[10], [2, 1, 5]), F(new float[2], 2)],
            [A("K", 32), A("N", 2), A("bits", 4), A("block_size", 32)], domain: "com.microsoft", constants: [1, 2]));
        Assert.Contains("B has 10 bytes", ex.Message);
    }

    [Fact]
    public void Int4PackingRoundTrips()
    {
        sbyte[] s = [-8, -1, 0, 7, 3];
        var packed = Int4.PackInt4(s);
        Assert.Equal(3, packed.Length);
        Assert.Equal(0xF8, packed[0]); // low nibble −8 (0x8), high nibble −1 (0xF)
        var back = new sbyte[5];
        Int4.UnpackInt4(packed, back);
        Assert.Equal(s, back);
        byte[] u = [0, 15, 9];
        var ub = new byte[3];
        Int4.UnpackUInt4(Int4.PackUInt4(u), ub);
        Assert.Equal(u, ub);
        Assert.Throws<QuantSharpException>(() => Int4.PackInt4([8]));
    }
}
