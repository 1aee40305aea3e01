using QuantSharp.Runtime;

namespace QuantSharp.Llm.Quantization;

/// <summary>
/// The reference (FP32) model's next-token log-probabilities at every scored position of a window set, computed once so
/// that many quantized variants can be compared against it at the cost of one forward pass each
/// (<see cref="Evaluator.Compare"/> runs both models every time). Same definitions as Evaluator.Compare:
/// KL(P‖Q) = Σ p·(log p − log q) per scored position, averaged; same-top rate = share of positions whose argmaxes agree.
/// Memory: scored positions × vocabulary floats.
/// </summary>
public sealed class ReferenceDistributions
{
    private readonly IReadOnlyList<EvalWindow> _windows;
    private readonly float[][] _logProbs; // per window: ScoredCount × vocab
    private readonly int[][] _top;
    private readonly double[] _nll;
    private readonly int _vocab;

    private ReferenceDistributions(IReadOnlyList<EvalWindow> windows, float[][] lp, int[][] top, double[] nll, int vocab)
    {
        _windows = windows;
        _logProbs = lp;
        _top = top;
        _nll = nll;
        _vocab = vocab;
    }

    public static ReferenceDistributions Compute(LlamaWeights reference, IReadOnlyList<EvalWindow> windows, int threads = 0)
    {
        int vocab = reference.Config.VocabSize;
        var lp = new float[windows.Count][];
        var top = new int[windows.Count][];
        var nll = new double[windows.Count];
        Parallelism.For(threads > 0 ? threads : Environment.ProcessorCount, windows.Count, 1, (w0, w1) =>
        {
            var dec = new LlamaDecoder(reference, 1);
            var buf = new double[vocab];
            for (int wi = w0; wi < w1; wi++)
            {
                var win = windows[wi];
                var st = dec.NewState();
                lp[wi] = new float[(long)win.ScoredCount * vocab];
                top[wi] = new int[win.ScoredCount];
                double a = 0;
                for (int pos = 0; pos + 1 < win.Tokens.Length; pos++)
                {
                    var logits = dec.Forward(st, win.Tokens[pos], pos);
                    if (pos + 1 < win.FirstScored) continue;
                    int k = pos + 1 - win.FirstScored;
                    Evaluator.LogSoftmax(logits, buf);
                    a -= buf[win.Tokens[pos + 1]];
                    for (int i = 0; i < vocab; i++) lp[wi][(long)k * vocab + i] = (float)buf[i];
                    top[wi][k] = Sampler.ArgMax(logits);
                }
                nll[wi] = a;
            }
        });
        return new ReferenceDistributions(windows, lp, top, nll, vocab);
    }

    public EvalResult Evaluate(LlamaWeights model, int threads = 0)
    {
        int n = _windows.Count;
        var nll = new double[n];
        var kl = new double[n];
        var same = new long[n];
        Parallelism.For(threads > 0 ? threads : Environment.ProcessorCount, n, 1, (w0, w1) =>
        {
            var dec = new LlamaDecoder(model, 1);
            var buf = new double[_vocab];
            for (int wi = w0; wi < w1; wi++)
            {
                var win = _windows[wi];
                var st = dec.NewState();
                double a = 0, k = 0;
                long agree = 0;
                for (int pos = 0; pos + 1 < win.Tokens.Length; pos++)
                {
                    var logits = dec.Forward(st, win.Tokens[pos], pos);
                    if (pos + 1 < win.FirstScored) continue;
                    int j = pos + 1 - win.FirstScored;
                    Evaluator.LogSoftmax(logits, buf);
                    a -= buf[win.Tokens[pos + 1]];
                    var p = _logProbs[wi].AsSpan(j * _vocab, _vocab);
                    double s = 0;
                    for (int i = 0; i < _vocab; i++) s += Math.Exp(p[i]) * (p[i] - buf[i]);
                    k += s;
                    if (Sampler.ArgMax(logits) == _top[wi][j]) agree++;
                }
                nll[wi] = a;
                kl[wi] = k;
                same[wi] = agree;
            }
        });
        long tokens = _windows.Sum(w => (long)w.ScoredCount);
        return new EvalResult(n, tokens, nll.Sum() / tokens, kl.Sum() / tokens, (double)same.Sum() / tokens, _nll.Sum() / tokens);
    }
}
