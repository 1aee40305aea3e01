using QuantSharp.Graph;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Constant: the tensor of attribute `value`, or (opset 12+) a scalar/1-D tensor from value_float(s),
/// value_int(s) or value_string(s). Each run returns a fresh copy.
/// </summary>
[OnnxOperator("Constant", 1)]
public sealed class ConstantKernel : OpKernel
{
    /// <summary>The constant this node produces (not copied: callers copy).</summary>
    internal Tensor Value()
    {
        var n = Node;
        if (n.Attribute("value") is { Kind: AttributeKind.Tensor, Tensor: { } t }) return t;
        if (n.Attribute("value_float") is { Kind: AttributeKind.Float } f) return Tensor<float>.Scalar(f.Float);
        if (n.Attribute("value_floats") is { Kind: AttributeKind.Floats } fs) return new Tensor<float>((float[])fs.Floats.Clone(), [fs.Floats.Length]);
        if (n.Attribute("value_int") is { Kind: AttributeKind.Int } i) return Tensor<long>.Scalar(i.Int);
        if (n.Attribute("value_ints") is { Kind: AttributeKind.Ints } ints) return new Tensor<long>((long[])ints.Ints.Clone(), [ints.Ints.Length]);
        if (n.Attribute("value_string") is { Kind: AttributeKind.String } s) return Tensor<string>.Scalar(s.String);
        if (n.Attribute("value_strings") is { Kind: AttributeKind.Strings } ss) return new Tensor<string>((string[])ss.Strings.Clone(), [ss.Strings.Length]);
        if (n.Attribute("sparse_value") is not null) throw new QuantSharpException("Constant with a sparse_value is not supported");
        throw new QuantSharpException("Constant has no value attribute");
    }

    public override void Initialize(KernelInitContext ctx) => Value();

    public override void Compute(KernelContext ctx)
    {
        var v = Value();
        var y = ctx.Output(0, v.DataType, (int[])v.Shape.Clone());
        Array.Copy(v.Buffer, y.Buffer, v.Length);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var v = Value();
        ctx.SetOutputType(0, v.DataType, v.Shape);
    }
}

/// <summary>ConstantOfShape: a tensor of the shape given by the int64 input, filled with the one-element `value` attribute (float 0 by default).</summary>
[OnnxOperator("ConstantOfShape", 9)]
public sealed class ConstantOfShapeKernel : MovementKernel
{
    private Tensor FillValue()
    {
        if (Node.Attribute("value") is { Kind: AttributeKind.Tensor, Tensor: { } t })
        {
            if (t.Length != 1) throw new QuantSharpException($"ConstantOfShape value must have one element, got {t.Length}");
            return t;
        }
        return Tensor<float>.Scalar(0f);
    }

    public override void Compute(KernelContext ctx)
    {
        // The element type follows the value attribute, not the shape input.
        Dispatch(ctx, FillValue().Buffer.GetType().GetElementType()!);
    }

    protected override void Run<T>(KernelContext ctx)
    {
        var v = (Tensor<T>)FillValue();
        var dims = Movement.ToLongs(ctx.Input(0), "ConstantOfShape input");
        var shape = dims.Select(d => Movement.ToInt(d, "ConstantOfShape dimension")).ToArray();
        var y = OutputLike<T>(ctx, 0, v, shape);
        Array.Fill(y.Data, v.Data[0]);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var dt = FillValue().DataType;
        var dims = Movement.ConstLongs(ctx, 0);
        if (dims is not null)
        {
            ctx.SetOutputType(0, new TensorTypeInfo(dt, dims.Select(d => new Dimension(d)).ToArray()));
            return;
        }
        if (ctx.InputType(0)?.Shape is [{ Value: long n }])
            ctx.SetOutputType(0, new TensorTypeInfo(dt, Enumerable.Repeat(Dimension.Unknown, (int)n).ToArray()));
        else ctx.SetOutputType(0, Movement.Unranked(dt));
    }
}

/// <summary>Range: start, start+delta, … while before `limit`; length max(ceil((limit - start) / delta), 0).</summary>
[OnnxOperator("Range", 11)]
public sealed class RangeKernel : MovementKernel
{
    internal static int Count(Tensor start, Tensor limit, Tensor delta)
    {
        if (start is Tensor<long> or Tensor<int> or Tensor<short>)
        {
            long s = (long)start.GetDouble(0), l = (long)limit.GetDouble(0), d = (long)delta.GetDouble(0);
            if (d == 0) throw new QuantSharpException("Range delta must not be 0");
            long diff = l - s;
            // ceil(diff / d) in integers, for either sign of d.
            long q = diff / d;
            if (diff % d != 0 && (diff < 0) == (d < 0)) q++;
            return Movement.ToInt(Math.Max(q, 0), "Range length");
        }
        double ds = start.GetDouble(0), dl = limit.GetDouble(0), dd = delta.GetDouble(0);
        if (dd == 0) throw new QuantSharpException("Range delta must not be 0");
        double n = Math.Ceiling((dl - ds) / dd);
        return Movement.ToInt((long)Math.Max(n, 0), "Range length");
    }

    protected override void Run<T>(KernelContext ctx)
    {
        var s = ctx.Input(0);
        var l = ctx.Input(1);
        var d = ctx.Input(2);
        if (s.Length != 1 || l.Length != 1 || d.Length != 1) throw new QuantSharpException("Range start, limit and delta must be scalars");
        int n = Count(s, l, d);
        var y = OutputLike<T>(ctx, 0, s, [n]);
        if (typeof(T) == typeof(long) && y.Data is long[] ly)
        {
            long a = ((Tensor<long>)s).Data[0], b = ((Tensor<long>)d).Data[0];
            for (int i = 0; i < n; i++) ly[i] = a + i * b;
        }
        else if (typeof(T) == typeof(float) && y.Data is float[] fy)
        {
            // output[i] = start + i * delta, evaluated in float as the spec's loop does.
            float a = ((Tensor<float>)s).Data[0], b = ((Tensor<float>)d).Data[0];
            for (int i = 0; i < n; i++) fy[i] = a + i * b;
        }
        else
        {
            double a = s.GetDouble(0), b = d.GetDouble(0);
            for (int i = 0; i < n; i++) y.Data[i] = Movement.FromDouble<T>(a + i * b);
        }
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        if (ctx.InputType(0) is not { } t) return;
        Tensor? s = ctx.ConstantInput(0), l = ctx.ConstantInput(1), d = ctx.ConstantInput(2);
        if (s is { Length: 1 } && l is { Length: 1 } && d is { Length: 1 })
            ctx.SetOutputType(0, t.ElementType, [Count(s, l, d)]);
        else ctx.SetOutputType(0, new TensorTypeInfo(t.ElementType, [Dimension.Unknown]));
    }
}
