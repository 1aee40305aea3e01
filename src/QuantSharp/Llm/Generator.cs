namespace QuantSharp.Llm;

/// <summary>Autoregressive generation: feeds the prompt, then samples until the step limit, a stop token or seq_len.</summary>
public static class Generator
{
    /// <summary>llama2.c generation: stops at BOS or EOS (see the general overload).</summary>
    public static IEnumerable<int> Generate(LlamaDecoder decoder, IReadOnlyList<int> prompt, int maxNewTokens, Sampler sampler)
        => Generate(new LlamaCausalLm(decoder), prompt, maxNewTokens, sampler, [Llama2cTokenizer.Bos, Llama2cTokenizer.Eos]);

    /// <summary>
    /// Yields each generated token as soon as it is chosen (the prompt is not repeated). <paramref name="prompt"/>
    /// must start with the token to condition on (BOS for a fresh story). Stops at a token of <paramref name="stop"/>
    /// (not yielded), after <paramref name="maxNewTokens"/> tokens, or at the model's seq_len.
    /// </summary>
    public static IEnumerable<int> Generate(ICausalLm model, IReadOnlyList<int> prompt, int maxNewTokens, Sampler sampler, IReadOnlyCollection<int> stop)
    {
        if (prompt.Count == 0) throw new QuantSharpException("generation needs at least one prompt token (BOS)");
        var session = model.NewSession();
        int seq = model.SeqLen;
        if (prompt.Count > seq) throw new QuantSharpException($"prompt of {prompt.Count} tokens exceeds seq_len {seq}");
        // The whole prompt as one batch (same logits as feeding it token by token).
        float[] logits = session.Prefill(prompt.ToArray(), 0);
        for (int pos = prompt.Count, made = 0; made < maxNewTokens; pos++, made++)
        {
            int next = sampler.Sample(logits);
            if (stop.Contains(next)) yield break;
            yield return next;
            if (pos >= seq) yield break;
            logits = session.Forward(next, pos);
        }
    }

    /// <summary>llama2.c generation of text pieces (see the general overload).</summary>
    public static IEnumerable<string> GenerateText(LlamaDecoder decoder, Llama2cTokenizer tokenizer, string prompt, int maxNewTokens, Sampler sampler)
        => GenerateText(new LlamaCausalLm(decoder), tokenizer, prompt, maxNewTokens, sampler);

    /// <summary>
    /// Yields text pieces (complete UTF-8 characters) as tokens arrive: the prompt encoded after BOS is echoed, then the
    /// continuation; generation stops at the tokenizer's BOS or EOS.
    /// </summary>
    public static IEnumerable<string> GenerateText(ICausalLm model, ITextTokenizer tokenizer, string prompt, int maxNewTokens, Sampler sampler)
    {
        if (tokenizer.VocabSize > model.VocabSize)
            throw new QuantSharpException($"the tokenizer has {tokenizer.VocabSize} tokens, the model only {model.VocabSize}");
        var tokens = tokenizer.Encode(prompt, bos: true);
        var stream = new TokenStreamDecoder(tokenizer);
        foreach (int t in tokens)
        {
            string s = stream.Next(t);
            if (s.Length > 0) yield return s;
        }
        foreach (int t in Generate(model, tokens, maxNewTokens, sampler, [tokenizer.BosId, tokenizer.EosId]))
        {
            string s = stream.Next(t);
            if (s.Length > 0) yield return s;
        }
    }
}
