using QuantSharp.Data;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Models;

/// <summary>
/// The CIFAR-10 CNN and the iris MLP against an independent NumPy reference (Fixtures/make_shared_model_references.py,
/// the interpreter of examples/check_onnx.py): reference_results.json's CIFAR logits are for test images that
/// ../shared does not ship, so deterministic inputs stored beside the references are used instead.
/// </summary>
public class SharedModelReferenceTests
{
    [Theory]
    [InlineData("cifar10_winml_tutorial_cnn")]
    [InlineData("iris_mlp_opset11")]
    public void MatchesIndependentNumPyReferenceWithin1e4Relative(string name)
    {
        var fixtures = Path.Combine(TestPaths.RepoRoot, "tests", "QuantSharp.Tests", "Models", "Fixtures", "shared_model_references.npz");
        var arrays = Npz.Read(fixtures).ToDictionary(a => a.Name, a => a.Tensor);
        var x = arrays[name + "_input"].As<float>();
        var want = arrays[name + "_output"].As<float>();

        using var session = InferenceSession.Load(TestPaths.SharedFile("models", "onnx", name + ".onnx"));
        var got = session.Run(x).Values.Single().As<float>();

        Assert.Equal(want.Shape, got.Shape);
        int rows = want.Shape[0], cols = want.Length / rows;
        for (int r = 0; r < rows; r++)
        {
            // Relative to the row's largest magnitude, as reference_results.json's logits are compared.
            double scale = 0;
            for (int c = 0; c < cols; c++) scale = Math.Max(scale, Math.Abs(want.Data[r * cols + c]));
            for (int c = 0; c < cols; c++)
            {
                double diff = Math.Abs(got.Data[r * cols + c] - want.Data[r * cols + c]);
                Assert.True(diff <= 1e-4 * Math.Max(scale, 1e-6), $"{name} row {r} col {c}: {got.Data[r * cols + c]} vs {want.Data[r * cols + c]}");
            }
        }
    }
}
