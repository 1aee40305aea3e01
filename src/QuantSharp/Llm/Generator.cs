namespace QuantSharp.Llm;

/// <summary>Autoregressive generation: feeds the prompt, then samples until the step limit, BOS/EOS or seq_len.</summary>
public static class Generator
{
    /// <summary>
    /// Yields each generated token as soon as it is chosen (the prompt is not repeated). <paramref name="prompt"/>
    /// must start with the token to condition on (BOS for a fresh story). Stops at BOS or EOS (not yielded), after
    /// <paramref name="maxNewTokens"/> tokens, or at the model's seq_len.
    /// </summary>
    public static IEnumerable<int> Generate(LlamaDecoder decoder, IReadOnlyList<int> prompt, int maxNewTokens, Sampler sampler)
    {
        if (prompt.Count == 0) throw new QuantSharpException("generation needs at least one prompt token (BOS)");
        var state = decoder.NewState();
        int seq = decoder.Config.SeqLen;
        if (prompt.Count > seq) throw new QuantSharpException($"prompt of {prompt.Count} tokens exceeds seq_len {seq}");
        float[] logits = [];
        for (int pos = 0; pos < prompt.Count; pos++) logits = decoder.Forward(state, prompt[pos], pos);
        for (int pos = prompt.Count, made = 0; made < maxNewTokens; pos++, made++)
        {
            int next = sampler.Sample(logits);
            if (next is Llama2cTokenizer.Bos or Llama2cTokenizer.Eos) yield break;
            yield return next;
            if (pos >= seq) yield break;
            logits = decoder.Forward(state, next, pos);
        }
    }

    /// <summary>Like <see cref="Generate"/> but yields text pieces (complete UTF-8 characters) as tokens arrive.</summary>
    public static IEnumerable<string> GenerateText(LlamaDecoder decoder, Llama2cTokenizer tokenizer, string prompt, int maxNewTokens, Sampler sampler)
    {
        var tokens = tokenizer.Encode(prompt, bos: true);
        var stream = new Llama2cTokenizer.StreamDecoder(tokenizer);
        foreach (int t in tokens)
        {
            string s = stream.Next(t);
            if (s.Length > 0) yield return s;
        }
        foreach (int t in Generate(decoder, tokens, maxNewTokens, sampler))
        {
            string s = stream.Next(t);
            if (s.Length > 0) yield return s;
        }
    }
}
