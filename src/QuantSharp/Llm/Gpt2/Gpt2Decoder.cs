using System.Numerics.Tensors;
using QuantSharp.Llm.Formats;
using QuantSharp.Runtime;

namespace QuantSharp.Llm.Gpt2;

/// <summary>
/// A GPT-2 decoder, one token at a time with a key/value cache:
/// x = wte[token] + wpe[pos]; per block: x += Wo·Attention(q, k, v) + bo with [q;k;v] = Wqkv·LN1(x) + bqkv;
/// x += Wproj·GELU(Wfc·LN2(x) + bfc) + bproj; logits = Whead·LNf(x) (Whead = wte when tied).
/// GELU is GPT-2's tanh form 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))). Matrix rows are split over
/// <see cref="Threads"/> workers, each row written by one worker, so results do not depend on the thread count.
/// </summary>
public sealed class Gpt2Decoder : ICausalLm
{
    public Gpt2Decoder(Gpt2Weights weights, int threads = 0)
    {
        Weights = weights;
        Config = weights.Config;
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
    }

    public Gpt2Weights Weights { get; }
    public Gpt2Config Config { get; }
    public int Threads { get; }
    public string Architecture => "gpt2";
    public int VocabSize => Config.VocabSize;
    public int SeqLen => Config.SeqLen;

    public ICausalLmSession NewSession() => new Gpt2Session(this);

    /// <summary>When set, every product y = W·x first calls it with W and x (calibration statistics for GPTQ/AWQ).</summary>
    public MatrixInputObserver? InputObserver { get; set; }

    /// <summary>The per-sequence buffers: activations and every layer's key/value cache ([layer, pos, dim]).</summary>
    private sealed class Gpt2Session : ICausalLmSession
    {
        private readonly Gpt2Decoder _d;
        private readonly float[] _x, _xb, _xb2, _qkv, _h, _att, _logits, _keys, _values;
        private readonly Q8Activations _qDim, _qHidden;

        public Gpt2Session(Gpt2Decoder d)
        {
            _d = d;
            var c = d.Config;
            _x = new float[c.Dim];
            _xb = new float[c.Dim];
            _xb2 = new float[c.Dim];
            _qkv = new float[3 * c.Dim];
            _h = new float[c.HiddenDim];
            _att = new float[c.SeqLen];
            _logits = new float[c.VocabSize];
            _keys = new float[(long)c.Layers * c.SeqLen * c.Dim];
            _values = new float[(long)c.Layers * c.SeqLen * c.Dim];
            _qDim = new Q8Activations(c.Dim);
            _qHidden = new Q8Activations(c.HiddenDim);
        }

        public float[] Forward(int token, int pos)
        {
            var c = _d.Config;
            var w = _d.Weights;
            if ((uint)token >= (uint)c.VocabSize) throw new QuantSharpException($"token id {token} is outside the vocabulary [0, {c.VocabSize})");
            if ((uint)pos >= (uint)c.SeqLen) throw new QuantSharpException($"position {pos} is beyond the model's n_positions {c.SeqLen}");
            int dim = c.Dim;
            w.TokenEmbedding.DequantizeRow(token, _x);
            w.PositionEmbedding.DequantizeRow(pos, _xb);
            TensorPrimitives.Add(_x, _xb, _x);

            for (int l = 0; l < c.Layers; l++)
            {
                var L = w.Layers[l];
                LayerNorm(_xb, _x, L.Ln1Gain, L.Ln1Bias, c.NormEps);
                _d.MatMul(L.Wqkv, _xb, _qDim, _qkv);
                TensorPrimitives.Add(_qkv, L.Bqkv, _qkv);
                // k and v of this position go into the cache row (l, pos).
                long cacheOff = ((long)l * c.SeqLen + pos) * dim;
                _qkv.AsSpan(dim, dim).CopyTo(_keys.AsSpan((int)cacheOff, dim));
                _qkv.AsSpan(2 * dim, dim).CopyTo(_values.AsSpan((int)cacheOff, dim));
                Attention(l, pos);
                _d.MatMul(L.Wo, _xb, _qDim, _xb2);
                TensorPrimitives.Add(_xb2, L.Bo, _xb2);
                TensorPrimitives.Add(_x, _xb2, _x);

                LayerNorm(_xb, _x, L.Ln2Gain, L.Ln2Bias, c.NormEps);
                _d.MatMul(L.Wfc, _xb, _qDim, _h);
                TensorPrimitives.Add(_h, L.Bfc, _h);
                for (int i = 0; i < _h.Length; i++) _h[i] = Gelu(_h[i]);
                _d.MatMul(L.Wproj, _h, _qHidden, _xb2);
                TensorPrimitives.Add(_xb2, L.Bproj, _xb2);
                TensorPrimitives.Add(_x, _xb2, _x);
            }
            LayerNorm(_xb, _x, w.LnFGain, w.LnFBias, c.NormEps);
            _d.MatMul(w.Head, _xb, _qDim, _logits);
            return _logits;
        }

        /// <summary>Causal multi-head attention of the current query over cached positions 0..pos; the result goes to _xb.</summary>
        private void Attention(int l, int pos)
        {
            var c = _d.Config;
            int hs = c.HeadSize, dim = c.Dim;
            float invSqrt = 1f / MathF.Sqrt(hs);
            long layerOff = (long)l * c.SeqLen * dim;
            var att = _att.AsSpan(0, pos + 1);
            for (int h = 0; h < c.Heads; h++)
            {
                var q = _qkv.AsSpan(h * hs, hs);
                int off = (int)layerOff + h * hs;
                for (int t = 0; t <= pos; t++) att[t] = TensorPrimitives.Dot(q, _keys.AsSpan(off + t * dim, hs)) * invSqrt;
                LlamaDecoder.Softmax(att);
                var o = _xb.AsSpan(h * hs, hs);
                o.Clear();
                for (int t = 0; t <= pos; t++) TensorPrimitives.MultiplyAdd(_values.AsSpan(off + t * dim, hs), att[t], o, o);
            }
        }
    }

    /// <summary>o = g ⊙ (x − mean) / sqrt(var + ε) + b with the population variance; sums in double.</summary>
    internal static void LayerNorm(Span<float> o, ReadOnlySpan<float> x, ReadOnlySpan<float> g, ReadOnlySpan<float> b, float eps)
    {
        double sum = 0;
        for (int i = 0; i < x.Length; i++) sum += x[i];
        double mean = sum / x.Length, ss = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double d = x[i] - mean;
            ss += d * d;
        }
        float inv = (float)(1.0 / Math.Sqrt(ss / x.Length + eps)), m = (float)mean;
        for (int i = 0; i < x.Length; i++) o[i] = g[i] * ((x[i] - m) * inv) + b[i];
    }

    /// <summary>GPT-2's GELU, tanh approximation: 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³))).</summary>
    internal static float Gelu(float z)
    {
        const float k = 0.7978845608028654f; // √(2/π)
        return 0.5f * z * (1f + MathF.Tanh(k * (z + 0.044715f * z * z * z)));
    }

    /// <summary>y = W·x over <see cref="Threads"/> workers; formats with int8-activation products get x quantized once.</summary>
    private void MatMul(WeightMatrix m, float[] x, Q8Activations qx, float[] y)
    {
        InputObserver?.Invoke(m, x);
        bool q8 = m.UsesQ8Activations;
        if (q8) qx.Quantize(x);
        // About 16K multiply-adds per chunk keeps thread hand-off cheap relative to the work.
        int minChunk = Math.Max(1, 16384 / Math.Max(1, m.Cols));
        Parallelism.For(Threads, m.Rows, minChunk, (r0, r1) =>
        {
            if (q8) m.MatVecQ8(qx, y, r0, r1);
            else m.MatVec(x, y, r0, r1);
        });
    }
}
