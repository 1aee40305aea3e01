using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>ONNX <c>auto_pad</c> values shared by convolution and pooling operators.</summary>
public enum AutoPad
{
    /// <summary>Explicit <c>pads</c> (default).</summary>
    NotSet,
    /// <summary>No padding; windows that would cross the border are dropped.</summary>
    Valid,
    /// <summary>Output size = ceil(in / stride); odd total padding puts the extra element at the end.</summary>
    SameUpper,
    /// <summary>Output size = ceil(in / stride); odd total padding puts the extra element at the beginning.</summary>
    SameLower,
}

/// <summary>
/// The sliding-window attributes of Conv, ConvTranspose, ConvInteger, QLinearConv, MaxPool, AveragePool, LpPool
/// and friends, read once from a node. Absent attributes stay null and take their ONNX defaults when
/// resolved against concrete shapes by <see cref="ConvGeometry"/>.
/// </summary>
public sealed record WindowAttributes
{
    public long[]? KernelShape { get; init; }
    public long[]? Strides { get; init; }
    public long[]? Dilations { get; init; }
    /// <summary>ONNX layout: [x1_begin, x2_begin, …, x1_end, x2_end, …].</summary>
    public long[]? Pads { get; init; }
    public AutoPad AutoPad { get; init; }
    public int Group { get; init; } = 1;
    /// <summary>Pooling only: round the output size up instead of down.</summary>
    public bool CeilMode { get; init; }
    /// <summary>ConvTranspose only: extra elements added to one side of the output.</summary>
    public long[]? OutputPadding { get; init; }
    /// <summary>ConvTranspose only: requested output size (spatial dims, or N, C and spatial dims).</summary>
    public long[]? OutputShape { get; init; }
    /// <summary>
    /// Node description prefixed to error messages. Empty by default because the session already prefixes
    /// kernel errors with the node; set it (<c>attrs with { Where = node.Describe() }</c>) when used elsewhere.
    /// </summary>
    public string Where { get; init; } = "";

    /// <summary>Reads kernel_shape, strides, dilations, pads, auto_pad, group, ceil_mode, output_padding, output_shape.</summary>
    public static WindowAttributes FromNode(Node node)
    {
        string autoPad = node.GetString("auto_pad", "NOTSET");
        var mode = autoPad switch
        {
            "NOTSET" or "" => AutoPad.NotSet,
            "VALID" => AutoPad.Valid,
            "SAME_UPPER" => AutoPad.SameUpper,
            "SAME_LOWER" => AutoPad.SameLower,
            _ => throw new QuantSharpException($"unknown auto_pad '{autoPad}'"),
        };
        long group = node.GetInt("group", 1);
        if (group < 1 || group > int.MaxValue) throw new QuantSharpException($"group {group} must be positive");
        return new WindowAttributes
        {
            KernelShape = node.GetInts("kernel_shape"),
            Strides = node.GetInts("strides"),
            Dilations = node.GetInts("dilations"),
            Pads = node.GetInts("pads"),
            AutoPad = mode,
            Group = (int)group,
            CeilMode = node.GetInt("ceil_mode", 0) != 0,
            OutputPadding = node.GetInts("output_padding"),
            OutputShape = node.GetInts("output_shape"),
        };
    }
}

/// <summary>
/// Geometry of one N-D sliding-window operation resolved against concrete shapes: kernel size, strides,
/// dilations, effective begin/end pads (after auto_pad) and output spatial size. Inputs are NC(D1..Dn).
/// <para>Conv / pooling: output index o reads input positions o·stride − padBegin + k·dilation for k in [0, kernel).</para>
/// <para>ConvTranspose: input index i scatters to output positions i·stride − padBegin + k·dilation.</para>
/// Construct with <see cref="ForConv"/>, <see cref="ForPool"/> or <see cref="ForConvTranspose"/>.
/// </summary>
public sealed class ConvGeometry
{
    private ConvGeometry(int rank)
    {
        InputSpatial = new int[rank];
        Kernel = new int[rank];
        Strides = new int[rank];
        Dilations = new int[rank];
        PadsBegin = new int[rank];
        PadsEnd = new int[rank];
        OutputSpatial = new int[rank];
        OutputPadding = new int[rank];
    }

    /// <summary>Number of spatial dimensions (input rank − 2).</summary>
    public int SpatialRank => Kernel.Length;
    public int Batch { get; private init; }
    /// <summary>Input channels (C).</summary>
    public int InputChannels { get; private init; }
    /// <summary>Output channels (M for conv, C for pooling, group·M/group for ConvTranspose).</summary>
    public int OutputChannels { get; private init; }
    public int Group { get; private init; } = 1;
    public int[] InputSpatial { get; }
    public int[] Kernel { get; }
    public int[] Strides { get; }
    public int[] Dilations { get; }
    public int[] PadsBegin { get; }
    public int[] PadsEnd { get; }
    public int[] OutputSpatial { get; }
    /// <summary>ConvTranspose output_padding (zeros otherwise).</summary>
    public int[] OutputPadding { get; }

    public int InputChannelsPerGroup => InputChannels / Group;
    public int OutputChannelsPerGroup => OutputChannels / Group;
    /// <summary>Product of the kernel dimensions.</summary>
    public int KernelSize => ShapeUtil.Product(Kernel);
    public int InputSpatialSize => ShapeUtil.Product(InputSpatial);
    public int OutputSpatialSize => ShapeUtil.Product(OutputSpatial);
    /// <summary>Extent of a dilated kernel along axis d: (k − 1)·dilation + 1.</summary>
    public int DilatedKernel(int d) => (Kernel[d] - 1) * Dilations[d] + 1;
    /// <summary>True when every pad is zero.</summary>
    public bool HasPadding => PadsBegin.Any(p => p != 0) || PadsEnd.Any(p => p != 0);
    /// <summary>The full output shape [N, outputChannels, spatial…].</summary>
    public int[] OutputShape() => [Batch, OutputChannels, .. OutputSpatial];
    /// <summary>Effective pads in ONNX layout [begins…, ends…].</summary>
    public int[] Pads() => [.. PadsBegin, .. PadsEnd];

    /// <summary>
    /// Conv / ConvInteger / QLinearConv: input X [N, C, D1..Dn], weight W [M, C/group, k1..kn].
    /// kernel_shape defaults to W's spatial dims (and must agree with them when given).
    /// </summary>
    public static ConvGeometry ForConv(WindowAttributes a, ReadOnlySpan<int> inputShape, ReadOnlySpan<int> weightShape)
    {
        int rank = SpatialRankOf(a, inputShape);
        if (weightShape.Length != inputShape.Length)
            throw Error(a, $"weight rank {weightShape.Length} does not match input rank {inputShape.Length}");
        int c = inputShape[1], m = weightShape[0];
        if (c % a.Group != 0 || m % a.Group != 0)
            throw Error(a, $"input channels {c} and output channels {m} must be divisible by group {a.Group}");
        if (weightShape[1] * a.Group != c)
            throw Error(a, $"weight {ShapeUtil.Format(weightShape)} expects {weightShape[1] * a.Group} input channels for group {a.Group}, input has {c}");
        var g = new ConvGeometry(rank) { Batch = inputShape[0], InputChannels = c, OutputChannels = m, Group = a.Group };
        g.FillCommon(a, inputShape, weightShape[2..]);
        g.ResolveForward(a, ceilMode: false);
        return g;
    }

    /// <summary>
    /// MaxPool / AveragePool / LpPool: input X [N, C, D1..Dn]; kernel_shape is required.
    /// With ceil_mode the output size is rounded up, but a last window that would start entirely in the end
    /// padding is dropped (it would see no input element).
    /// </summary>
    public static ConvGeometry ForPool(WindowAttributes a, ReadOnlySpan<int> inputShape)
    {
        int rank = SpatialRankOf(a, inputShape);
        if (a.KernelShape is null) throw Error(a, "kernel_shape is required");
        var k = new int[rank];
        for (int d = 0; d < rank; d++) k[d] = ToInt(a, a.KernelShape, d, "kernel_shape");
        var g = new ConvGeometry(rank) { Batch = inputShape[0], InputChannels = inputShape[1], OutputChannels = inputShape[1] };
        g.FillCommon(a, inputShape, k);
        g.ResolveForward(a, a.CeilMode);
        return g;
    }

    /// <summary>
    /// ConvTranspose: input X [N, C, D1..Dn], weight W [C, M/group, k1..kn], output channels M.
    /// Output size = stride·(in − 1) + output_padding + (k − 1)·dilation + 1 − padBegin − padEnd; when
    /// output_shape is given (or auto_pad is SAME_*) the pads are derived from it.
    /// </summary>
    public static ConvGeometry ForConvTranspose(WindowAttributes a, ReadOnlySpan<int> inputShape, ReadOnlySpan<int> weightShape)
    {
        int rank = SpatialRankOf(a, inputShape);
        if (weightShape.Length != inputShape.Length)
            throw Error(a, $"weight rank {weightShape.Length} does not match input rank {inputShape.Length}");
        int c = inputShape[1];
        if (weightShape[0] != c) throw Error(a, $"weight {ShapeUtil.Format(weightShape)} expects {weightShape[0]} input channels, input has {c}");
        if (c % a.Group != 0) throw Error(a, $"input channels {c} must be divisible by group {a.Group}");
        var g = new ConvGeometry(rank) { Batch = inputShape[0], InputChannels = c, OutputChannels = weightShape[1] * a.Group, Group = a.Group };
        g.FillCommon(a, inputShape, weightShape[2..]);
        for (int d = 0; d < rank; d++)
        {
            g.OutputPadding[d] = a.OutputPadding is null ? 0 : ToInt(a, a.OutputPadding, d, "output_padding");
            if (g.OutputPadding[d] < 0) throw Error(a, "output_padding must be non-negative");
        }

        int[]? requested = null;
        if (a.OutputShape is { Length: > 0 } os)
        {
            // output_shape may list only the spatial dims or the full N, C, spatial shape.
            int skip = os.Length == rank + 2 ? 2 : 0;
            if (os.Length - skip != rank) throw Error(a, $"output_shape has {os.Length} values, expected {rank}");
            requested = new int[rank];
            for (int d = 0; d < rank; d++) requested[d] = ToInt(a, os, d + skip, "output_shape");
        }
        else if (a.AutoPad is AutoPad.SameUpper or AutoPad.SameLower)
        {
            requested = new int[rank];
            for (int d = 0; d < rank; d++) requested[d] = checked(g.InputSpatial[d] * g.Strides[d]);
        }

        for (int d = 0; d < rank; d++)
        {
            long full = (long)g.Strides[d] * (g.InputSpatial[d] - 1) + g.OutputPadding[d] + g.DilatedKernel(d);
            if (requested is not null)
            {
                // total = stride·(in−1) + output_padding + dilated kernel − output; SAME_UPPER puts the smaller
                // half at the beginning, NOTSET/SAME_LOWER the larger half (ONNX ConvTranspose definition).
                long total = full - requested[d];
                if (total < 0) total = 0;
                int small = (int)(total / 2), large = (int)(total - total / 2);
                if (a.AutoPad == AutoPad.SameUpper) { g.PadsBegin[d] = small; g.PadsEnd[d] = large; }
                else { g.PadsBegin[d] = large; g.PadsEnd[d] = small; }
                g.OutputSpatial[d] = requested[d];
            }
            else
            {
                if (a.AutoPad == AutoPad.Valid) { g.PadsBegin[d] = 0; g.PadsEnd[d] = 0; }
                long o = full - g.PadsBegin[d] - g.PadsEnd[d];
                if (o < 0 || o > int.MaxValue) throw Error(a, $"output size {o} along spatial axis {d} is invalid");
                g.OutputSpatial[d] = (int)o;
            }
        }
        return g;
    }

    private static int SpatialRankOf(WindowAttributes a, ReadOnlySpan<int> inputShape)
    {
        if (inputShape.Length < 3) throw Error(a, $"input {ShapeUtil.Format(inputShape)} must have rank >= 3 (N, C, spatial…)");
        return inputShape.Length - 2;
    }

    private void FillCommon(WindowAttributes a, ReadOnlySpan<int> inputShape, ReadOnlySpan<int> kernelFromWeight)
    {
        int rank = SpatialRank;
        for (int d = 0; d < rank; d++)
        {
            InputSpatial[d] = inputShape[d + 2];
            Kernel[d] = kernelFromWeight[d];
            if (a.KernelShape is { } ks)
            {
                int k = ToInt(a, ks, d, "kernel_shape");
                if (k != Kernel[d]) throw Error(a, $"kernel_shape {Fmt(ks)} does not match the weight's spatial shape");
            }
            if (Kernel[d] < 1) throw Error(a, $"kernel size {Kernel[d]} along spatial axis {d} must be positive");
            Strides[d] = a.Strides is null ? 1 : ToInt(a, a.Strides, d, "strides");
            Dilations[d] = a.Dilations is null ? 1 : ToInt(a, a.Dilations, d, "dilations");
            if (Strides[d] < 1) throw Error(a, "strides must be positive");
            if (Dilations[d] < 1) throw Error(a, "dilations must be positive");
            if (a.Pads is { } p && a.AutoPad == AutoPad.NotSet)
            {
                if (p.Length != 2 * rank) throw Error(a, $"pads has {p.Length} values, expected {2 * rank}");
                PadsBegin[d] = ToInt(a, p, d, "pads");
                PadsEnd[d] = ToInt(a, p, d + rank, "pads");
                if (PadsBegin[d] < 0 || PadsEnd[d] < 0) throw Error(a, "pads must be non-negative");
            }
        }
    }

    private void ResolveForward(WindowAttributes a, bool ceilMode)
    {
        for (int d = 0; d < SpatialRank; d++)
        {
            int input = InputSpatial[d], s = Strides[d], dk = DilatedKernel(d);
            long o;
            switch (a.AutoPad)
            {
                case AutoPad.Valid:
                    // Only windows that fit: floor((in − dk) / s) + 1, or rounded up with ceil_mode.
                    PadsBegin[d] = PadsEnd[d] = 0;
                    o = input < dk ? 0 : (ceilMode ? CeilDiv(input - dk, s) : (input - dk) / s) + 1;
                    break;
                case AutoPad.SameUpper:
                case AutoPad.SameLower:
                {
                    // out = ceil(in / s); total pad = max(0, (out − 1)·s + dk − in).
                    o = CeilDiv(input, s);
                    long total = Math.Max(0, (o - 1) * s + dk - input);
                    int small = (int)(total / 2), large = (int)(total - total / 2);
                    if (a.AutoPad == AutoPad.SameUpper) { PadsBegin[d] = small; PadsEnd[d] = large; }
                    else { PadsBegin[d] = large; PadsEnd[d] = small; }
                    break;
                }
                default:
                {
                    long span = (long)input + PadsBegin[d] + PadsEnd[d] - dk;
                    if (span < 0) o = 0;
                    else if (ceilMode)
                    {
                        o = CeilDiv(span, s) + 1;
                        // The last window must start inside the input or the begin padding.
                        if ((o - 1) * s >= (long)input + PadsBegin[d]) o--;
                    }
                    else o = span / s + 1;
                    break;
                }
            }
            if (o > int.MaxValue) throw Error(a, $"output size {o} along spatial axis {d} is too large");
            OutputSpatial[d] = (int)o;
        }
    }

    private static long CeilDiv(long a, long b) => a >= 0 ? (a + b - 1) / b : -((-a) / b);

    private static int ToInt(WindowAttributes a, long[] values, int i, string name)
    {
        if (i >= values.Length) throw Error(a, $"{name} {Fmt(values)} has too few values");
        long v = values[i];
        if (v < int.MinValue || v > int.MaxValue) throw Error(a, $"{name} value {v} is out of range");
        return (int)v;
    }

    private static string Fmt(long[] v) => "[" + string.Join(",", v) + "]";

    private static QuantSharpException Error(WindowAttributes a, string msg) =>
        new(a.Where.Length > 0 ? $"node {a.Where}: {msg}" : msg);
}
