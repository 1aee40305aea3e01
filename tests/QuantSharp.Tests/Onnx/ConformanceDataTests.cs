using QuantSharp.Tests.TestData;

namespace QuantSharp.Tests.Onnx;

public class ConformanceDataTests
{
    [Theory]
    [InlineData(ConformanceData.Onnx122, 400)]
    [InlineData(ConformanceData.Onnx112, 250)]
    [InlineData(ConformanceData.Onnx16, 150)]
    public void ArchivesExtractAndListCasesWithData(string set, int atLeast)
    {
        var cases = ConformanceData.Cases(set);
        Assert.True(cases.Count >= atLeast, $"{set}: only {cases.Count} cases");
        var add = ConformanceData.Find(set, "test_add");
        Assert.NotNull(add);
        Assert.True(File.Exists(add.ModelPath));
        var ds = Assert.Single(add.DataSets());
        Assert.Equal(2, ds.Inputs.Count);
        Assert.Single(ds.Outputs);
        Assert.EndsWith("input_0.pb", ds.Inputs[0]);
    }

    [Fact]
    public void LibOnnxSetIsListedWhenInstalled()
    {
        var cases = ConformanceData.Cases(ConformanceData.LibOnnx);
        if (Directory.Exists(TestPaths.LibOnnxTestData)) Assert.NotEmpty(cases);
        else Assert.Empty(cases);
    }
}
