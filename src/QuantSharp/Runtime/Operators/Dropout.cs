using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Dropout. In inference (is_test in opset 1–6, no training_mode or training_mode false in 12+, or ratio 0) the output
/// is a copy of the input and the optional mask is all ones (bool true from opset 10, the input's type before).
/// With training_mode true and ratio r &gt; 0 each element is kept with probability 1 - r and scaled by 1 / (1 - r),
/// drawn from a generator seeded by the `seed` attribute when given.
/// </summary>
[OnnxOperator("Dropout", 1)]
public sealed class DropoutKernel : MovementKernel
{
    private Random? _random;

    private DataType MaskType(DataType input) => OpsetVersion >= 10 ? DataType.Bool : input;

    protected override void Run<T>(KernelContext ctx)
    {
        var x = (Tensor<T>)ctx.Input(0);
        float ratio = Node.GetFloat("ratio", 0.5f);
        bool training = false;
        if (OpsetVersion >= 12)
        {
            if (ctx.OptionalInput(1) is { } r) ratio = (float)r.GetDouble(0);
            if (ctx.OptionalInput(2) is { } tm) training = tm.GetDouble(0) != 0;
        }
        if (ratio < 0 || ratio >= 1) throw new QuantSharpException($"Dropout ratio {ratio} is outside [0, 1)");
        var y = OutputLike<T>(ctx, 0, x, (int[])x.Shape.Clone());
        Tensor? mask = ctx.WantsOutput(1) ? ctx.Output(1, MaskType(x.DataType), (int[])x.Shape.Clone()) : null;
        if (!training || ratio == 0)
        {
            x.Data.AsSpan().CopyTo(y.Data);
            if (mask is Tensor<bool> bm) Array.Fill(bm.Data, true);
            else if (mask is Tensor<T> tm) Array.Fill(tm.Data, Movement.FromDouble<T>(1));
            return;
        }
        _random ??= Node.Attribute("seed") is not null ? new Random((int)Node.GetFloat("seed", 0)) : new Random();
        double scale = 1.0 / (1.0 - ratio);
        for (int i = 0; i < x.Length; i++)
        {
            bool keep = _random.NextDouble() >= ratio;
            y.Data[i] = keep ? Movement.FromDouble<T>(x.GetDouble(i) * scale) : Movement.FromDouble<T>(0);
            if (mask is Tensor<bool> bm) bm.Data[i] = keep;
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        ctx.SetOutputType(0, t);
        if (Node.Outputs.Count > 1) ctx.SetOutputType(1, new TensorTypeInfo(MaskType(t.ElementType), t.Shape));
    }
}
