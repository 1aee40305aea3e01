namespace QuantSharp.Llm.Quantization;

/// <summary>GPTQ settings (defaults are the paper's).</summary>
public sealed record GptqOptions
{
    /// <summary>λ = Damp·mean(diag H) is added to the diagonal before inversion.</summary>
    public double Damp { get; init; } = 0.01;
    /// <summary>Quantize columns in decreasing order of diag(H) ("act-order").</summary>
    public bool ActOrder { get; init; } = true;
    /// <summary>Columns whose error is propagated eagerly before the rest of the row is updated at once (lazy batch).</summary>
    public int BlockSize { get; init; } = 128;
    /// <summary>
    /// Choose each group's grid by the range search of <see cref="MatrixQuantizer.InitGroup"/> weighted by diag(H) (as the
    /// reference GPTQ code's MSE grid search for the scale) instead of plain min/max.
    /// </summary>
    public bool ClipSearch { get; init; } = true;
}

/// <summary>
/// GPTQ (Frantar et al., 2022) for one matrix W [rows, cols] with input Hessian H = 2·XᵀX/N [cols, cols]:
/// columns are quantized one at a time and each one's rounding error is spread over the columns not yet quantized so
/// that the layer output on the calibration inputs changes least. With U the upper Cholesky factor of H⁻¹
/// (H⁻¹ = UᵀU), after quantizing column j: e = (w_j − q(w_j)) / U[j,j]; w_k −= e·U[j,k] for every later column k.
/// <list type="bullet">
/// <item>Dampening: H += λ·I, λ = 0.01·mean(diag H); a column no token touched (H[j,j] = 0) gets H[j,j] = 1 and weight 0.</item>
/// <item>Act-order: columns are visited by decreasing H[j,j]; the factorisation is done on the permuted H.</item>
/// <item>Groups: a group's grid is chosen when the first of its columns is reached, from the values its weights have at
/// that moment (pending updates included); its other columns are rounded on that grid when they are reached. Groups are
/// the format's own blocks in the original column order, so the result is an ordinary matrix of that format.</item>
/// <item>Group grids: the diag(H)-weighted range search (<see cref="GptqOptions.ClipSearch"/>), or min/max.</item>
/// <item>Lazy batches: inside a batch of <see cref="GptqOptions.BlockSize"/> columns updates are applied at once; the
/// columns after the batch receive the batch's accumulated errors in one pass at its end (same result, fewer passes).</item>
/// </list>
/// Rows are independent given U, so they are processed in parallel.
/// </summary>
public static class Gptq
{
    public static WeightMatrix Quantize(WeightMatrix source, string type, double[] hessian, GptqOptions? options = null, int threads = 0)
        => Quantize(source.Name, source.Rows, source.Cols, MatrixQuantizers.Values(source), type, hessian, options, threads);

    public static WeightMatrix Quantize(string name, int rows, int cols, float[] values, string type, double[] hessian, GptqOptions? options = null, int threads = 0)
    {
        options ??= new GptqOptions();
        if (type == "f32") return F32Matrix.FromArray(name, rows, cols, values);
        if (hessian.Length != (long)cols * cols) throw new ArgumentException($"{name}: Hessian has {hessian.Length} entries, expected {cols}x{cols}");
        var w = (float[])values.Clone();
        var h = (double[])hessian.Clone();
        for (int j = 0; j < cols; j++)
            if (h[(long)j * cols + j] == 0)
            {
                h[(long)j * cols + j] = 1;
                for (int r = 0; r < rows; r++) w[(long)r * cols + j] = 0;
            }
        double mean = 0;
        for (int j = 0; j < cols; j++) mean += h[(long)j * cols + j];
        double lambda = options.Damp * mean / cols;
        for (int j = 0; j < cols; j++) h[(long)j * cols + j] += lambda;

        int[] perm = Enumerable.Range(0, cols).ToArray();
        if (options.ActOrder) perm = perm.OrderByDescending(j => h[(long)j * cols + j]).ThenBy(j => j).ToArray();
        var hp = new double[(long)cols * cols];
        for (int a = 0; a < cols; a++)
            for (int b = 0; b < cols; b++) hp[(long)a * cols + b] = h[(long)perm[a] * cols + perm[b]];
        var u = UpperCholeskyOfInverse(hp, cols, name);

        var q = MatrixQuantizers.Create(type, name, rows, cols);
        q.PrepareTensor(w);
        int g = q.GroupSize, bs = Math.Max(1, options.BlockSize);
        var diag = new float[cols];
        for (int j = 0; j < cols; j++) diag[j] = (float)h[(long)j * cols + j];
        var pos = new int[cols]; // pos[c] = place of original column c in the visiting order
        for (int i = 0; i < cols; i++) pos[perm[i]] = i;

        Parallel.For(0, rows, new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : Environment.ProcessorCount }, r =>
        {
            var row = new double[cols]; // permuted order
            for (int i = 0; i < cols; i++) row[i] = w[(long)r * cols + perm[i]];
            var err = new double[cols];
            var started = new bool[(cols + g - 1) / g];
            var group = new float[g];
            for (int i1 = 0; i1 < cols; i1 += bs)
            {
                int i2 = Math.Min(cols, i1 + bs);
                for (int i = i1; i < i2; i++)
                {
                    int c = perm[i], gi = c / g;
                    if (!started[gi])
                    {
                        // The group's current values: columns inside this batch are up to date; later ones still owe
                        // this batch's errors so far.
                        int s = gi * g, n = Math.Min(g, cols - s);
                        for (int k = 0; k < n; k++)
                        {
                            int p = pos[s + k];
                            double v = row[p];
                            if (p >= i2)
                                for (int t = i1; t < i; t++) v -= err[t] * u[(long)t * cols + p];
                            group[k] = (float)v;
                        }
                        q.InitGroup(r, gi, group.AsSpan(0, n), options.ClipSearch ? diag.AsSpan(s, n) : default);
                        started[gi] = true;
                    }
                    double x = row[i];
                    double qv = q.Quantize(r, c, (float)x);
                    double e = (x - qv) / u[(long)i * cols + i];
                    err[i] = e;
                    for (int k = i + 1; k < i2; k++) row[k] -= e * u[(long)i * cols + k];
                }
                // Lazy batch update of everything after the batch.
                for (int k = i2; k < cols; k++)
                {
                    double d = 0;
                    for (int t = i1; t < i2; t++) d += err[t] * u[(long)t * cols + k];
                    row[k] -= d;
                }
            }
        });
        return q.Build();
    }

    /// <summary>U with UᵀU = H⁻¹ (H symmetric positive definite, n×n row-major): H = LLᵀ, H⁻¹ = L⁻ᵀL⁻¹, then U = chol(H⁻¹)ᵀ.</summary>
    public static double[] UpperCholeskyOfInverse(double[] h, int n, string name)
    {
        var l = Cholesky(h, n, name);
        // Inverse of the lower-triangular L by forward substitution, column by column.
        var li = new double[(long)n * n];
        for (int j = 0; j < n; j++)
        {
            li[(long)j * n + j] = 1.0 / l[(long)j * n + j];
            for (int i = j + 1; i < n; i++)
            {
                double s = 0;
                for (int k = j; k < i; k++) s += l[(long)i * n + k] * li[(long)k * n + j];
                li[(long)i * n + j] = -s / l[(long)i * n + i];
            }
        }
        // H⁻¹ = L⁻ᵀ·L⁻¹: (H⁻¹)[a,b] = Σ_k L⁻¹[k,a]·L⁻¹[k,b], k ≥ max(a, b).
        var inv = new double[(long)n * n];
        for (int a = 0; a < n; a++)
            for (int b = a; b < n; b++)
            {
                double s = 0;
                for (int k = b; k < n; k++) s += li[(long)k * n + a] * li[(long)k * n + b];
                inv[(long)a * n + b] = s;
                inv[(long)b * n + a] = s;
            }
        var lo = Cholesky(inv, n, name);
        var u = new double[(long)n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) u[(long)j * n + i] = lo[(long)i * n + j];
        return u;
    }

    /// <summary>Lower-triangular L with LLᵀ = A.</summary>
    public static double[] Cholesky(double[] a, int n, string name)
    {
        var l = new double[(long)n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = a[(long)i * n + j];
                for (int k = 0; k < j; k++) s -= l[(long)i * n + k] * l[(long)j * n + k];
                if (i == j)
                {
                    if (!(s > 0)) throw new QuantSharpException($"{name}: the calibration Hessian is not positive definite even after dampening (increase the dampening or the calibration text)");
                    l[(long)i * n + i] = Math.Sqrt(s);
                }
                else l[(long)i * n + j] = s / l[(long)j * n + j];
            }
        return l;
    }
}
