using System.Diagnostics;
using QuantSharp.Graph;
using QuantSharp.Onnx;
using QuantSharp.Quantization.Math;
using QuantSharp.Quantization.Passes;
using QuantSharp.Tensors;

namespace QuantSharp.Quantization.Quantizers;

public static partial class Quantizer
{
    /// <summary>
    /// Dynamic quantization of MatMul and Gemm with a constant 2-D weight W [K, N] (Gemm's transB is applied offline):
    /// X → DynamicQuantizeLinear → (Xq uint8, Xs, Xz); Y = float(MatMulInteger(Xq, Wq, Xz, Wz)) · (Xs · Ws) (+ bias).
    /// Conv stays float: ONNX Runtime has no ConvInteger for uint8 × int8.
    /// </summary>
    public static QuantizationResult QuantizeDynamic(Model model, DynamicQuantizerOptions options)
    {
        options.Validate();
        var sw = Stopwatch.StartNew();
        EnsureNotQuantized(model);
        var summary = new QuantizationSummary { Mode = QuantizationMode.Dynamic };
        summary.InputBytes = OnnxModelIO.ToBytes(model).LongLength;
        summary.InputWeightBytes = model.InitializerBytes();
        var m = model.Clone();
        var g = m.Graph;
        GraphPasses.ConstantsToInitializers(m);
        GraphPasses.FoldConstantReshapes(m);
        g.Edit().SortTopologically();
        var e = g.Edit();
        var ops = new HashSet<string>(options.OpTypes ?? ["MatMul", "Gemm"], StringComparer.Ordinal);
        var wScheme = WeightScheme(options);
        bool any = false;
        foreach (var n in g.Nodes.ToArray())
        {
            if (n.OpType == "Constant") continue;
            if (n.OpType == "Conv" && ops.Contains("Conv"))
            {
                summary.Add(n, false, "Conv stays float in dynamic mode (ONNX Runtime has no ConvInteger for uint8 x int8)");
                continue;
            }
            if (n.Domain.Length != 0 || n.OpType is not ("MatMul" or "Gemm") || !ops.Contains(n.OpType))
            {
                summary.Add(n, false, "op type not quantized");
                continue;
            }
            if (!options.Selected(n.Name, out var why))
            {
                summary.Add(n, false, why!);
                continue;
            }
            if (n.Input(1)?.Initializer is not Tensor<float> w || w.Rank != 2)
            {
                summary.Add(n, false, "weight is not a constant 2-D float tensor");
                continue;
            }
            if (n.OpType == "Gemm" && (n.GetInt("transA", 0) != 0 || n.GetFloat("alpha", 1f) != 1f || n.GetFloat("beta", 1f) != 1f))
            {
                summary.Add(n, false, "Gemm with transA, alpha or beta other than the defaults");
                continue;
            }
            // Weight as [K, N] so that MatMulInteger computes X · W; per-column scales along axis 1.
            if (n.OpType == "Gemm" && n.GetInt("transB", 0) != 0) w = Transpose2D(w);
            var scheme = options.PerChannel ? wScheme.PerAxis(1) : wScheme;
            var p = QuantParams.FromData(w.Data, w.Shape, scheme);
            var wq = e.AddInitializer(n.Input(1)!.Name + "_q", QdqBuilder.QuantizeToStorage(w, p));
            var wz = e.AddInitializer(n.Input(1)!.Name + "_z", QdqBuilder.ZeroPointTensor(p));
            var ws = e.AddInitializer(n.Input(1)!.Name + "_s", p.ScaleTensor());
            var dq = e.AddNode("DynamicQuantizeLinear", [n.Input(0)], 3, name: n.Name + "_DynamicQuantizeLinear", before: n);
            var mmi = e.AddNode("MatMulInteger", [dq.Output(0), wq, dq.Output(2), wz], name: n.Name + "_MatMulInteger", before: n);
            var cast = e.AddNode("Cast", [mmi.Output(0)], name: n.Name + "_Cast", attributes: [NodeAttribute.Of("to", (long)DataType.Float)], before: n);
            var scale = e.AddNode("Mul", [dq.Output(1), ws], name: n.Name + "_scale_Mul", before: n);
            var y = e.AddNode("Mul", [cast.Output(0), scale.Output(0)], name: n.Name + "_Mul", before: n);
            var result = y.Output(0)!;
            if (n.OpType == "Gemm" && n.Input(2) is { } c)
                result = e.AddNode("Add", [result, c], name: n.Name + "_bias_Add", before: n).Output(0)!;
            var old = n.Output(0)!;
            string name = old.Name;
            result.Type = old.Type;
            e.ReplaceAllUses(old, result);
            e.RemoveNode(n);
            e.RenameValue(result, name);
            summary.Add(n, true, "MatMulInteger with weights stored quantized");
            summary.QuantizedWeights++;
            any = true;
        }
        if (!any)
            throw new QuantSharpException($"model '{model.SourcePath ?? g.Name}' has nothing to quantize dynamically: no selected MatMul/Gemm with a constant 2-D weight");
        GraphPasses.RaiseOpset(m, options.PerChannel ? 13 : 11);
        Finish(m, model, options, summary, sw);
        return new QuantizationResult(m, summary);
    }

    /// <summary>
    /// Weight-only quantization of the constant weights of Conv, Gemm and MatMul: per-channel (block size 0) or in
    /// blocks along the reduction axis (opset 21 DequantizeLinear with block_size, or com.microsoft MatMulNBits for
    /// MatMul). A Conv whose input-channel count is below the block size falls back to per-channel scales.
    /// </summary>
    public static QuantizationResult QuantizeWeightOnly(Model model, WeightOnlyQuantizerOptions options)
    {
        options.Validate();
        var sw = Stopwatch.StartNew();
        EnsureNotQuantized(model);
        var summary = new QuantizationSummary { Mode = QuantizationMode.WeightOnly };
        summary.InputBytes = OnnxModelIO.ToBytes(model).LongLength;
        summary.InputWeightBytes = model.InitializerBytes();
        var m = model.Clone();
        var g = m.Graph;
        GraphPasses.ConstantsToInitializers(m);
        GraphPasses.FoldConstantReshapes(m);
        g.Edit().SortTopologically();
        var e = g.Edit();
        var b = new QdqBuilder(e, options.Names != QuantizedNames.Descriptive);
        var ops = new HashSet<string>(options.OpTypes ?? ComputeOps, StringComparer.Ordinal);
        var wScheme = WeightScheme(options);
        long opset = 13;
        foreach (var n in g.Nodes.ToArray())
        {
            if (n.OpType == "Constant") continue;
            if (n.Domain.Length != 0 || n.OpType is not ("MatMul" or "Gemm" or "Conv") || !ops.Contains(n.OpType))
            {
                summary.Add(n, false, "op type not quantized");
                continue;
            }
            if (!options.Selected(n.Name, out var why))
            {
                summary.Add(n, false, why!);
                continue;
            }
            if (n.Input(1)?.Initializer is not Tensor<float> w || w.Rank < 2)
            {
                summary.Add(n, false, "weight is not a constant float tensor of rank ≥ 2");
                continue;
            }
            int red = WeightReductionAxis(n, w.Rank);
            bool blocked = options.BlockSize > 0 && w.Shape[red] >= options.BlockSize;
            if (options.Format == WeightOnlyFormat.MatMulNBits && n.OpType == "MatMul" && w.Rank == 2 && options.BlockSize > 0 &&
                options.WeightType is DataType.Int4 or DataType.UInt4)
            {
                ReplaceWithMatMulNBits(e, n, w, options.BlockSize, options.WeightSymmetric);
                m.SetOpset("com.microsoft", System.Math.Max(m.Opset("com.microsoft") ?? 1, 1));
                summary.Add(n, true, $"MatMulNBits, 4-bit blocks of {options.BlockSize}");
                summary.QuantizedWeights++;
                continue;
            }
            QuantScheme scheme;
            string detail;
            if (blocked)
            {
                scheme = wScheme.PerBlock(red, options.BlockSize);
                detail = $"blocks of {options.BlockSize} along axis {red}";
                opset = 21;
            }
            else
            {
                int axis = WeightOutputAxis(n, w.Rank);
                scheme = options.PerChannel ? wScheme.PerAxis(axis) : wScheme;
                detail = options.PerChannel ? $"per channel (axis {axis})" : "per tensor";
                if (options.BlockSize > 0) detail += $"; reduction axis shorter than the block size {options.BlockSize}";
            }
            if (options.WeightType is DataType.Int4 or DataType.UInt4) opset = 21;
            bool half = options.EffectiveScaleType == DataType.Float16;
            // float16 scales (DequantizeLinear yielding float16) need opset 19.
            if (half) opset = System.Math.Max(opset, 19);
            var (wOut, _) = b.Weight(n.Input(1)!, scheme, half);
            if (wOut.Producer?.OpType == "Cast") detail += ", float16 scales";
            e.SetInput(n, 1, wOut);
            summary.Add(n, true, $"{DataTypes.Name(options.WeightType)} weights, {detail}");
            summary.QuantizedWeights++;
        }
        if (summary.QuantizedNodes == 0)
            throw new QuantSharpException($"model '{model.SourcePath ?? g.Name}' has nothing to quantize: no selected Conv/Gemm/MatMul with a constant weight");
        GraphPasses.RaiseOpset(m, opset);
        Finish(m, model, options, summary, sw);
        return new QuantizationResult(m, summary);
    }

    /// <summary>
    /// MatMul(A, W[K, N]) → com.microsoft MatMulNBits(A, B, scales, zero_points) with 4-bit codes in blocks along K:
    /// B is uint8 [N, k_blocks, block_size / 2], codes packed low nibble first; symmetric codes use the default zero
    /// point 8 (scale = max|w| / 7.5 over the block), asymmetric ones store packed zero points.
    /// </summary>
    private static void ReplaceWithMatMulNBits(GraphRewriter e, Node n, Tensor<float> w, int blockSize, bool symmetric)
    {
        int k = w.Shape[0], nOut = w.Shape[1];
        int kBlocks = (k + blockSize - 1) / blockSize, blob = blockSize / 2;
        var packed = new byte[nOut * kBlocks * blob];
        var scales = new float[nOut * kBlocks];
        var zps = new int[nOut * kBlocks];
        var scheme = QuantScheme.Integer(4, false, symmetric);
        var block = new float[blockSize];
        for (int col = 0; col < nOut; col++)
        {
            for (int kb = 0; kb < kBlocks; kb++)
            {
                int len = System.Math.Min(blockSize, k - kb * blockSize);
                double lo = 0, hi = 0;
                for (int i = 0; i < len; i++)
                {
                    float v = w.Data[(kb * blockSize + i) * nOut + col];
                    block[i] = v;
                    lo = System.Math.Min(lo, v);
                    hi = System.Math.Max(hi, v);
                }
                var (s, z) = QuantParams.Compute(lo, hi, scheme);
                scales[col * kBlocks + kb] = s;
                zps[col * kBlocks + kb] = z;
                int baseByte = (col * kBlocks + kb) * blob;
                for (int i = 0; i < blockSize; i++)
                {
                    int q = i < len ? QuantOps.QuantizeValue(block[i], s, z, scheme.QMin, scheme.QMax) : z;
                    packed[baseByte + i / 2] |= (byte)(q << (4 * (i & 1)));
                }
            }
        }
        var inputs = new List<Value?>
        {
            n.Input(0),
            e.AddInitializer(n.Input(1)!.Name + "_nbits", new Tensor<byte>(packed, [nOut, kBlocks, blob])),
            e.AddInitializer(n.Input(1)!.Name + "_nbits_scales", new Tensor<float>(scales, [nOut * kBlocks])),
        };
        if (!symmetric)
        {
            int zpBytes = (kBlocks + 1) / 2;
            var zpPacked = new byte[nOut * zpBytes];
            for (int col = 0; col < nOut; col++)
                for (int kb = 0; kb < kBlocks; kb++)
                    zpPacked[col * zpBytes + kb / 2] |= (byte)(zps[col * kBlocks + kb] << (4 * (kb & 1)));
            inputs.Add(e.AddInitializer(n.Input(1)!.Name + "_nbits_zero_points", new Tensor<byte>(zpPacked, [nOut * zpBytes])));
        }
        var attrs = new[]
        {
            NodeAttribute.Of("K", (long)k), NodeAttribute.Of("N", (long)nOut), NodeAttribute.Of("bits", 4L),
            NodeAttribute.Of("block_size", (long)blockSize),
        };
        var mm = e.AddNode("MatMulNBits", inputs, name: n.Name + "_MatMulNBits", domain: "com.microsoft", attributes: attrs, before: n);
        var old = n.Output(0)!;
        string name = old.Name;
        mm.Output(0)!.Type = old.Type;
        e.ReplaceAllUses(old, mm.Output(0)!);
        e.RemoveNode(n);
        e.RenameValue(mm.Output(0)!, name);
    }

    private static Tensor<float> Transpose2D(Tensor<float> w)
    {
        int r = w.Shape[0], c = w.Shape[1];
        var t = new float[w.Length];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++) t[j * r + i] = w.Data[i * c + j];
        return new Tensor<float>(t, [c, r]);
    }
}
