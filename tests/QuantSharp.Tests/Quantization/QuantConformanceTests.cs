using QuantSharp.Tests.Conformance;
using QuantSharp.Tests.TestData;

namespace QuantSharp.Tests.Quantization;

/// <summary>
/// ONNX's own node tests for the quantization operators, from every available conformance set, through the
/// shared conformance runner. Cases with float8, float4 and 2-bit tensors (types QuantSharp cannot hold, listed in
/// known_failures.txt) must be refused with a message naming the data type; every other case must pass.
/// </summary>
public class QuantConformanceTests
{
    private static readonly string[] Prefixes =
    [
        "test_quantizelinear", "test_dequantizelinear", "test_dynamicquantizelinear", "test_qlinearmatmul",
        "test_qlinearconv", "test_matmulinteger", "test_convinteger", "test_basic_convinteger",
    ];

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        // The *_expanded variants are DynamicQuantizeLinear's function body in elementwise ops (not these kernels).
        foreach (var c in ConformanceData.Cases())
            if (Prefixes.Any(p => c.Name.StartsWith(p, StringComparison.Ordinal)) && !c.Name.EndsWith("_expanded", StringComparison.Ordinal))
                data.Add(c.Set, c.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PassesOrIsRefusedClearly(string set, string name)
    {
        var c = ConformanceData.Find(set, name)!;
        var r = ConformanceRunner.Run(c, new OpAttribution(null));
        if (KnownFailures.Load(ConformanceTests.KnownFailuresPath).ContainsKey(r.Id))
        {
            // float8, float4 and 2-bit cases (listed in known_failures.txt): refused with a message naming the data type.
            Assert.Equal(CaseOutcome.Fail, r.Outcome);
            Assert.Contains("data type", r.Reason);
        }
        else
        {
            Assert.True(r.Outcome == CaseOutcome.Pass, $"{r.Id}: {r.Outcome}: {r.Reason}");
        }
    }
}
