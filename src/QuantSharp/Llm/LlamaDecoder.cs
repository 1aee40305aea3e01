using System.Numerics.Tensors;
using QuantSharp.Llm.Formats;
using QuantSharp.Llm.Kernels;
using QuantSharp.Runtime;

namespace QuantSharp.Llm;

/// <summary>The per-sequence buffers of a decoder: activations and the key/value cache of every layer.</summary>
public sealed class LlamaState
{
    public LlamaState(LlamaConfig c)
    {
        X = new float[c.Dim];
        Xb = new float[c.Dim];
        Xb2 = new float[c.Dim];
        Hb = new float[c.HiddenDim];
        Hb2 = new float[c.HiddenDim];
        Q = new float[c.Dim];
        Att = new float[c.SeqLen];
        Logits = new float[c.VocabSize];
        KeyCache = new float[c.Layers * c.SeqLen * c.KvDim];
        ValueCache = new float[c.Layers * c.SeqLen * c.KvDim];
        QDim = new Q8Activations(c.Dim);
        QHidden = new Q8Activations(c.HiddenDim);
    }

    /// <summary>Buffers of batched prompt processing (<see cref="LlamaDecoder.ForwardBatch"/>), made on first use.</summary>
    internal BatchBuffers? Batch;
    internal float[] X, Xb, Xb2, Hb, Hb2, Q, Att, KeyCache, ValueCache;
    internal Q8Activations QDim, QHidden;

    /// <summary>The logits written by the last <see cref="LlamaDecoder.Forward"/>.</summary>
    public float[] Logits { get; }
}

/// <summary>Receives the input x of a product y = W·x (see <see cref="LlamaDecoder.InputObserver"/>).</summary>
public delegate void MatrixInputObserver(WeightMatrix matrix, ReadOnlySpan<float> input);

/// <summary>
/// A Llama decoder in the style of llama2.c's run.c, one token at a time:
/// x = embed(token); per layer: x += Wo·Attention(RoPE(Wq·n), RoPE(Wk·n), Wv·n) with n = RMSNorm(x);
/// x += W2·(SiLU(W1·n) ⊙ W3·n) with n = RMSNorm(x); logits = Wcls·RMSNorm(x).
/// Matrix rows are split over <see cref="Threads"/> workers (each row written by one worker, so results are
/// identical for any thread count).
/// </summary>
public sealed partial class LlamaDecoder
{
    private readonly double[] _invFreq;

    public LlamaDecoder(LlamaWeights weights, int threads = 0)
    {
        Weights = weights;
        Config = weights.Config;
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        // RoPE: pair (2i, 2i+1) of each head rotates by angle pos·θ^(-2i/head_size).
        int hs = Config.HeadSize;
        _invFreq = new double[hs / 2];
        for (int i = 0; i < hs / 2; i++) _invFreq[i] = 1.0 / Math.Pow(Config.RopeTheta, 2.0 * i / hs);
        PrepareGeneratedKernels();
    }

    public LlamaWeights Weights { get; }
    public LlamaConfig Config { get; }
    public int Threads { get; }

    public LlamaState NewState() => new(Config);

    /// <summary>When set, <see cref="Forward"/> calls it with every matrix and its input vector before each product (calibration statistics; the batched prompt path does not).</summary>
    public MatrixInputObserver? InputObserver { get; set; }

    /// <summary>Runs token <paramref name="token"/> at position <paramref name="pos"/> (caching its keys/values) and returns the logits.</summary>
    public float[] Forward(LlamaState s, int token, int pos)
    {
        var c = Config;
        if ((uint)token >= (uint)c.VocabSize) throw new QuantSharpException($"token id {token} is outside the vocabulary [0, {c.VocabSize})");
        if ((uint)pos >= (uint)c.SeqLen) throw new QuantSharpException($"position {pos} is beyond the model's seq_len {c.SeqLen}");
        int kvDim = c.KvDim, hs = c.HeadSize;
        Weights.TokenEmbedding.DequantizeRow(token, s.X);

        for (int l = 0; l < c.Layers; l++)
        {
            var w = Weights.Layers[l];
            RmsNorm(s.Xb, s.X, w.RmsAtt, c.NormEps);

            // q, k, v for this position; k and v go straight into the cache row.
            int cacheOff = (l * c.SeqLen + pos) * kvDim;
            var k = s.KeyCache.AsSpan(cacheOff, kvDim);
            var v = s.ValueCache.AsSpan(cacheOff, kvDim);
            MatMulShared(s.Xb, s.QDim, (w.Wq, s.Q, 0), (w.Wk, s.KeyCache, cacheOff), (w.Wv, s.ValueCache, cacheOff));

            Rope(s.Q, pos, hs);
            Rope(k, pos, hs);

            Attention(s, l, pos);
            MatMul(w.Wo, s.Xb, s.QDim, s.Xb2);
            TensorPrimitives.Add(s.X, s.Xb2, s.X);

            RmsNorm(s.Xb, s.X, w.RmsFfn, c.NormEps);
            MatMulShared(s.Xb, s.QDim, (w.W1, s.Hb, 0), (w.W3, s.Hb2, 0));
            SwiGlu(s.Hb, s.Hb2);
            MatMul(w.W2, s.Hb, s.QHidden, s.Xb);
            TensorPrimitives.Add(s.X, s.Xb, s.X);
        }
        RmsNorm(s.X, s.X, Weights.RmsFinal, c.NormEps);
        MatMul(Weights.Classifier, s.X, s.QDim, s.Logits);
        return s.Logits;
    }

    /// <summary>o = w ⊙ x / sqrt(mean(x²) + ε); the sum of squares in double.</summary>
    internal static void RmsNorm(Span<float> o, ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps)
    {
        double ss = 0;
        for (int i = 0; i < x.Length; i++) ss += (double)x[i] * x[i];
        float scale = (float)(1.0 / Math.Sqrt(ss / x.Length + eps));
        for (int i = 0; i < x.Length; i++) o[i] = w[i] * (scale * x[i]);
    }

    private void Rope(Span<float> v, int pos, int hs)
    {
        for (int i = 0; i < v.Length; i += 2)
        {
            // Angle in double: positions up to seq_len stay accurate to float precision.
            var (cos, sin) = RopeAngle(pos, (i % hs) / 2);
            float a = v[i], b = v[i + 1];
            v[i] = a * cos - b * sin;
            v[i + 1] = a * sin + b * cos;
        }
    }

    /// <summary>Causal attention of the current query over cached positions 0..pos; query head h reads kv head h / KvMul.</summary>
    private void Attention(LlamaState s, int l, int pos)
    {
        var c = Config;
        int hs = c.HeadSize;
        for (int h = 0; h < c.Heads; h++)
            AttendHead(c, s.Q.AsSpan(h * hs, hs), s.KeyCache, s.ValueCache, l, h, pos, s.Att, s.Xb.AsSpan(h * hs, hs));
    }

    /// <summary>In-place softmax: exp(x − max) / Σ, all steps vectorized.</summary>
    internal static void Softmax(Span<float> x)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, x);
        TensorPrimitives.Exp(x, x);
        TensorPrimitives.Multiply(x, 1f / FixedSum(x), x);
    }

    /// <summary>
    /// y[offset + r] = (W·x)[r] for every row r. Formats with int8-activation products get x quantized once here;
    /// every worker then reads the shared quantized copy.
    /// </summary>
    private void MatMul(WeightMatrix m, float[] x, Q8Activations qx, float[] y, int offset = 0)
    {
        InputObserver?.Invoke(m, x.AsSpan(0, m.Cols));
        bool q8 = m.UsesQ8Activations;
        if (q8) qx.Quantize(x);
        if (m is IPackedQ8Matrix pm)
        {
            PackedProduct(pm, qx.Batch, y, offset, m.Rows);
            return;
        }
        // About 16K multiply-adds per chunk keeps thread hand-off cheap relative to the work.
        int minChunk = Math.Max(1, 16384 / Math.Max(1, m.Cols));
        Parallelism.For(Threads, m.Rows, minChunk, (r0, r1) =>
        {
            var dst = y.AsSpan(offset, m.Rows);
            if (q8) m.MatVecQ8(qx, dst, r0, r1);
            else m.MatVec(x, dst, r0, r1);
        });
    }
}
