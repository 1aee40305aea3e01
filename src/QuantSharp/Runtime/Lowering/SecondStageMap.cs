using System.Runtime.Intrinsics;
using QuantSharp.Quantization.Math;
using QuantSharp.Runtime.Operators.Quantization;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// The code-to-code map of DequantizeLinear → Add(bias[c]) → QuantizeLinear that follows a quantized MatMul:
/// y2 = sat(round_half_even(((float)(y1 − z1)·s1 + bias[c]) / s2) + z2), every operation in float as the unlowered
/// graph's kernels do it (DequantizeLinear's product, the float Add, QuantizeLinear's quotient). The scalar
/// reference is a per-channel 256-entry table built with the QuantizeLinear kernel itself; the vector form runs the
/// same float operations 16 lanes at a time and equals the table for every code.
/// </summary>
internal sealed class SecondStageMap
{
    private readonly float _s1, _s2;
    private readonly int _z1, _z2, _inMin, _qmin, _qmax;
    private readonly float[] _bias;

    /// <summary>Table [c · 256 + (y1 − type minimum)] of second codes as bytes (s8 two's complement).</summary>
    public byte[] Table { get; }

    public SecondStageMap(DataType firstType, float s1, int z1, float[] bias, DataType secondType, float s2, int z2)
    {
        _s1 = s1;
        _z1 = z1;
        _bias = bias;
        _s2 = s2;
        _z2 = z2;
        _inMin = QuantMath.Range(firstType).Min;
        (_qmin, _qmax) = QuantMath.Range(secondType);
        int n = bias.Length;
        Table = new byte[n * 256];
        var v = new float[256];
        for (int c = 0; c < n; c++)
        {
            for (int i = 0; i < 256; i++) v[i] = (float)(_inMin + i - z1) * s1 + bias[c];
            QuantizeLinearKernel.QuantizeToBytes(v, s2, z2, _qmin, _qmax, Table.AsSpan(c * 256, 256));
        }
    }

    /// <summary>Scalar reference: the second code of first code <paramref name="y1"/> in channel c, as an int in the output type's range.</summary>
    public int Apply(int y1, int c)
    {
        byte b = Table[(c << 8) + y1 - _inMin];
        return _qmin < 0 ? (sbyte)b : b;
    }

    /// <summary>Maps a row of first codes (channel j = column j, ints in the first type's range) to second codes in place.</summary>
    public void ApplyRow(Span<int> codes)
    {
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // QuantizeLinearKernel.QuantizeToBytes' lane formula on DequantizeLinear + Add computed in float.
            var z1 = Vector512.Create(_z1);
            var s1 = Vector512.Create(_s1);
            var s2 = Vector512.Create(_s2);
            var lo = Vector512.Create((float)(_qmin - _z2));
            var hi = Vector512.Create((float)(_qmax - _z2));
            var z2 = Vector512.Create(_z2);
            for (; j <= codes.Length - 16; j += 16)
            {
                var v = Vector512.ConvertToSingle(Vector512.Create<int>(codes.Slice(j, 16)) - z1) * s1 + Vector512.Create<float>(_bias.AsSpan(j, 16));
                var q = Vector512.Round(v / s2);
                q = Vector512.ConditionalSelect(Vector512.Equals(q, q), q, Vector512<float>.Zero);
                (Vector512.ConvertToInt32(Vector512.Min(Vector512.Max(q, lo), hi)) + z2).CopyTo(codes.Slice(j, 16));
            }
        }
        for (; j < codes.Length; j++) codes[j] = Apply(codes[j], j);
    }
}
