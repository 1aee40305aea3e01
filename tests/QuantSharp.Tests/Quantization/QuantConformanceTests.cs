using QuantSharp.Tests.Conformance;
using QuantSharp.Tests.TestData;

namespace QuantSharp.Tests.Quantization;

/// <summary>
/// ONNX's own node tests for the quantization operators, from every available conformance set, through the
/// shared conformance runner. Cases with float8, float4 and 2-bit types must be reported unsupported or refused
/// with a clear message; every other case must pass.
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

    /// <summary>Cases with float8, float4 or 2-bit tensors, which QuantSharp does not hold at run time.</summary>
    private static bool Refused(string name) =>
        name.Contains("e4m3") || name.Contains("e5m2") || name.Contains("float4e2m1") || name.EndsWith("int2", StringComparison.Ordinal);

    [Theory]
    [MemberData(nameof(Cases))]
    public void PassesOrIsRefusedClearly(string set, string name)
    {
        var c = ConformanceData.Find(set, name)!;
        var r = ConformanceRunner.Run(c, new OpAttribution(null));
        if (Refused(name))
        {
            // Either the runner sees the unsupported data type up front, or the kernel refuses it with a clear message.
            Assert.True(r.Outcome == CaseOutcome.Unsupported || (r.Outcome == CaseOutcome.Fail && r.Reason.Contains("not supported")),
                $"{r.Id}: {r.Outcome}: {r.Reason}");
        }
        else
        {
            Assert.True(r.Outcome == CaseOutcome.Pass, $"{r.Id}: {r.Outcome}: {r.Reason}");
        }
    }
}
