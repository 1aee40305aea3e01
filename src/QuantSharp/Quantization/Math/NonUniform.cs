namespace QuantSharp.Quantization.Math;

/// <summary>
/// Power-of-two (log2) quantization with <see cref="Bits"/> bits: one sign and M = 2^(Bits−1) − 1 magnitude levels,
/// x ≈ sign · Scale · 2^(m − M) for code ±m, m = 1 … M, and code 0 for zero (exactly representable). A magnitude
/// is rounded in the log domain, m = clamp(round_half_even(log2(|x| / Scale)) + M, 1, M), except that
/// |x| &lt; Scale · 2^(−M) (half the smallest level) maps to 0. NaN maps to 0; ±∞ saturate to ±M.
/// Dequantization multiplies by a power of two, so hardware can use a shift.
/// </summary>
public sealed record Log2Quantizer(int Bits, float Scale)
{
    public int Levels => (1 << (Bits - 1)) - 1;

    /// <summary>Scale = max |x| so that the top level is the largest magnitude (1 for a zero range).</summary>
    public static Log2Quantizer FromMaxAbs(int bits, double maxAbs)
    {
        if (bits < 2 || bits > 8) throw new QuantSharpException($"log2 quantization bit width {bits} is outside [2, 8]");
        float s = double.IsFinite(maxAbs) && maxAbs > 0 ? System.Math.Max((float)maxAbs, QuantParams.MinScale) : 1f;
        return new Log2Quantizer(bits, s);
    }

    public int Quantize(float x)
    {
        if (float.IsNaN(x) || x == 0) return 0;
        int m = Levels;
        double a = System.Math.Abs((double)x) / Scale;
        if (a < System.Math.Pow(2, -m)) return 0;
        double e = double.IsPositiveInfinity(a) ? m : QuantMath.RoundHalfToEven(System.Math.Log2(a)) + m;
        int code = (int)System.Math.Clamp(e, 1, m);
        return x < 0 ? -code : code;
    }

    public float Dequantize(int q) => q == 0 ? 0f : System.Math.Sign(q) * Scale * MathF.ScaleB(1f, System.Math.Abs(q) - Levels);

    public void Quantize(ReadOnlySpan<float> x, Span<int> q)
    {
        if (x.Length != q.Length) throw new QuantSharpException($"source has {x.Length} elements but destination has {q.Length}");
        for (int i = 0; i < x.Length; i++) q[i] = Quantize(x[i]);
    }

    public void Dequantize(ReadOnlySpan<int> q, Span<float> y)
    {
        if (q.Length != y.Length) throw new QuantSharpException($"source has {q.Length} elements but destination has {y.Length}");
        for (int i = 0; i < q.Length; i++) y[i] = Dequantize(q[i]);
    }
}

/// <summary>
/// Non-uniform quantization by a codebook of 2^Bits values fitted with 1-D k-means (Lloyd's algorithm): codes are
/// unsigned indices into <see cref="Centroids"/> (ascending) and a value maps to the nearest centroid (the lower
/// one on a tie). Fitting starts from the quantiles (k + 0.5) / K of the finite data and alternates assignment
/// (boundaries at midpoints between centroids) and update (each centroid becomes the mean of its values; an empty
/// cluster keeps its centroid) until no centroid moves or <c>maxIterations</c> is reached. NaN maps to the
/// centroid nearest 0. Pack codes with <see cref="CodePacking.Pack(ReadOnlySpan{int}, int, bool)"/> (unsigned).
/// </summary>
public sealed record Codebook(float[] Centroids)
{
    public static Codebook Fit(ReadOnlySpan<float> x, int bits, int maxIterations = 50)
    {
        if (bits < 1 || bits > 8) throw new QuantSharpException($"codebook bit width {bits} is outside [1, 8]");
        int k = 1 << bits;
        var data = new List<double>(x.Length);
        foreach (float v in x)
            if (float.IsFinite(v)) data.Add(v);
        if (data.Count == 0) return new Codebook(new float[k]);
        data.Sort();
        int n = data.Count;
        var prefix = new double[n + 1];
        for (int i = 0; i < n; i++) prefix[i + 1] = prefix[i] + data[i];
        var c = new double[k];
        for (int j = 0; j < k; j++) c[j] = data[System.Math.Min(n - 1, (int)((j + 0.5) / k * n))];
        for (int it = 0; it < maxIterations; it++)
        {
            bool moved = false;
            int start = 0;
            for (int j = 0; j < k; j++)
            {
                // Cluster j holds the sorted values up to (and, for ties, including) the midpoint to centroid j + 1.
                int end = j == k - 1 ? n : UpperBound(data, (c[j] + c[j + 1]) / 2, start);
                if (end > start)
                {
                    double mean = (prefix[end] - prefix[start]) / (end - start);
                    if (mean != c[j]) moved = true;
                    c[j] = mean;
                }
                start = end;
            }
            Array.Sort(c);
            if (!moved) break;
        }
        return new Codebook(c.Select(v => (float)v).ToArray());
    }

    private static int UpperBound(List<double> sorted, double value, int from)
    {
        int lo = from, hi = sorted.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid] <= value) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    public int Quantize(float x)
    {
        if (float.IsNaN(x)) x = 0;
        int lo = 0, hi = Centroids.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (x <= ((double)Centroids[mid] + Centroids[mid + 1]) / 2) hi = mid;
            else lo = mid + 1;
        }
        return lo;
    }

    public float Dequantize(int q) => Centroids[q];

    public void Quantize(ReadOnlySpan<float> x, Span<int> q)
    {
        if (x.Length != q.Length) throw new QuantSharpException($"source has {x.Length} elements but destination has {q.Length}");
        for (int i = 0; i < x.Length; i++) q[i] = Quantize(x[i]);
    }

    public void Dequantize(ReadOnlySpan<int> q, Span<float> y)
    {
        if (q.Length != y.Length) throw new QuantSharpException($"source has {q.Length} elements but destination has {y.Length}");
        for (int i = 0; i < q.Length; i++) y[i] = Dequantize(q[i]);
    }
}
