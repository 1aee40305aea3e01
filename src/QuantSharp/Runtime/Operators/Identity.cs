using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>Identity and inference-mode Dropout: output 0 is a copy of input 0 (buffers are never shared).</summary>
[OnnxOperator("Identity", 1)]
public sealed class IdentityKernel : OpKernel
{
    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var y = ctx.Output(0, x.DataType, (int[])x.Shape.Clone());
        Array.Copy(x.Buffer, y.Buffer, x.Length);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is { } t) ctx.SetOutputType(0, t);
    }
}
