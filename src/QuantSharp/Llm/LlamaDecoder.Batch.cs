using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Kernels;

namespace QuantSharp.Llm;

/// <summary>Activations of a batch of prompt tokens, one row per token (row-major, rows padded to 16 floats).</summary>
internal sealed class BatchBuffers
{
    public BatchBuffers(LlamaConfig c, int capacity)
    {
        Capacity = capacity;
        X = new float[capacity * c.Dim];
        Xb = new float[capacity * c.Dim];
        Xb2 = new float[capacity * c.Dim];
        Q = new float[capacity * c.Dim];
        Hb = new float[capacity * c.HiddenDim];
        Hb2 = new float[capacity * c.HiddenDim];
        QDim = new Q8Batch(c.Dim, capacity);
        QHidden = new Q8Batch(c.HiddenDim, capacity);
        Tmp = new float[Math.Max(c.Dim, c.HiddenDim)];
    }

    public int Capacity { get; }
    public readonly float[] X, Xb, Xb2, Q, Hb, Hb2, Tmp;
    public readonly Q8Batch QDim, QHidden;
}

/// <summary>
/// Batched prompt processing and the pieces it shares with <see cref="Forward"/>. Every per-token operation of the
/// batch (RMSNorm, RoPE, attention, SwiGLU, activation quantization, the matrix products) is the same computation, in
/// the same order, as the token-by-token path, so <see cref="ForwardBatch"/> writes the same keys/values and returns
/// bit-identical logits: the block kernels define each (row, token) result independently of the batch
/// (see <see cref="QKernels"/>), reductions here have a fixed order, and element-wise vector functions depend only on
/// the element.
/// </summary>
public sealed partial class LlamaDecoder
{
    private float[]? _ropeCos, _ropeSin;

    /// <summary>
    /// (cos, sin) of the angle pos·θ^(−2i/hs) (computed in double, rounded to float), tabulated for every position on
    /// first use: the prompt would otherwise evaluate 2·(dim + kv_dim)/2 trigonometric functions per token and layer.
    /// </summary>
    private (float Cos, float Sin) RopeAngle(int pos, int i)
    {
        if (_ropeCos is null && (long)Config.SeqLen * _invFreq.Length > 1 << 22)
        {
            // Very long contexts: no table (it would take over 32 MB), the same values computed on the spot.
            double a = pos * _invFreq[i];
            return ((float)Math.Cos(a), (float)Math.Sin(a));
        }
        if (_ropeCos is null)
        {
            int half = _invFreq.Length, seq = Config.SeqLen;
            var cos = new float[seq * half];
            var sin = new float[seq * half];
            for (int p = 0; p < seq; p++)
                for (int j = 0; j < half; j++)
                {
                    double angle = p * _invFreq[j];
                    cos[p * half + j] = (float)Math.Cos(angle);
                    sin[p * half + j] = (float)Math.Sin(angle);
                }
            _ropeSin = sin;
            Volatile.Write(ref _ropeCos, cos);
        }
        int k = pos * _invFreq.Length + i;
        return (_ropeCos![k], _ropeSin![k]);
    }

    private WorkerPool? _pool;
    private WorkerPool Pool => _pool ??= WorkerPool.For(Threads);

    /// <summary>Rows per parallel chunk of a product: 8 groups of 8.</summary>
    private const int ChunkGroups = 8;
    /// <summary>Tokens per L2 block of a batched product (64 tokens × 5632 int8 codes = 352 KB).</summary>
    private const int TokenBlock = 64;

    /// <summary>One or more packed products over the same quantized tokens, split into row chunks.</summary>
    private sealed unsafe class ProductJob : PoolJob
    {
        public readonly IPackedQ8Matrix?[] M = new IPackedQ8Matrix?[3];
        public readonly float*[] Y = new float*[3];
        public readonly int[] Ldy = new int[3], Start = new int[4];
        public int Count, Tokens;
        public bool Jit;
        public Q8Batch X = null!;

        public void Set(int i, IPackedQ8Matrix m, float* y, int ldy)
        {
            M[i] = m;
            Y[i] = y;
            Ldy[i] = ldy;
            Start[i + 1] = Start[i] + (m.Packed.Groups + ChunkGroups - 1) / ChunkGroups;
            Count = i + 1;
        }

        public int Chunks => Start[Count];

        public override void Run(int chunk)
        {
            int i = 0;
            while (chunk >= Start[i + 1]) i++;
            var m = M[i]!;
            var p = m.Packed;
            int g0 = (chunk - Start[i]) * ChunkGroups, g1 = Math.Min(p.Groups, g0 + ChunkGroups);
            if (Jit && p.Format == QFormat.Q8_0)
            {
                // Generated 512-bit kernel on 16-row panels, for the prompt and for decode (one token: measured faster
                // than the managed GEMV too); g0 is a multiple of 8 groups, so panels g0/2 … cover the chunk.
                var panels = JitQ8Panels.For(p);
                for (int t0 = 0; t0 < Tokens; t0 += TokenBlock)
                    JitQ8Gemm.Gemm(panels, X, t0, Math.Min(Tokens, t0 + TokenBlock), Y[i], Ldy[i], g0 / 2, Math.Min(panels.Panels, (g1 + 1) / 2));
                return;
            }
            // Token blocks outermost: the chunk's weights (≤ 8 groups × 176 tiles × 256 B) stay in L2 across blocks.
            for (int t0 = 0; t0 < Tokens; t0 += TokenBlock)
                QKernels.Gemm(m.Isa, p, X, t0, Math.Min(Tokens, t0 + TokenBlock), Y[i], Ldy[i], g0, g1);
        }
    }

    private ProductJob? _product;

    private bool _useGenerated = JitQ8Gemm.IsEnabled;

    /// <summary>
    /// Whether batched products (prompt processing) of Q8_0 matrices run on the generated 512-bit kernels
    /// (<see cref="JitQ8Gemm"/>); default: supported and QUANTSHARP_JIT not 0. Setting true where they are unsupported
    /// keeps the managed kernels. Results are identical either way.
    /// </summary>
    public bool UseGeneratedKernels
    {
        get => _useGenerated;
        set
        {
            _useGenerated = value && JitQ8Gemm.IsSupported;
            PrepareGeneratedKernels();
        }
    }

    /// <summary>
    /// Re-packs every Q8_0 matrix the products use into <see cref="JitQ8Panels"/> (once per weights object, shared by
    /// all decoders of it), so the first prompt does not pay for it; matrices in parallel.
    /// </summary>
    private void PrepareGeneratedKernels()
    {
        if (!_useGenerated) return;
        var packed = Weights.Layers.SelectMany(l => l.Matrices).Append(Weights.Classifier).OfType<IPackedQ8Matrix>()
            .Select(m => m.Packed).Where(p => p.Format == QFormat.Q8_0).Distinct().ToArray();
        QuantSharp.Runtime.Parallelism.For(Threads, packed.Length, 1, (i0, i1) =>
        {
            for (int i = i0; i < i1; i++) JitQ8Panels.For(packed[i]);
        });
    }

    /// <summary>y[offset + r] = (W·x)[r] for one quantized token, rows split over the workers.</summary>
    private unsafe void PackedProduct(IPackedQ8Matrix m, Q8Batch x, float[] y, int offset, int rows)
    {
        if (y.Length < offset + rows) throw new ArgumentException("output too short");
        fixed (float* py = &y[offset])
        {
            var job = _product ??= new ProductJob();
            job.X = x;
            job.Tokens = 1;
            job.Jit = UseGeneratedKernels;
            job.Set(0, m, py, 0);
            Pool.Run(job, job.Chunks);
        }
    }

    /// <summary>
    /// Products of one input with several matrices (q/k/v, or the two FFN inputs): packed matrices share one
    /// quantization of x and one parallel section; anything else goes through <see cref="MatMul"/> one by one.
    /// </summary>
    private unsafe void MatMulShared(float[] x, Q8Activations qx, (WeightMatrix M, float[] Y, int Offset) a, (WeightMatrix M, float[] Y, int Offset) b,
        (WeightMatrix M, float[] Y, int Offset)? c = null)
    {
        var third = c ?? b;
        bool packed = a.M is IPackedQ8Matrix && b.M is IPackedQ8Matrix && third.M is IPackedQ8Matrix;
        if (!packed)
        {
            MatMul(a.M, x, qx, a.Y, a.Offset);
            MatMul(b.M, x, qx, b.Y, b.Offset);
            if (c is { } cc) MatMul(cc.M, x, qx, cc.Y, cc.Offset);
            return;
        }
        if (a.Y.Length < a.Offset + a.M.Rows || b.Y.Length < b.Offset + b.M.Rows || third.Y.Length < third.Offset + third.M.Rows)
            throw new ArgumentException("output too short");
        if (InputObserver is { } observe)
        {
            observe(a.M, x.AsSpan(0, a.M.Cols));
            observe(b.M, x.AsSpan(0, b.M.Cols));
            if (c is { } oc) observe(oc.M, x.AsSpan(0, oc.M.Cols));
        }
        qx.Quantize(x);
        var job = _product ??= new ProductJob();
        job.X = qx.Batch;
        job.Tokens = 1;
        fixed (float* ya = a.Y, yb = b.Y, yc = third.Y)
        {
            job.Set(0, (IPackedQ8Matrix)a.M, ya + a.Offset, 0);
            job.Set(1, (IPackedQ8Matrix)b.M, yb + b.Offset, 0);
            if (c is not null) job.Set(2, (IPackedQ8Matrix)third.M, yc + third.Offset, 0);
            Pool.Run(job, job.Chunks);
        }
    }

    /// <summary>
    /// Runs the prompt tokens <paramref name="tokens"/> at positions pos0, pos0+1, … as one batch (caching their keys and
    /// values) and returns the logits after the last one, identical to calling <see cref="Forward"/> for each in turn.
    /// Weight matrices in a packed block format are multiplied as GEMMs (each weight tile reused across tokens);
    /// other formats go token by token through the same product as <see cref="Forward"/>.
    /// </summary>
    public float[] ForwardBatch(LlamaState s, ReadOnlySpan<int> tokens, int pos0)
    {
        var c = Config;
        int n = tokens.Length;
        BatchLayers(s, tokens, pos0);
        s.Batch!.X.AsSpan((n - 1) * c.Dim, c.Dim).CopyTo(s.X);
        RmsNorm(s.X, s.X, Weights.RmsFinal, c.NormEps);
        MatMul(Weights.Classifier, s.X, s.QDim, s.Logits);
        return s.Logits;
    }

    /// <summary>
    /// Like <see cref="ForwardBatch"/>, but writes the logits after every token: row t of <paramref name="logits"/>
    /// (VocabSize values) holds the next-token logits at position pos0 + t, identical to what <see cref="Forward"/>
    /// returns there (the final RMSNorm and classifier run per token through the decode product).
    /// </summary>
    public void ForwardBatchAll(LlamaState s, ReadOnlySpan<int> tokens, int pos0, Span<float> logits)
    {
        var c = Config;
        int n = tokens.Length, v = c.VocabSize;
        if (logits.Length < (long)n * v) throw new ArgumentException($"logits holds {logits.Length} values, {n} tokens × {v} needed");
        BatchLayers(s, tokens, pos0);
        for (int t = 0; t < n; t++)
        {
            s.Batch!.X.AsSpan(t * c.Dim, c.Dim).CopyTo(s.X);
            RmsNorm(s.X, s.X, Weights.RmsFinal, c.NormEps);
            MatMul(Weights.Classifier, s.X, s.QDim, s.Logits);
            s.Logits.AsSpan().CopyTo(logits.Slice(t * v, v));
        }
    }

    // Every layer for the batch: leaves the final hidden state of token t in s.Batch.X[t·dim …] and the keys/values in the cache.
    private unsafe void BatchLayers(LlamaState s, ReadOnlySpan<int> tokens, int pos0)
    {
        var c = Config;
        int n = tokens.Length;
        if (n == 0) throw new QuantSharpException("an empty token batch has no logits");
        if (pos0 < 0 || pos0 + n > c.SeqLen) throw new QuantSharpException($"positions {pos0}..{pos0 + n - 1} are beyond the model's seq_len {c.SeqLen}");
        foreach (int t in tokens)
            if ((uint)t >= (uint)c.VocabSize) throw new QuantSharpException($"token id {t} is outside the vocabulary [0, {c.VocabSize})");
        if (s.Batch is null || s.Batch.Capacity < n) s.Batch = new BatchBuffers(c, Math.Max(n, s.Batch?.Capacity ?? 0));
        var bb = s.Batch;
        int dim = c.Dim, hd = c.HiddenDim, kvDim = c.KvDim, hs = c.HeadSize;
        for (int t = 0; t < n; t++) Weights.TokenEmbedding.DequantizeRow(tokens[t], bb.X.AsSpan(t * dim, dim));

        for (int l = 0; l < c.Layers; l++)
        {
            var w = Weights.Layers[l];
            ForTokens(n, t => RmsNorm(bb.Xb.AsSpan(t * dim, dim), bb.X.AsSpan(t * dim, dim), w.RmsAtt, c.NormEps));
            int cache = (l * c.SeqLen + pos0) * kvDim;
            fixed (float* q = bb.Q, kc = &s.KeyCache[cache], vc = &s.ValueCache[cache])
                Products(s, bb.Xb, dim, bb.QDim, n, (w.Wq, (nint)q, dim), (w.Wk, (nint)kc, kvDim), (w.Wv, (nint)vc, kvDim));
            ForTokens(n, t =>
            {
                Rope(bb.Q.AsSpan(t * dim, dim), pos0 + t, hs);
                Rope(s.KeyCache.AsSpan(cache + t * kvDim, kvDim), pos0 + t, hs);
            });
            BatchAttention(s, bb, l, pos0, n);
            fixed (float* o = bb.Xb2) Products(s, bb.Xb, dim, bb.QDim, n, (w.Wo, (nint)o, dim));
            ForTokens(n, t => TensorPrimitives.Add(bb.X.AsSpan(t * dim, dim), bb.Xb2.AsSpan(t * dim, dim), bb.X.AsSpan(t * dim, dim)));

            ForTokens(n, t => RmsNorm(bb.Xb.AsSpan(t * dim, dim), bb.X.AsSpan(t * dim, dim), w.RmsFfn, c.NormEps));
            fixed (float* h1 = bb.Hb, h3 = bb.Hb2) Products(s, bb.Xb, dim, bb.QDim, n, (w.W1, (nint)h1, hd), (w.W3, (nint)h3, hd));
            ForTokens(n, t => SwiGlu(bb.Hb.AsSpan(t * hd, hd), bb.Hb2.AsSpan(t * hd, hd)));
            fixed (float* o = bb.Xb) Products(s, bb.Hb, hd, bb.QHidden, n, (w.W2, (nint)o, dim));
            ForTokens(n, t => TensorPrimitives.Add(bb.X.AsSpan(t * dim, dim), bb.Xb.AsSpan(t * dim, dim), bb.X.AsSpan(t * dim, dim)));
        }
    }

    private sealed class TokenJob : PoolJob
    {
        public Action<int> Body = null!;
        public override void Run(int chunk) => Body(chunk);
    }

    private readonly TokenJob _tokenJob = new();

    private void ForTokens(int n, Action<int> body)
    {
        _tokenJob.Body = body;
        Pool.Run(_tokenJob, n);
    }

    /// <summary>
    /// Products of the batch rows x[t·ld …] with up to three matrices sharing the input. Packed matrices: the tokens
    /// are quantized once and one parallel GEMM covers all matrices. Others: each token through <see cref="MatMul"/>.
    /// </summary>
    private unsafe void Products(LlamaState s, float[] x, int ld, Q8Batch qx, int n,
        params ReadOnlySpan<(WeightMatrix M, nint Y, int Ldy)> outs)
    {
        bool packed = true;
        foreach (var o in outs) packed &= o.M is IPackedQ8Matrix;
        if (packed)
        {
            ForTokens(n, t => qx.QuantizeToken(x.AsSpan(t * ld, qx.Length), t));
            var job = _product ??= new ProductJob();
            job.X = qx;
            job.Tokens = n;
            job.Jit = UseGeneratedKernels;
            for (int i = 0; i < outs.Length; i++) job.Set(i, (IPackedQ8Matrix)outs[i].M, (float*)outs[i].Y, outs[i].Ldy);
            Pool.Run(job, job.Chunks);
            return;
        }
        // Token by token through the decode path's buffers, so the FP32 products see the same inputs at the same addresses.
        var inBuf = ld == Config.Dim ? s.Xb : s.Hb;
        var qa = ld == Config.Dim ? s.QDim : s.QHidden;
        foreach (var o in outs)
        {
            var tmp = s.Batch!.Tmp;
            for (int t = 0; t < n; t++)
            {
                x.AsSpan(t * ld, ld).CopyTo(inBuf);
                MatMul(o.M, inBuf, qa, tmp);
                new ReadOnlySpan<float>(tmp, 0, o.M.Rows).CopyTo(new Span<float>((float*)o.Y + (long)t * o.Ldy, o.M.Rows));
            }
        }
    }

    private sealed class AttentionJob(LlamaDecoder d) : PoolJob
    {
        public LlamaState S = null!;
        public BatchBuffers B = null!;
        public int Layer, Pos0;

        [ThreadStatic] private static float[]? _att;

        public override void Run(int t)
        {
            var c = d.Config;
            int hs = c.HeadSize, dim = c.Dim;
            var att = _att is { Length: var len } && len >= c.SeqLen ? _att : _att = new float[c.SeqLen];
            for (int h = 0; h < c.Heads; h++)
                AttendHead(c, B.Q.AsSpan(t * dim + h * hs, hs), S.KeyCache, S.ValueCache, Layer, h, Pos0 + t, att, B.Xb.AsSpan(t * dim + h * hs, hs));
        }
    }

    private AttentionJob? _attention;

    private void BatchAttention(LlamaState s, BatchBuffers b, int l, int pos0, int n)
    {
        var job = _attention ??= new AttentionJob(this);
        job.S = s;
        job.B = b;
        job.Layer = l;
        job.Pos0 = pos0;
        Pool.Run(job, n);
    }

    /// <summary>
    /// One head of causal attention for the query at <paramref name="pos"/>: o = Σ_t softmax_t(q·k_t/√hs)·v_t over the
    /// cached positions t = 0..pos of layer <paramref name="layer"/>; query head h reads key/value head h / KvMul.
    /// </summary>
    internal static void AttendHead(LlamaConfig c, ReadOnlySpan<float> q, float[] keyCache, float[] valueCache, int layer, int head, int pos,
        Span<float> attBuffer, Span<float> o)
    {
        int hs = c.HeadSize, kvDim = c.KvDim;
        float invSqrt = 1f / MathF.Sqrt(hs);
        int kvOff = layer * c.SeqLen * kvDim + (head / c.KvMul) * hs;
        var att = attBuffer[..(pos + 1)];
        if (hs == 64 && Vector512.IsHardwareAccelerated)
        {
            Head64(q, keyCache, valueCache, kvOff, kvDim, invSqrt, att, o);
            return;
        }
        for (int t = 0; t <= pos; t++) att[t] = Dot(q, keyCache.AsSpan(kvOff + t * kvDim, hs)) * invSqrt;
        Softmax(att);
        o.Clear();
        for (int t = 0; t <= pos; t++) Axpy(att[t], valueCache.AsSpan(kvOff + t * kvDim, hs), o);
    }

    /// <summary>
    /// Head size 64 (TinyLlama, Llama 3.2 1B) with the query and the output held in four 512-bit registers:
    /// score = Sum((q0·k0 + q1·k1) + q2·k2) + q3·k3)·invSqrt over 16-float quarters; o ← v·a + o per element, as <see cref="Axpy"/>.
    /// </summary>
    private static unsafe void Head64(ReadOnlySpan<float> q, float[] keyCache, float[] valueCache, int kvOff, int kvDim, float invSqrt, Span<float> att, Span<float> o)
    {
        int n = att.Length;
        fixed (float* pq = q, pk = &keyCache[kvOff], pv = &valueCache[kvOff], pa = att, po = o)
        {
            var q0 = Vector512.Load(pq);
            var q1 = Vector512.Load(pq + 16);
            var q2 = Vector512.Load(pq + 32);
            var q3 = Vector512.Load(pq + 48);
            float* k = pk;
            for (int t = 0; t < n; t++, k += kvDim)
            {
                var acc = q0 * Vector512.Load(k) + q1 * Vector512.Load(k + 16) + q2 * Vector512.Load(k + 32) + q3 * Vector512.Load(k + 48);
                pa[t] = Vector512.Sum(acc) * invSqrt;
            }
            Softmax(att);
            var o0 = Vector512<float>.Zero;
            var o1 = Vector512<float>.Zero;
            var o2 = Vector512<float>.Zero;
            var o3 = Vector512<float>.Zero;
            float* v = pv;
            for (int t = 0; t < n; t++, v += kvDim)
            {
                var a = Vector512.Create(pa[t]);
                o0 = Vector512.Load(v) * a + o0;
                o1 = Vector512.Load(v + 16) * a + o1;
                o2 = Vector512.Load(v + 32) * a + o2;
                o3 = Vector512.Load(v + 48) * a + o3;
            }
            o0.Store(po);
            o1.Store(po + 16);
            o2.Store(po + 32);
            o3.Store(po + 48);
        }
    }

    /// <summary>Σ a_i·b_i in a fixed order: 8-lane partial sums over full vectors (any alignment), a scalar tail, then the lanes in order.</summary>
    internal static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int n = a.Length, i = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8) acc += Vector256.Create(a.Slice(i, 8)) * Vector256.Create(b.Slice(i, 8));
            for (int j = 0; j < 8; j++) sum += acc.GetElement(j);
        }
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>Σ x_i in the same fixed order as <see cref="Dot"/>.</summary>
    internal static float FixedSum(ReadOnlySpan<float> x)
    {
        int n = x.Length, i = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8) acc += Vector256.Create(x.Slice(i, 8));
            for (int j = 0; j < 8; j++) sum += acc.GetElement(j);
        }
        for (; i < n; i++) sum += x[i];
        return sum;
    }

    /// <summary>o += a·v element by element (a multiply then an add, each rounded; vector and scalar steps agree).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy(float a, ReadOnlySpan<float> v, Span<float> o)
    {
        int n = v.Length, i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var av = Vector256.Create(a);
            for (; i + 8 <= n; i += 8) (Vector256.Create(v.Slice(i, 8)) * av + Vector256.Create((ReadOnlySpan<float>)o.Slice(i, 8))).CopyTo(o.Slice(i, 8));
        }
        for (; i < n; i++) o[i] = v[i] * a + o[i];
    }

    /// <summary>SwiGLU in place: h ← SiLU(h) ⊙ g with SiLU(z) = z / (1 + e^−z), evaluated element-wise by vector functions.</summary>
    internal static void SwiGlu(Span<float> h, ReadOnlySpan<float> g)
    {
        Span<float> e = stackalloc float[256];
        for (int i = 0; i < h.Length; i += 256)
        {
            int m = Math.Min(256, h.Length - i);
            var hh = h.Slice(i, m);
            var ee = e[..m];
            TensorPrimitives.Negate(hh, ee);
            TensorPrimitives.Exp(ee, ee);
            TensorPrimitives.Add(ee, 1f, ee);
            TensorPrimitives.Divide(hh, ee, hh);
            TensorPrimitives.Multiply(hh, g.Slice(i, m), hh);
        }
    }
}
