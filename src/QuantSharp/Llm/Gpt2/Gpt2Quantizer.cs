using QuantSharp.Llm.Gguf;
using QuantSharp.Llm.Quantization;

namespace QuantSharp.Llm.Gpt2;

/// <summary>
/// Round-to-nearest quantization of every GPT-2 matrix (token_embd, position_embd, attn_qkv, attn_output, ffn_up,
/// ffn_down, a separate output), each in the type the keep rules give its GGUF name (<see cref="LlmQuantizer.TypeFor"/>,
/// default rules included); LayerNorm vectors and biases stay FP32. The calibrated methods need the Llama decoder's
/// input observer and are not available for GPT-2.
/// </summary>
public static class Gpt2Quantizer
{
    public static (Gpt2Weights Weights, IReadOnlyList<QuantizedTensor> Tensors) Quantize(Gpt2Weights fp32, LlmQuantizeOptions o)
    {
        if (!MatrixQuantizers.Types.Contains(o.Type)) throw new QuantSharpException($"unknown weight type '{o.Type}' (known: {string.Join(", ", MatrixQuantizers.Types)})");
        if (o.Method != QuantMethod.Rtn) throw new QuantSharpException($"GPT-2 models are quantized by round to nearest only (--method rtn), not {o.Method.ToString().ToLowerInvariant()}");
        var map = new Dictionary<WeightMatrix, WeightMatrix>(ReferenceEqualityComparer.Instance);
        var report = new List<QuantizedTensor>();
        foreach (var (name, m) in GgufTensors.Matrices(fp32))
        {
            string type = LlmQuantizer.TypeFor(name, o);
            var q = type == "f32" ? m : MatrixQuantizers.RoundToNearest(m.Name, m.Rows, m.Cols, MatrixQuantizers.Values(m), type);
            map[m] = q;
            report.Add(new QuantizedTensor(name, m.Rows, m.Cols, q.TypeName, q.Bytes, null));
        }
        return ((Gpt2Weights)fp32.MapMatrices(m => map[m]), report);
    }
}
