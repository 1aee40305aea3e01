using System.Runtime.InteropServices;
using QuantSharp.Runtime.Kernels.Simd;
using QuantSharp.Runtime.Operators;
using QuantSharp.Tensors;

namespace QuantSharp.Runtime.Lowering;

/// <summary>
/// MaxPool on 8-bit quantized values (the lowered form of DequantizeLinear → MaxPool → QuantizeLinear with equal
/// parameters: the maximum commutes with the monotone dequantization). Attributes and semantics are ONNX MaxPool's
/// without the Indices output. 2×2 windows with stride 2 that lie fully inside the input run through
/// <see cref="Int8Pool.MaxPool2x2"/>; other geometries through the generic window loop.
/// </summary>
[OnnxOperator("MaxPool", 1, Domain = IntegerLowering.Domain)]
public sealed class IntMaxPoolKernel : OpKernel
{
    private WindowAttributes _attrs = null!;

    public override void Initialize(KernelInitContext ctx) => _attrs = WindowAttributes.FromNode(Node);

    public override void Compute(KernelContext ctx)
    {
        var x = ctx.Input(0);
        if (x is not (Tensor<byte> or Tensor<sbyte>)) throw new QuantSharpException($"x must be uint8 or int8, got {x}");
        var g = PoolLoops.Geometry(_attrs, x.Shape, "MaxPool");
        var y = ctx.Output(0, x.DataType, g.OutputShape());
        var win = new Window3D(g);
        int planes = g.Batch * g.InputChannels;
        bool fast = win.KD == 1 && win.OD == 1 && win.KH == 2 && win.KW == 2 && win.SH == 2 && win.SW == 2 && win.DH == 1 && win.DW == 1
            && win.PH == 0 && win.PW == 0 && 2 * win.OH <= win.IH && 2 * win.OW <= win.IW;
        int minPlanes = Math.Max(1, 16384 / Math.Max(1, win.OutputSize * win.KernelSize));
        if (fast)
        {
            bool signed = x is Tensor<sbyte>;
            var xa = x.Buffer;
            var ya = y.Buffer;
            int inS = win.InputSize, outS = win.OutputSize;
            ctx.ParallelFor(planes, minPlanes, (s, e) =>
            {
                var xb = Bytes(xa);
                var yb = Bytes(ya);
                Int8Pool.MaxPool2x2(xb.Slice(s * inS, (e - s) * inS), e - s, win.IH, win.IW, yb.Slice(s * outS, (e - s) * outS), win.OH, win.OW, signed);
            });
            return;
        }
        switch (x, y)
        {
            case (Tensor<byte> xu, Tensor<byte> yu):
                ctx.ParallelFor(planes, minPlanes, (s, e) => PoolLoops.Max<byte>(win, xu.Data, yu.Data, default, false, s, e));
                break;
            case (Tensor<sbyte> xs, Tensor<sbyte> ys):
                ctx.ParallelFor(planes, minPlanes, (s, e) => PoolLoops.Max<sbyte>(win, xs.Data, ys.Data, default, false, s, e));
                break;
        }
    }

    private static Span<byte> Bytes(Array a) => a is sbyte[] s ? MemoryMarshal.AsBytes(s.AsSpan()) : ((byte[])a).AsSpan();

    public override void InferTypes(TypeInferenceContext ctx)
    {
        var attrs = WindowAttributes.FromNode(ctx.Node);
        if (attrs.KernelShape is null) return;
        NnShapes.InferWindow(ctx, 0, 1, s => ConvGeometry.ForPool(attrs, s), null);
    }
}
