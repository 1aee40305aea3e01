using System.Text.Json;
using QuantSharp.Llm.Gpt2;

namespace QuantSharp.Llm.HuggingFace;

/// <summary>
/// A Hugging Face model directory: config.json plus model.safetensors (or shards with model.safetensors.index.json),
/// opened through memory maps. Supported: LlamaForCausalLM ("model_type": "llama") → <see cref="LlamaWeights"/> and
/// GPT2LMHeadModel ("gpt2") → <see cref="Gpt2Weights"/>.
/// <para>Memory: Llama matrices and GPT-2's embeddings are <see cref="MappedMatrix"/> views (no copy, F16/BF16 stay
/// 2 bytes). GPT-2's Conv1D weights are stored [in, out] and are transposed once into FP32 arrays; norms and biases
/// are copied (they are small).</para>
/// <para>RoPE: Hugging Face's Llama applies rotary embeddings in the rotate-half form, pairing element i of a head with
/// element i + head_size/2; its conversion script permutes the rows of q_proj and k_proj from Meta's layout, where
/// pairs are adjacent (2i, 2i+1) — the layout <see cref="LlamaDecoder"/> rotates. The inverse permutation is applied
/// here as a row map: decoder row h·hs + 2i + t reads stored row h·hs + t·hs/2 + i (t ∈ {0, 1}, i &lt; hs/2).</para>
/// </summary>
public sealed class HfCheckpoint : IDisposable
{
    private readonly SafetensorsCheckpoint _tensors;

    public string Directory { get; }
    public string ModelType { get; }
    public ICausalLmWeights Weights { get; }
    public long FileBytes => _tensors.FileBytes;
    public int ShardCount => _tensors.Files.Count;

    private HfCheckpoint(string dir, string modelType, SafetensorsCheckpoint tensors, ICausalLmWeights weights)
    {
        Directory = dir;
        ModelType = modelType;
        _tensors = tensors;
        Weights = weights;
    }

    /// <summary>True when <paramref name="path"/> is a directory with a config.json.</summary>
    public static bool IsHfDirectory(string path) => System.IO.Directory.Exists(path) && File.Exists(Path.Combine(path, "config.json"));

    public static HfCheckpoint Open(string dir)
    {
        string configPath = Path.Combine(dir, "config.json");
        if (!File.Exists(configPath)) throw new QuantSharpException($"{dir}: no config.json (not a Hugging Face model directory)");
        JsonElement cfg;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(configPath));
            cfg = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{configPath}: not valid JSON ({e.Message.Split('\n')[0]})");
        }
        if (cfg.ValueKind != JsonValueKind.Object) throw new ModelFormatException($"{configPath}: not a JSON object");
        string modelType = cfg.TryGetProperty("model_type", out var mt) && mt.ValueKind == JsonValueKind.String ? mt.GetString()! : "";
        if (modelType is not ("llama" or "gpt2"))
            throw new QuantSharpException($"{configPath}: model_type '{modelType}' is not supported (llama, gpt2)");
        var tensors = SafetensorsCheckpoint.Open(dir);
        try
        {
            var cr = new ConfigReader(cfg, configPath);
            ICausalLmWeights w = modelType == "llama" ? LoadLlama(cr, tensors, dir) : LoadGpt2(cr, tensors, dir);
            return new HfCheckpoint(dir, modelType, tensors, w);
        }
        catch
        {
            tensors.Dispose();
            throw;
        }
    }

    /// <summary>Typed access to config.json values, with the file named in every error.</summary>
    private sealed class ConfigReader(JsonElement root, string path)
    {
        public bool Has(string key) => root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

        public int Int(string key, int? fallback = null)
        {
            if (!Has(key)) return fallback ?? throw new ModelFormatException($"{path}: missing \"{key}\"");
            var v = root.GetProperty(key);
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i)) throw new ModelFormatException($"{path}: \"{key}\" is not an integer ({v.GetRawText()})");
            return i;
        }

        public float Float(string key, float fallback)
        {
            if (!Has(key)) return fallback;
            var v = root.GetProperty(key);
            if (v.ValueKind != JsonValueKind.Number) throw new ModelFormatException($"{path}: \"{key}\" is not a number ({v.GetRawText()})");
            return (float)v.GetDouble();
        }

        public bool Bool(string key, bool fallback)
        {
            if (!Has(key)) return fallback;
            var v = root.GetProperty(key);
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new ModelFormatException($"{path}: \"{key}\" is not a boolean ({v.GetRawText()})"),
            };
        }

        public string? String(string key) => Has(key) && root.GetProperty(key).ValueKind == JsonValueKind.String ? root.GetProperty(key).GetString() : null;

        public string Raw(string key) => root.GetProperty(key).GetRawText();
    }

    private static LlamaWeights LoadLlama(ConfigReader cfg, SafetensorsCheckpoint ts, string dir)
    {
        string src = Path.Combine(dir, "config.json");
        if (cfg.Has("rope_scaling")) throw new QuantSharpException($"{src}: rope_scaling {cfg.Raw("rope_scaling")} is not supported (plain RoPE only)");
        if (cfg.String("hidden_act") is { } act && act != "silu") throw new QuantSharpException($"{src}: hidden_act '{act}' is not supported (silu)");
        if (cfg.Bool("attention_bias", false) || cfg.Bool("mlp_bias", false)) throw new QuantSharpException($"{src}: attention/MLP biases are not supported in Llama models");
        int dim = cfg.Int("hidden_size"), heads = cfg.Int("num_attention_heads");
        int vocab = cfg.Int("vocab_size");
        bool tied = cfg.Bool("tie_word_embeddings", false) || !ts.Contains("lm_head.weight");
        var c = new LlamaConfig(dim, cfg.Int("intermediate_size"), cfg.Int("num_hidden_layers"), heads, cfg.Int("num_key_value_heads", heads),
            vocab, cfg.Int("max_position_embeddings"), tied)
        {
            RopeTheta = cfg.Float("rope_theta", 10000f),
            NormEps = cfg.Float("rms_norm_eps", 1e-6f),
        };
        c.Validate(src);
        if (cfg.Has("head_dim") && cfg.Int("head_dim") != c.HeadSize)
            throw new QuantSharpException($"{src}: head_dim {cfg.Int("head_dim")} differs from hidden_size/num_attention_heads = {c.HeadSize}");

        int d = c.Dim, h = c.HiddenDim, kv = c.KvDim, hs = c.HeadSize;
        WeightMatrix Mat(string n, int rows, int cols, int[]? rowMap = null)
        {
            var (f, t) = ts.Get(n);
            if (t.Shape.Length != 2 || t.Shape[0] != rows || t.Shape[1] != cols)
                throw new ModelFormatException($"{f.FileName}: tensor '{n}' has shape {t.ShapeText}, expected [{rows},{cols}]");
            // F32 in stored row order is exactly an F32Matrix view (the type every FP32 kernel knows).
            return t.Dtype == SafetensorsDtype.F32 && rowMap is null ? F32View(n, rows, cols, f, t) : new MappedMatrix(n, rows, cols, f, t, rowMap);
        }
        var qMap = RotateHalfToInterleaved(c.Heads, hs);
        var kMap = RotateHalfToInterleaved(c.KvHeads, hs);
        var layers = new LlamaLayer[c.Layers];
        for (int i = 0; i < c.Layers; i++)
        {
            string p = $"model.layers.{i}.";
            layers[i] = new LlamaLayer(Vec(ts, p + "input_layernorm.weight", d),
                Mat(p + "self_attn.q_proj.weight", d, d, qMap), Mat(p + "self_attn.k_proj.weight", kv, d, kMap),
                Mat(p + "self_attn.v_proj.weight", kv, d), Mat(p + "self_attn.o_proj.weight", d, d),
                Vec(ts, p + "post_attention_layernorm.weight", d),
                Mat(p + "mlp.gate_proj.weight", h, d), Mat(p + "mlp.down_proj.weight", d, h), Mat(p + "mlp.up_proj.weight", h, d));
        }
        var emb = Mat("model.embed_tokens.weight", vocab, d);
        var head = tied ? emb : Mat("lm_head.weight", vocab, d);
        return new LlamaWeights(c, emb, layers, Vec(ts, "model.norm.weight", d), head);
    }

    private static unsafe F32Matrix F32View(string n, int rows, int cols, SafetensorsFile f, SafetensorInfo t) => new(n, rows, cols, (float*)f.Pointer(t), f);

    /// <summary>
    /// Row map from the interleaved RoPE layout (pairs 2i, 2i+1) to Hugging Face's rotate-half layout (pairs i, i + hs/2):
    /// map[h·hs + 2i + t] = h·hs + t·hs/2 + i.
    /// </summary>
    public static int[] RotateHalfToInterleaved(int heads, int headSize)
    {
        var map = new int[heads * headSize];
        int half = headSize / 2;
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int t = 0; t < 2; t++)
                    map[h * headSize + 2 * i + t] = h * headSize + t * half + i;
        return map;
    }

    private static float[] Vec(SafetensorsCheckpoint ts, string n, int len)
    {
        var (f, t) = ts.Get(n);
        if (t.Shape.Length != 1 || t.Shape[0] != len) throw new ModelFormatException($"{f.FileName}: tensor '{n}' has shape {t.ShapeText}, expected [{len}]");
        var v = f.ReadFloats(t);
        if (v.Any(x => !float.IsFinite(x))) throw new ModelFormatException($"{f.FileName}: tensor '{n}' holds non-finite values");
        return v;
    }

    private static Gpt2Weights LoadGpt2(ConfigReader cfg, SafetensorsCheckpoint ts, string dir)
    {
        string src = Path.Combine(dir, "config.json");
        string act = cfg.String("activation_function") ?? "gelu_new";
        if (act is not ("gelu_new" or "gelu_pytorch_tanh"))
            throw new QuantSharpException($"{src}: activation_function '{act}' is not supported (GPT-2's tanh GELU: gelu_new)");
        int dim = cfg.Int("n_embd");
        var c = new Gpt2Config(dim, cfg.Int("n_inner", 4 * dim), cfg.Int("n_layer"), cfg.Int("n_head"), cfg.Int("vocab_size"),
            cfg.Int("n_positions", cfg.Has("n_ctx") ? cfg.Int("n_ctx") : null))
        {
            NormEps = cfg.Float("layer_norm_epsilon", 1e-5f),
        };
        c.Validate(src);
        if (cfg.Bool("scale_attn_by_inverse_layer_idx", false) || cfg.Bool("reorder_and_upcast_attn", false))
            throw new QuantSharpException($"{src}: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported");
        if (!cfg.Bool("scale_attn_weights", true)) throw new QuantSharpException($"{src}: scale_attn_weights=false is not supported");

        // GPT2LMHeadModel checkpoints name tensors "transformer.h.0…"; GPT2Model ones (e.g. the original gpt2) "h.0…".
        string prefix = ts.Contains("transformer.wte.weight") ? "transformer." : "";
        string N(string n) => prefix + n;
        WeightMatrix Embedding(string n, int rows, int cols)
        {
            var (f, t) = ts.Get(N(n));
            if (t.Shape.Length != 2 || t.Shape[0] != rows || t.Shape[1] != cols)
                throw new ModelFormatException($"{f.FileName}: tensor '{N(n)}' has shape {t.ShapeText}, expected [{rows},{cols}]");
            return t.Dtype == SafetensorsDtype.F32 ? F32View(n, rows, cols, f, t) : new MappedMatrix(n, rows, cols, f, t);
        }
        // Conv1D computes x·W + b with W stored [in, out]; the decoder wants W [out, in], so it is transposed (a copy).
        unsafe F32Matrix Conv1D(string n, int inDim, int outDim)
        {
            var (f, t) = ts.Get(N(n));
            if (t.Shape.Length != 2 || t.Shape[0] != inDim || t.Shape[1] != outDim)
                throw new ModelFormatException($"{f.FileName}: Conv1D tensor '{N(n)}' has shape {t.ShapeText}, expected [in={inDim}, out={outDim}]");
            var src = f.ReadFloats(t);
            var dst = new float[src.Length];
            for (int i = 0; i < inDim; i++)
                for (int o = 0; o < outDim; o++) dst[(long)o * inDim + i] = src[(long)i * outDim + o];
            return F32Matrix.FromArray(n, outDim, inDim, dst);
        }
        float[] V(string n, int len) => Vec(ts, N(n), len);

        int d = c.Dim, hid = c.HiddenDim;
        var layers = new Gpt2Layer[c.Layers];
        for (int i = 0; i < c.Layers; i++)
        {
            string p = $"h.{i}.";
            layers[i] = new Gpt2Layer(V(p + "ln_1.weight", d), V(p + "ln_1.bias", d),
                Conv1D(p + "attn.c_attn.weight", d, 3 * d), V(p + "attn.c_attn.bias", 3 * d),
                Conv1D(p + "attn.c_proj.weight", d, d), V(p + "attn.c_proj.bias", d),
                V(p + "ln_2.weight", d), V(p + "ln_2.bias", d),
                Conv1D(p + "mlp.c_fc.weight", d, hid), V(p + "mlp.c_fc.bias", hid),
                Conv1D(p + "mlp.c_proj.weight", hid, d), V(p + "mlp.c_proj.bias", d));
        }
        var wte = Embedding("wte.weight", c.VocabSize, d);
        // GPT-2 ties lm_head to wte (tie_word_embeddings defaults to true); an untied checkpoint keeps its own head.
        bool tied = cfg.Bool("tie_word_embeddings", true) || !ts.Contains("lm_head.weight");
        WeightMatrix head = wte;
        if (!tied)
        {
            var (f, t) = ts.Get("lm_head.weight");
            if (t.Shape.Length != 2 || t.Shape[0] != c.VocabSize || t.Shape[1] != d)
                throw new ModelFormatException($"{f.FileName}: tensor 'lm_head.weight' has shape {t.ShapeText}, expected [{c.VocabSize},{d}]");
            head = t.Dtype == SafetensorsDtype.F32 ? F32View("lm_head.weight", c.VocabSize, d, f, t) : new MappedMatrix("lm_head.weight", c.VocabSize, d, f, t);
        }
        var w = new Gpt2Weights(c, wte, Embedding("wpe.weight", c.SeqLen, d), layers, V("ln_f.weight", d), V("ln_f.bias", d), head);
        w.Validate(dir);
        return w;
    }

    public void Dispose() => _tensors.Dispose();
}
