using QuantSharp.Data;
using QuantSharp.Onnx;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Data;

public sealed class TensorProtoDatasetTests : IDisposable
{
    private readonly string _dir = TestPaths.NewTempDir("qs-pb");

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>Writes test_data_set_{set} with two inputs: "a" float [1, 3] = set + k/10 and "b" int64 [1] = set.</summary>
    private void WriteSet(string root, int set)
    {
        string d = Path.Combine(root, $"test_data_set_{set}");
        Directory.CreateDirectory(d);
        TensorProtoIO.WriteFile(Path.Combine(d, "input_0.pb"), "a", new Tensor<float>([set, set + 0.1f, set + 0.2f], [1, 3]));
        TensorProtoIO.WriteFile(Path.Combine(d, "input_1.pb"), "b", new Tensor<long>([set], [1]));
        TensorProtoIO.WriteFile(Path.Combine(d, "output_0.pb"), "y", new Tensor<float>([-set], [1]));
    }

    [Fact]
    public void FolderOfSetsIsOneSamplePerSet()
    {
        // 10 sets, so that set 10 must sort after set 9, not after set 1.
        for (int s = 0; s <= 10; s++) WriteSet(_dir, s);
        File.WriteAllText(Path.Combine(_dir, "model.onnx"), "not read");
        var ds = (TensorProtoDataset)DatasetSpec.Open($"pb:{_dir}");
        Assert.Equal(11, ds.Count);
        Assert.Equal(SampleKind.Batched, ds.Kind);
        Assert.Equal(["a", "b"], ds.InputNames);
        Assert.EndsWith("test_data_set_10", ds.SetDirectory(10));
        var inputs = ds.GetInputs(10);
        Assert.Equal([10f, 10.1f, 10.2f], inputs[0].As<float>().Data);
        Assert.Equal([10L], inputs[1].As<long>().Data);
        Assert.Equal(-3f, ds.GetExpectedOutputs(3)[0].Tensor.GetDouble(0));
        Assert.Equal("y", ds.GetExpectedOutputs(3)[0].Name);
        Assert.Null(ds.Get(0).Label);

        // Batching concatenates along the existing batch dimension.
        var batch = Batcher.Stack(ds, 2, 3);
        Assert.Equal(["a", "b"], batch.InputNames!);
        Assert.Equal([3, 3], batch.Inputs[0].Shape);
        Assert.Equal([2L, 3, 4], batch.Inputs[1].As<long>().Data);
    }

    [Fact]
    public void SingleSetFolder()
    {
        WriteSet(_dir, 4);
        var ds = DatasetSpec.Open($"pb:{Path.Combine(_dir, "test_data_set_4")}");
        Assert.Equal(1, ds.Count);
        Assert.Equal([1, 3], ds.Get(0).Input.Shape);
    }

    [Fact]
    public void InstalledOnnxTestData()
    {
        string add = Path.Combine(TestPaths.LibOnnxTestData, "test_add");
        if (!Directory.Exists(add)) return;
        var ds = (TensorProtoDataset)DatasetSpec.Open($"pb:{add}");
        Assert.Equal(Directory.GetDirectories(add, "test_data_set_*").Length, ds.Count);
        var x = ds.GetInputs(0);
        Assert.Equal(2, x.Count);
        var y = ds.GetExpectedOutputs(0)[0].Tensor.As<float>();
        var a = x[0].As<float>();
        var b = x[1].As<float>();
        for (int i = 0; i < y.Length; i++) Assert.Equal(a.Data[i] + b.Data[i], y.Data[i], 5);
    }

    [Fact]
    public void BadLayoutsNameTheFolder()
    {
        Assert.Contains("not found", Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"pb:{Path.Combine(_dir, "none")}")).Message);
        var e = Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"pb:{_dir}"));
        Assert.Contains(_dir, e.Message);
        WriteSet(_dir, 0);
        WriteSet(_dir, 1);
        File.Delete(Path.Combine(_dir, "test_data_set_1", "input_1.pb"));
        e = Assert.Throws<QuantSharpException>(() => DatasetSpec.Open($"pb:{_dir}"));
        Assert.Contains("test_data_set_1", e.Message);
        File.WriteAllBytes(Path.Combine(_dir, "test_data_set_1", "input_1.pb"), [0xFF, 0xFF, 0xFF]);
        var ds = (TensorProtoDataset)DatasetSpec.Open($"pb:{_dir}");
        Assert.Contains("input_1.pb", Assert.ThrowsAny<QuantSharpException>(() => ds.GetInputs(1)).Message);
    }
}
