using QuantSharp.Data;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Runtime;
using QuantSharp.Tensors;

namespace QuantSharp.Tests.Quantizers;

/// <summary>The example models and data of examples/, with the preprocessing they were trained with.</summary>
public static class Examples
{
    public static string Dir => Path.Combine(TestPaths.RepoRoot, "examples");
    public static string ModelPath(string name) => Path.Combine(Dir, "models", name + ".onnx");
    public static Model Load(string name) => OnnxModelIO.Load(ModelPath(name));
    public static string CalibPath => Path.Combine(Dir, "data", "fmnist_calib_1000.npz");
    public static string EvalPath => Path.Combine(Dir, "data", "fmnist_eval_2000.npz");

    /// <summary>(p/255 − 0.2860)/0.3530 into [N, 1, 28, 28].</summary>
    public static ImagePreprocessing Preprocessing() => new ImagePreprocessing
    {
        Scale = 1f / 255, Mean = [0.2860f], Std = [0.3530f],
    }.ForInputShape([-1, 1, 28, 28], ImageLayout.NCHW);

    private static readonly Lazy<IDataset> EvalSet = new(() => DatasetSpec.Open("npz:" + EvalPath));
    private static readonly Lazy<IDataset> CalibSet = new(() => DatasetSpec.Open("npz:" + CalibPath));
    public static IDataset Eval => EvalSet.Value;
    public static IDataset Calib => CalibSet.Value;

    /// <summary>Argmax predictions of a model on the first <paramref name="count"/> evaluation images.</summary>
    public static int[] Predict(Model model, int count = 2000, int batch = 100)
    {
        using var s = new InferenceSession(model);
        var pre = Preprocessing();
        var result = new List<int>(count);
        foreach (var b in Batcher.Batches(Eval, batch, pre, count))
        {
            var y = s.Run(b.Input).Values.First();
            int per = y.Length / b.Size;
            for (int i = 0; i < b.Size; i++) result.Add(Argmax(y, i * per, per));
        }
        return result.ToArray();
    }

    public static int Argmax(Tensor y, int start, int count)
    {
        int best = 0;
        for (int j = 1; j < count; j++) if (y.GetDouble(start + j) > y.GetDouble(start + best)) best = j;
        return best;
    }

    public static int[] Labels(int count = 2000) => Enumerable.Range(0, count).Select(i => Eval.Get(i).Label!.Value).ToArray();

    public static double Accuracy(int[] predictions) =>
        (double)predictions.Zip(Labels(predictions.Length)).Count(p => p.First == p.Second) / predictions.Length;

    /// <summary>Top-1 accuracy of PyTorch's FP32 logits (examples/data/pytorch_predictions_eval_2000.npz) for a model.</summary>
    public static double PyTorchFp32Accuracy(string model)
    {
        var arrays = Npz.Read(Path.Combine(Dir, "data", "pytorch_predictions_eval_2000.npz"));
        var logits = arrays.First(a => a.Name == model + "_logits").Tensor;
        int n = logits.Shape[0];
        var labels = Labels(n);
        int correct = 0;
        for (int i = 0; i < n; i++) if (Argmax(logits, i * 10, 10) == labels[i]) correct++;
        return (double)correct / n;
    }
}
