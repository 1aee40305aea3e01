using System.Numerics;
using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators.Quantization;

/// <summary>
/// DequantizeLinear (opsets 10, 13, 19, 21, 23, 24, 25): y = (x − x_zero_point) · x_scale.
/// <list type="bullet">
/// <item>x: int8, uint8, int16, uint16, int4, uint4 or int32 (int32 normally has no zero point; one is honoured if given).</item>
/// <item>Granularity as in QuantizeLinear: per-tensor, per-axis (<c>axis</c>), blocked (<c>block_size</c>).</item>
/// <item>Output type: the <c>output_dtype</c> attribute, else x_scale's type (float, float16 or bfloat16). The
/// product is formed in float32 and rounded once to the output type.</item>
/// </list>
/// </summary>
[OnnxOperator("DequantizeLinear", 10)]
public sealed class DequantizeLinearKernel : OpKernel
{
    private long _axis = 1;
    private long _blockSize;
    private DataType? _outputDtype;

    public override void Initialize(KernelInitContext ctx)
    {
        var n = ctx.Node;
        _axis = n.GetInt("axis", 1);
        _blockSize = n.GetInt("block_size", 0);
        if (_blockSize < 0) throw new QuantSharpException($"block_size {_blockSize} must not be negative");
        long od = n.GetInt("output_dtype", 0);
        if (od != 0)
        {
            var t = (DataType)od;
            if (t is not (DataType.Float or DataType.Float16 or DataType.BFloat16))
                throw new QuantSharpException($"output_dtype {od} must be float, float16 or bfloat16");
            _outputDtype = t;
        }
        if (n.Input(0)?.Type is { ElementType: var xt }) QuantTensorOps.RefuseFloat8(xt, "x");
    }

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        var scale = ctx.Input(1);
        var zp = ctx.OptionalInput(2);
        QuantTensorOps.RefuseFloat8(x.DataType, "x");
        if (zp is not null && zp.DataType != x.DataType)
            throw new QuantSharpException($"x_zero_point is {DataTypes.Name(zp.DataType)} but x is {DataTypes.Name(x.DataType)}");
        var outType = _outputDtype ?? scale.DataType;
        if (outType is not (DataType.Float or DataType.Float16 or DataType.BFloat16))
            throw new QuantSharpException($"x_scale must be float, float16 or bfloat16, got {DataTypes.Name(scale.DataType)}");
        var layout = QuantParamLayout.Resolve(x.Shape, scale.Shape, _axis, _blockSize, "x_scale");
        if (zp is not null && !ShapeUtil.SameShape(zp.Shape, scale.Shape) && !(zp.Length == 1 && scale.Length == 1))
            throw new QuantSharpException($"x_zero_point shape {ShapeUtil.Format(zp.Shape)} differs from x_scale shape {ShapeUtil.Format(scale.Shape)}");
        var scales = QuantTensorOps.ToFloats(scale, "x_scale");
        var zps = zp is null ? new int[scales.Length] : QuantTensorOps.ToInts(zp, "x_zero_point");
        var y = ctx.Output(0, outType, (int[])x.Shape.Clone());
        switch (x)
        {
            case Tensor<byte> t: Dispatch(ctx, t.Data, scales, zps, layout, y); break;
            case Tensor<sbyte> t: Dispatch(ctx, t.Data, scales, zps, layout, y); break;
            case Tensor<short> t: Dispatch(ctx, t.Data, scales, zps, layout, y); break;
            case Tensor<ushort> t: Dispatch(ctx, t.Data, scales, zps, layout, y); break;
            case Tensor<int> t: Dispatch(ctx, t.Data, scales, zps, layout, y); break;
            default: throw new QuantSharpException($"x must be an integer tensor, got {DataTypes.Name(x.DataType)}");
        }
    }

    private static void Dispatch<TIn>(KernelContext ctx, TIn[] x, float[] scales, int[] zps, QuantParamLayout l, Tensor y)
        where TIn : unmanaged, IBinaryInteger<TIn>
    {
        switch (y)
        {
            case Tensor<float> t: Run(ctx, x, scales, zps, l, t.Data, v => v); break;
            case Tensor<Half> t: Run(ctx, x, scales, zps, l, t.Data, v => (Half)v); break;
            case Tensor<BFloat16> t: Run(ctx, x, scales, zps, l, t.Data, v => (BFloat16)v); break;
            default: throw new QuantSharpException($"cannot dequantize to {DataTypes.Name(y.DataType)}");
        }
    }

    private static void Run<TIn, TOut>(KernelContext ctx, TIn[] x, float[] scales, int[] zps, QuantParamLayout l, TOut[] y, Func<float, TOut> convert)
        where TIn : unmanaged, IBinaryInteger<TIn>
    {
        int inner = l.Inner, stride = l.ParamInnerStride;
        if (l.Rows == 0 || inner == 0) return;
        bool isFloat = typeof(TOut) == typeof(float);
        if (l.Granularity == QuantGranularity.PerTensor)
        {
            float s = scales[0];
            long z = zps[0];
            if (isFloat && (typeof(TIn) == typeof(byte) || typeof(TIn) == typeof(sbyte)))
            {
                // 8-bit codes to float: the vector kernel, bit-identical to the loop below.
                var yf = (float[])(object)y;
                // typeof, not `is`: the runtime lets a byte[] pass `is sbyte[]` (and the reverse).
                bool signed = typeof(TIn) == typeof(sbyte);
                Array xa = x;
                ctx.ParallelFor(x.Length, 16384, (start, end) =>
                    Kernels.Simd.Int8Dequantize.Dequantize(Bytes(xa).Slice(start, end - start), signed, s, (int)z, yf.AsSpan(start, end - start)));
                return;
            }
            ctx.ParallelFor(x.Length, 16384, (start, end) =>
            {
                if (isFloat)
                {
                    var yf = (float[])(object)y;
                    for (int i = start; i < end; i++) yf[i] = (float)(long.CreateTruncating(x[i]) - z) * s;
                }
                else
                {
                    for (int i = start; i < end; i++) y[i] = convert((float)(long.CreateTruncating(x[i]) - z) * s);
                }
            });
            return;
        }
        ctx.ParallelFor(l.Rows, Math.Max(1, 16384 / inner), (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int pBase = l.RowParamBase(r), off = r * inner;
                for (int i = 0; i < inner; i++)
                {
                    int p = pBase + i * stride;
                    y[off + i] = convert((float)(long.CreateTruncating(x[off + i]) - zps[p]) * scales[p]);
                }
            }
        });
    }

    private static Span<byte> Bytes(Array x) => System.Runtime.InteropServices.MemoryMarshal.CreateSpan(
        ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(x), x.Length);

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var x = ctx.InputType(0);
        long od = ctx.Node.GetInt("output_dtype", 0);
        var outType = od != 0 ? (DataType)od : QuantTensorOps.InputDtype(ctx, 1);
        if (outType == DataType.Undefined) outType = DataType.Float;
        ctx.SetOutputType(0, new TensorTypeInfo(outType, x?.Shape));
    }
}
