using QuantSharp.Graph;
using QuantSharp.Quantization.Math;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Operators.Quantization;

/// <summary>
/// QLinearMatMul (opsets 10, 21): inputs a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point.
/// acc = (a − a_zp) · (b − b_zp) in int32, then y = saturate(round_half_even(acc · a_scale · b_scale / y_scale) + y_zp).
/// a's parameters are per-tensor or per-row ([M] or [..., M, 1]); b's per-tensor or per-column ([N] or [..., 1, N]);
/// y's per-tensor or broadcastable to the output. Scales may be float, float16 or bfloat16; a, b, y are int8/uint8.
/// </summary>
[OnnxOperator("QLinearMatMul", 10)]
public sealed class QLinearMatMulKernel : OpKernel
{
    private ConstantInt8MatMulB? _packedB;

    public override void Initialize(KernelInitContext ctx) => _packedB = ConstantInt8MatMulB.TryCreate(ctx, 3, 5);

    public override void Compute(KernelContext ctx)
    {
        var a = ctx.Input(0);
        var b = ctx.Input(3);
        var yZero = ctx.Input(7);
        QuantTensorOps.RefuseFloat8(a.DataType, "a");
        if (yZero.DataType is not (DataType.UInt8 or DataType.Int8))
            throw new QuantSharpException($"y_zero_point must be uint8 or int8, got {DataTypes.Name(yZero.DataType)}");
        var s = MatMulShape.Resolve(a.Shape, b.Shape);
        var azp = IntMatMul.RowParams(ctx.Input(2), a.Shape, s, "a_zero_point", t => QuantTensorOps.ToInts(t, "a_zero_point"), 0);
        var bzp = IntMatMul.ColumnParams(ctx.Input(5), b.Shape, s, "b_zero_point", t => QuantTensorOps.ToInts(t, "b_zero_point"), 0);
        var asc = IntMatMul.RowParams(ctx.Input(1), a.Shape, s, "a_scale", t => QuantTensorOps.ToFloats(t, "a_scale"), 1f);
        var bsc = IntMatMul.ColumnParams(ctx.Input(4), b.Shape, s, "b_scale", t => QuantTensorOps.ToFloats(t, "b_scale"), 1f);
        var acc = ctx.RentScratch<int>(ShapeUtil.Product(s.OutputShape));
        if (_packedB is null || !_packedB.TryAccumulate(ctx, a, b, azp, s, acc)) IntMatMul.Accumulate(ctx, a, b, azp, bzp, s, acc);
        var y = ctx.Output(0, yZero.DataType, s.OutputShape);
        IntMatMul.Requantize(ctx, acc, s, asc, bsc, ctx.Input(6), yZero, y);
        ctx.ReturnScratch(acc);
    }

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var dims = MatMulShape.InferDims(ctx.InputType(0), ctx.InputType(3));
        var t = QuantTensorOps.InputDtype(ctx, 7);
        ctx.SetOutputType(0, new TensorTypeInfo(t == DataType.Undefined ? QuantTensorOps.InputDtype(ctx, 0) : t, dims));
    }
}
