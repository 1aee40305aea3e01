using System.IO.MemoryMappedFiles;

namespace QuantSharp.Llm;

/// <summary>The on-disk layout a llama2.c checkpoint was written in.</summary>
public enum Llama2cLayout
{
    /// <summary>run.c's original: 7×int32 header, negative vocab_size = separate classifier, freq_cis tables kept.</summary>
    Legacy,
    /// <summary>export.py "version 1": 256-byte header (magic 0x616b3432 "ak42", version 1, shared-classifier byte).</summary>
    Version1,
}

/// <summary>
/// A llama2.c checkpoint opened read-only through a memory map. Weight matrices are <see cref="F32Matrix"/> views over
/// the mapping (nothing is copied); only the small RMSNorm vectors are copied into arrays.
/// The weights are valid until <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class Llama2cCheckpoint : IDisposable
{
    private const uint MagicV1 = 0x616b3432;
    private const int HeaderV1 = 256;

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;

    public string Path { get; }
    public Llama2cLayout Layout { get; }
    public long FileBytes { get; }
    public LlamaWeights Weights { get; }

    private Llama2cCheckpoint(string path)
    {
        Path = path;
        FileBytes = new FileInfo(path).Length;
        string name = System.IO.Path.GetFileName(path);
        if (FileBytes < 28) throw new ModelFormatException($"{name}: {FileBytes} bytes is too short for a llama2.c checkpoint header");
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref _base);
            _base += _view.PointerOffset;
            (Layout, Weights) = Parse(name);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Opens a llama2.c checkpoint in either layout; truncated or corrupt files raise <see cref="ModelFormatException"/> naming the file.</summary>
    public static Llama2cCheckpoint Open(string path)
    {
        if (!File.Exists(path)) throw new QuantSharpException($"{path}: model file not found");
        return new Llama2cCheckpoint(path);
    }

    private int Int32At(long offset) => *(int*)(_base + offset);

    private (Llama2cLayout, LlamaWeights) Parse(string name)
    {
        Llama2cLayout layout;
        LlamaConfig cfg;
        long offset;
        if (*(uint*)_base == MagicV1)
        {
            if (FileBytes < HeaderV1) throw new ModelFormatException($"{name}: version-1 header is truncated ({FileBytes} of {HeaderV1} bytes)");
            int version = Int32At(4);
            if (version != 1) throw new ModelFormatException($"{name}: llama2.c checkpoint version {version} is not supported (only 1 and the legacy layout)");
            byte shared = _base[36];
            if (shared > 1) throw new ModelFormatException($"{name}: shared_classifier byte is {shared}, expected 0 or 1");
            cfg = new LlamaConfig(Int32At(8), Int32At(12), Int32At(16), Int32At(20), Int32At(24), Int32At(28), Int32At(32), shared == 1);
            layout = Llama2cLayout.Version1;
            offset = HeaderV1;
        }
        else
        {
            int vocab = Int32At(20);
            cfg = new LlamaConfig(Int32At(0), Int32At(4), Int32At(8), Int32At(12), Int32At(16), Math.Abs(vocab), Int32At(24), vocab > 0);
            layout = Llama2cLayout.Legacy;
            offset = 28;
        }
        cfg.Validate(name);

        long expected = ExpectedBytes(cfg, layout);
        if (FileBytes < expected)
            throw new ModelFormatException($"{name}: truncated llama2.c checkpoint ({layout}): {FileBytes} bytes, the header needs {expected}");
        if (FileBytes > expected)
            throw new ModelFormatException($"{name}: {FileBytes - expected} unexpected trailing bytes after the weights of a {layout} llama2.c checkpoint (corrupt header?)");

        int d = cfg.Dim, h = cfg.HiddenDim, kv = cfg.KvDim, L = cfg.Layers;
        float* p = (float*)(_base + offset);
        F32Matrix Mat(string n, int rows, int cols)
        {
            var m = new F32Matrix(n, rows, cols, p, this);
            p += (long)rows * cols;
            return m;
        }
        float[] Vec(int n)
        {
            var v = new ReadOnlySpan<float>(p, n).ToArray();
            p += n;
            return v;
        }
        F32Matrix[] Stack(string n, int rows, int cols) => Enumerable.Range(0, L).Select(l => Mat($"layers.{l}.{n}", rows, cols)).ToArray();

        F32Matrix emb, classifier;
        F32Matrix[] wq, wk, wv, wo, w1, w2, w3;
        float[][] rmsAtt, rmsFfn;
        float[] rmsFinal;
        if (layout == Llama2cLayout.Legacy)
        {
            emb = Mat("tok_embeddings", cfg.VocabSize, d);
            rmsAtt = Enumerable.Range(0, L).Select(_ => Vec(d)).ToArray();
            wq = Stack("attention.wq", d, d);
            wk = Stack("attention.wk", kv, d);
            wv = Stack("attention.wv", kv, d);
            wo = Stack("attention.wo", d, d);
            rmsFfn = Enumerable.Range(0, L).Select(_ => Vec(d)).ToArray();
            w1 = Stack("feed_forward.w1", h, d);
            w2 = Stack("feed_forward.w2", d, h);
            w3 = Stack("feed_forward.w3", h, d);
            rmsFinal = Vec(d);
            // freq_cis_real and freq_cis_imag [seq_len, head_size/2]: recomputed by the decoder, skipped here.
            p += (long)cfg.SeqLen * cfg.HeadSize;
            classifier = cfg.SharedClassifier ? emb : Mat("output", cfg.VocabSize, d);
        }
        else
        {
            rmsAtt = Enumerable.Range(0, L).Select(_ => Vec(d)).ToArray();
            rmsFfn = Enumerable.Range(0, L).Select(_ => Vec(d)).ToArray();
            rmsFinal = Vec(d);
            emb = Mat("tok_embeddings", cfg.VocabSize, d);
            wq = Stack("attention.wq", d, d);
            wk = Stack("attention.wk", kv, d);
            wv = Stack("attention.wv", kv, d);
            wo = Stack("attention.wo", d, d);
            w1 = Stack("feed_forward.w1", h, d);
            w2 = Stack("feed_forward.w2", d, h);
            w3 = Stack("feed_forward.w3", h, d);
            classifier = cfg.SharedClassifier ? emb : Mat("output", cfg.VocabSize, d);
        }
        var layers = Enumerable.Range(0, L).Select(l => new LlamaLayer(rmsAtt[l], wq[l], wk[l], wv[l], wo[l], rmsFfn[l], w1[l], w2[l], w3[l])).ToArray();
        foreach (var v in rmsAtt.Concat(rmsFfn).Append(rmsFinal))
            if (v.Any(x => !float.IsFinite(x))) throw new ModelFormatException($"{name}: non-finite RMSNorm weight (corrupt file?)");
        return (layout, new LlamaWeights(cfg, emb, layers, rmsFinal, classifier));
    }


    /// <summary>File size implied by the header.</summary>
    public static long ExpectedBytes(LlamaConfig c, Llama2cLayout layout)
    {
        long d = c.Dim, h = c.HiddenDim, kv = c.KvDim, L = c.Layers, v = c.VocabSize;
        long floats = v * d + 2 * L * d + L * (2 * d * d + 2 * kv * d) + 3 * L * h * d + d + (c.SharedClassifier ? 0 : v * d);
        return layout == Llama2cLayout.Legacy ? 28 + 4 * (floats + (long)c.SeqLen * c.HeadSize) : HeaderV1 + 4 * floats;
    }

    public void Dispose()
    {
        if (_base != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _file.Dispose();
    }
}
