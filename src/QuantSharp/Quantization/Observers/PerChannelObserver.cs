using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Observers;

/// <summary>
/// One observer per index along a channel axis (weights: axis 0 of Conv, the output axis of MatMul/Gemm
/// weights). Each channel's elements are gathered and fed to that channel's observer, made by
/// <paramref name="factory"/>; <see cref="ComputeParams"/> gives per-axis parameters (scale of shape [C]).
/// </summary>
public sealed class PerChannelObserver(Func<IObserver> factory, int axis)
{
    private IObserver[]? _channels;

    public int Axis { get; } = axis;
    public int Channels => _channels?.Length ?? 0;
    public IObserver Channel(int c) => (_channels ?? throw new QuantSharpException("per-channel observer has observed nothing"))[c];

    /// <summary>Observes a tensor of <paramref name="shape"/>; every call must have the same number of channels.</summary>
    public void Observe(ReadOnlySpan<float> x, ReadOnlySpan<int> shape)
    {
        if (ShapeUtil.Product(shape) != x.Length)
            throw new QuantSharpException($"{x.Length} values do not match shape {ShapeUtil.Format(shape)}");
        int a = ShapeUtil.NormalizeAxis(Axis, shape.Length);
        int c = shape[a], outer = 1, inner = 1;
        for (int d = 0; d < a; d++) outer *= shape[d];
        for (int d = a + 1; d < shape.Length; d++) inner *= shape[d];
        var channels = Ensure(c);
        var buffer = new float[outer * inner];
        for (int ch = 0; ch < c; ch++)
        {
            for (int o = 0; o < outer; o++) x.Slice((o * c + ch) * inner, inner).CopyTo(buffer.AsSpan(o * inner, inner));
            channels[ch].Observe(buffer);
        }
    }

    public void Observe(Tensor<float> x) => Observe(x.Data, x.Shape);

    private IObserver[] Ensure(int c)
    {
        if (_channels == null)
        {
            _channels = new IObserver[c];
            for (int i = 0; i < c; i++) _channels[i] = factory();
        }
        else if (_channels.Length != c)
            throw new QuantSharpException($"per-channel observer on axis {Axis} saw {_channels.Length} channels before and {c} now");
        return _channels;
    }

    /// <summary>Per-axis parameters; the scheme's granularity is set to per-axis on this observer's axis.</summary>
    public QuantParams ComputeParams(QuantScheme scheme)
    {
        var channels = _channels ?? throw new QuantSharpException("per-channel observer has observed nothing");
        var s = scheme.PerAxis(Axis).Validate();
        var perTensor = scheme.PerTensor();
        var scale = new float[channels.Length];
        var zp = new int[channels.Length];
        for (int c = 0; c < channels.Length; c++)
        {
            var (min, max) = channels[c].ComputeRange(perTensor);
            (scale[c], zp[c]) = QuantParams.Compute(min, max, perTensor);
        }
        return new QuantParams(s, scale, zp, [channels.Length]);
    }

    public void Merge(PerChannelObserver other)
    {
        if (other._channels == null) return;
        var mine = Ensure(other._channels.Length);
        for (int c = 0; c < mine.Length; c++) mine[c].Merge(other._channels[c]);
    }
}
