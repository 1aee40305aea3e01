using QuantSharp.Tensors;

namespace QuantSharp.Data;

/// <summary>A batch of samples: one tensor per model input, and one label (or null) per sample.</summary>
public sealed record Batch(int Start, IReadOnlyList<Tensor> Inputs, IReadOnlyList<string>? InputNames, int?[] Labels)
{
    /// <summary>The first (usually only) input.</summary>
    public Tensor Input => Inputs[0];

    public int Size => Labels.Length;
}

/// <summary>
/// Builds model inputs from dataset samples. Images are preprocessed (<see cref="ImagePreprocessing"/>; the defaults
/// when none is given: float32 NCHW, RGB, 0..255) and stacked into [B, C, H, W] or [B, H, W, C]. Tensor samples are
/// stacked into [B, …]; batched samples (ONNX test data) are concatenated along axis 0. Tensor and batched samples
/// keep their values and type unless the preprocessing has a non-identity transform (scale, mean, std: then they
/// become <see cref="ImagePreprocessing.OutputType"/> with y = (x·scale − mean)/std and a single mean and std), or
/// they are floating-point and the preprocessing asks for another floating-point type.
/// </summary>
public static class Batcher
{
    /// <summary>Samples [start, start + count) as one batch.</summary>
    public static Batch Stack(IDataset dataset, int start, int count, ImagePreprocessing? preprocessing = null)
    {
        if (start < 0 || count <= 0 || start > dataset.Count - count)
            throw new QuantSharpException($"{dataset.Name}: samples {start}..{start + count - 1} are outside 0..{dataset.Count - 1}");
        var labels = new int?[count];
        if (dataset is IMultiInputDataset multi)
        {
            var perInput = new List<Tensor>[multi.InputNames.Count];
            for (int k = 0; k < perInput.Length; k++) perInput[k] = new List<Tensor>(count);
            for (int i = 0; i < count; i++)
            {
                var inputs = multi.GetInputs(start + i);
                if (inputs.Count != perInput.Length)
                    throw new QuantSharpException($"{dataset.Name}: sample {start + i} has {inputs.Count} inputs, expected {perInput.Length}");
                for (int k = 0; k < perInput.Length; k++) perInput[k].Add(inputs[k]);
                labels[i] = multi.GetLabel(start + i);
            }
            var stacked = new Tensor[perInput.Length];
            for (int k = 0; k < perInput.Length; k++)
                stacked[k] = Combine(perInput[k], dataset.Kind, preprocessing, $"{dataset.Name} input '{multi.InputNames[k]}'", start);
            return new Batch(start, stacked, multi.InputNames, labels);
        }
        var samples = new List<Tensor>(count);
        for (int i = 0; i < count; i++)
        {
            var (input, label) = dataset.Get(start + i);
            samples.Add(input);
            labels[i] = label;
        }
        return new Batch(start, [Combine(samples, dataset.Kind, preprocessing, dataset.Name, start)], null, labels);
    }

    /// <summary>Consecutive batches of up to <paramref name="batchSize"/> samples over the first <paramref name="limit"/> samples (all when null).</summary>
    public static IEnumerable<Batch> Batches(IDataset dataset, int batchSize, ImagePreprocessing? preprocessing = null, int? limit = null)
    {
        if (batchSize <= 0) throw new QuantSharpException($"batch size {batchSize} is not positive");
        int n = Math.Min(dataset.Count, limit ?? int.MaxValue);
        for (int s = 0; s < n; s += batchSize) yield return Stack(dataset, s, Math.Min(batchSize, n - s), preprocessing);
    }

    /// <summary>Preprocesses images and stacks them into [B, C, H, W] or [B, H, W, C]; all must come out the same size.</summary>
    public static Tensor StackImages(IReadOnlyList<Tensor> images, ImagePreprocessing p, string name, int firstIndex = 0)
    {
        p.Validate();
        var (c, h, w) = ImageTransform.OutputShape(images[0], p, $"{name} sample {firstIndex}");
        int per = c * h * w;
        var f = new float[images.Count * per];
        for (int i = 0; i < images.Count; i++)
        {
            string what = $"{name} sample {firstIndex + i}";
            var (ci, hi, wi) = ImageTransform.OutputShape(images[i], p, what);
            if (ci != c || hi != h || wi != w)
                throw new QuantSharpException(
                    $"{what}: image gives {ci}×{hi}×{wi}, unlike {c}×{h}×{w} of sample {firstIndex}; set a preprocessing size to resize");
            ImageTransform.Fill(images[i], p, f.AsSpan(i * per, per), what);
        }
        int[] shape = p.Layout == ImageLayout.NCHW ? [images.Count, c, h, w] : [images.Count, h, w, c];
        return ImageTransform.FromFloat(f, shape, p.OutputType);
    }

    /// <summary>Stacks same-shape, same-type tensors into a new leading dimension [B, …].</summary>
    public static Tensor StackTensors(IReadOnlyList<Tensor> samples, string name, int firstIndex = 0)
    {
        var first = samples[0];
        for (int i = 1; i < samples.Count; i++) CheckLike(first, samples[i], name, firstIndex, i, 0);
        var result = Tensor.Zeros(first.DataType, [samples.Count, .. first.Shape]);
        for (int i = 0; i < samples.Count; i++) Array.Copy(samples[i].Buffer, 0, result.Buffer, (long)i * first.Length, first.Length);
        return result;
    }

    /// <summary>Concatenates tensors along axis 0; the other dimensions and the type must agree.</summary>
    public static Tensor ConcatBatches(IReadOnlyList<Tensor> samples, string name, int firstIndex = 0)
    {
        var first = samples[0];
        if (first.Rank == 0) throw new QuantSharpException($"{name} sample {firstIndex}: a scalar has no batch dimension to concatenate");
        if (samples.Count == 1) return first;
        long rows = first.Shape[0];
        for (int i = 1; i < samples.Count; i++)
        {
            CheckLike(first, samples[i], name, firstIndex, i, 1);
            rows += samples[i].Shape[0];
        }
        var result = Tensor.Zeros(first.DataType, [checked((int)rows), .. first.Shape[1..]]);
        long offset = 0;
        foreach (var s in samples)
        {
            Array.Copy(s.Buffer, 0, result.Buffer, offset, s.Length);
            offset += s.Length;
        }
        return result;
    }

    private static void CheckLike(Tensor first, Tensor other, string name, int firstIndex, int i, int fromAxis)
    {
        if (other.DataType != first.DataType || other.Rank != first.Rank || !other.Shape.AsSpan(fromAxis).SequenceEqual(first.Shape.AsSpan(fromAxis)))
            throw new QuantSharpException(
                $"{name} sample {firstIndex + i}: {other} does not match {first} of sample {firstIndex}, so they cannot be batched");
    }

    private static Tensor Combine(List<Tensor> samples, SampleKind kind, ImagePreprocessing? p, string name, int firstIndex)
    {
        if (kind == SampleKind.Image) return StackImages(samples, p ?? new ImagePreprocessing(), name, firstIndex);
        var stacked = kind == SampleKind.Batched ? ConcatBatches(samples, name, firstIndex) : StackTensors(samples, name, firstIndex);
        return p is null ? stacked : Transform(stacked, p, name);
    }

    /// <summary>y = (x·scale − mean)/std on a non-image tensor, when the preprocessing asks for a change (see the class remarks).</summary>
    private static Tensor Transform(Tensor t, ImagePreprocessing p, string name)
    {
        p.Validate();
        bool typeChange = DataTypes.IsFloatingPoint(t.DataType) && t.DataType != p.OutputType;
        if (p.IsIdentityTransform && !typeChange) return t;
        if (p.Mean is { Length: > 1 } || p.Std is { Length: > 1 })
            throw new QuantSharpException($"{name}: per-channel mean/std apply to images only; give one value for tensor data");
        if (t.DataType is DataType.String) throw new QuantSharpException($"{name}: string data cannot be scaled");
        float mean = p.Mean?[0] ?? 0f, std = p.Std?[0] ?? 1f;
        var f = new float[t.Length];
        for (int i = 0; i < f.Length; i++) f[i] = ((float)t.GetDouble(i) * p.Scale - mean) / std;
        return ImageTransform.FromFloat(f, t.Shape, p.OutputType);
    }
}
