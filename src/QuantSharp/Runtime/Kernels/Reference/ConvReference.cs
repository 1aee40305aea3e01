using QuantSharp.Runtime.Operators;

namespace QuantSharp.Runtime.Kernels.Reference;

/// <summary>
/// Scalar N-D convolution and transposed convolution straight from the ONNX definitions, for tests and as the
/// fallback for spatial ranks the fast kernels do not cover. Layouts: X [N, C, D…], Y [N, M, O…];
/// Conv W [M, C/group, k…]; ConvTranspose W [C, M/group, k…].
/// </summary>
public static class ConvReference
{
    /// <summary>
    /// Y[n, m, o] = bias[m] + Σ_{c in group(m)} Σ_k X[n, c, o·stride − padBegin + k·dilation] · W[m, c − c0, k],
    /// taking X as zero outside the input.
    /// </summary>
    public static void Conv(ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y)
    {
        int rank = g.SpatialRank, cg = g.InputChannelsPerGroup, mg = g.OutputChannelsPerGroup;
        int inSize = g.InputSpatialSize, outSize = g.OutputSpatialSize, kSize = g.KernelSize;
        var o = new int[rank];
        var k = new int[rank];
        for (int n = 0; n < g.Batch; n++)
        {
            for (int m = 0; m < g.OutputChannels; m++)
            {
                int grp = m / mg;
                for (int oi = 0; oi < outSize; oi++)
                {
                    Unflatten(oi, g.OutputSpatial, o);
                    float sum = bias.IsEmpty ? 0f : bias[m];
                    for (int c = 0; c < cg; c++)
                    {
                        int xc = (n * g.InputChannels + grp * cg + c) * inSize;
                        for (int ki = 0; ki < kSize; ki++)
                        {
                            Unflatten(ki, g.Kernel, k);
                            int xi = 0;
                            bool inside = true;
                            for (int d = 0; d < rank && inside; d++)
                            {
                                int pos = o[d] * g.Strides[d] - g.PadsBegin[d] + k[d] * g.Dilations[d];
                                inside = pos >= 0 && pos < g.InputSpatial[d];
                                xi = xi * g.InputSpatial[d] + pos;
                            }
                            if (inside) sum += x[xc + xi] * w[(m * cg + c) * kSize + ki];
                        }
                    }
                    y[(n * g.OutputChannels + m) * outSize + oi] = sum;
                }
            }
        }
    }

    /// <summary>
    /// Y[n, m, i·stride − padBegin + k·dilation] += X[n, c, i] · W[c, m − m0, k] for c in group(m), plus bias;
    /// positions outside the output are dropped (they are the pads).
    /// </summary>
    public static void ConvTranspose(ConvGeometry g, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y)
    {
        int rank = g.SpatialRank, cg = g.InputChannelsPerGroup, mg = g.OutputChannelsPerGroup;
        int inSize = g.InputSpatialSize, outSize = g.OutputSpatialSize, kSize = g.KernelSize;
        for (int n = 0; n < g.Batch; n++)
            for (int m = 0; m < g.OutputChannels; m++)
                y.Slice((n * g.OutputChannels + m) * outSize, outSize).Fill(bias.IsEmpty ? 0f : bias[m]);
        var i = new int[rank];
        var k = new int[rank];
        for (int n = 0; n < g.Batch; n++)
        {
            for (int c = 0; c < g.InputChannels; c++)
            {
                int grp = c / cg;
                for (int ii = 0; ii < inSize; ii++)
                {
                    Unflatten(ii, g.InputSpatial, i);
                    float xv = x[(n * g.InputChannels + c) * inSize + ii];
                    for (int mm = 0; mm < mg; mm++)
                    {
                        int m = grp * mg + mm;
                        for (int ki = 0; ki < kSize; ki++)
                        {
                            Unflatten(ki, g.Kernel, k);
                            int yi = 0;
                            bool inside = true;
                            for (int d = 0; d < rank && inside; d++)
                            {
                                int pos = i[d] * g.Strides[d] - g.PadsBegin[d] + k[d] * g.Dilations[d];
                                inside = pos >= 0 && pos < g.OutputSpatial[d];
                                yi = yi * g.OutputSpatial[d] + pos;
                            }
                            if (inside) y[(n * g.OutputChannels + m) * outSize + yi] += xv * w[(c * mg + mm) * kSize + ki];
                        }
                    }
                }
            }
        }
    }

    private static void Unflatten(int index, int[] dims, int[] result)
    {
        for (int d = dims.Length - 1; d >= 0; d--)
        {
            result[d] = index % dims[d];
            index /= dims[d];
        }
    }
}
