using System.Runtime.Intrinsics;
using System.Runtime.CompilerServices;
using System.Numerics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using QuantSharp.Graph;

namespace QuantSharp.Runtime.Operators;

/// <summary>
/// Vectorised float math not in TensorPrimitives: erf, a numerically stable sigmoid, GELU. Work is done in
/// blocks of <see cref="Block"/> elements so temporaries stay in L1 and input and output may be the same span.
/// </summary>
public static class ActivationMath
{
    internal const int Block = 512;

    // erf(x) = x·P(2x²−1) for |x| < 1. P is the degree-7 Chebyshev interpolant of erf(√u)/√u on u ∈ [0,1]
    // (8 Chebyshev nodes, converted to powers of t = 2u−1); max relative error 4e-11 before float rounding.
    private const float P0 = 0.9654687386375693f, P1 = -0.14053608902111792f, P2 = 0.019852497722450374f,
        P3 = -0.00228548561222941f, P4 = 0.00021751199063424487f, P5 = -1.7536914156845995e-05f,
        P6 = 1.2316395889833132e-06f, P7 = -7.552379521769126e-08f;

    // erf(x) = 1 − exp(−x²)·Q((2x−5)/3) for 1 ≤ x ≤ 4. Q is the degree-11 Chebyshev interpolant of the scaled
    // complementary error function erfc(x)·exp(x²) on [1,4]; max absolute error of erf 4e-9. Above 4,
    // erfc(x) < 1.6e-8 is below half an ulp of 1.0f, so |x| is clamped to 4 and the result rounds to ±1.
    private const float Q0 = 0.2108063577431362f, Q1 = -0.1115210179372282f, Q2 = 0.056110947556979214f,
        Q3 = -0.027005458212878f, Q4 = 0.012484123148493155f, Q5 = -0.005568837645393824f,
        Q6 = 0.002425638938043262f, Q7 = -0.0010136625984194698f, Q8 = 0.00036815109778132177f,
        Q9 = -0.00014741614272484327f, Q10 = 9.629120197847858e-05f, Q11 = -3.5664178823206306e-05f;

    /// <summary>y = erf(x); max relative error about 1e-7 (a few float ulps). x and y may be the same span.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Erf(ReadOnlySpan<float> x, Span<float> y)
    {
        if (Vector512.IsHardwareAccelerated && x.Length >= 16)
        {
            ErfVector512(x, y);
            return;
        }
        Span<float> e = stackalloc float[Block];
        for (int start = 0; start < x.Length; start += Block)
        {
            int n = Math.Min(Block, x.Length - start);
            var xs = x.Slice(start, n);
            var ys = y.Slice(start, n);
            var es = e[..n];
            // es = exp(−min(|x|,4)²), needed by the |x| ≥ 1 branch (NaN lanes are fixed up in ErfCombine).
            TensorPrimitives.Abs(xs, es);
            TensorPrimitives.Min(es, 4f, es);
            TensorPrimitives.Multiply(es, es, es);
            TensorPrimitives.Negate(es, es);
            TensorPrimitives.Exp(es, es);
            ErfCombine(xs, es, ys);
        }
    }

    /// <summary>
    /// <see cref="Erf(ReadOnlySpan{float}, Span{float})"/> in one pass of 16 lanes: exp(−min(|x|,4)²) by Vector512.Exp,
    /// both polynomials, selects by |x| &lt; 1, sign and NaN. The last partial vector goes through a 16-float copy.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ErfVector512(ReadOnlySpan<float> x, Span<float> y)
    {
        int n = x.Length, i = 0;
        for (; i <= n - 16; i += 16) ErfVector(Vector512.Create(x.Slice(i, 16))).CopyTo(y.Slice(i, 16));
        if (i == n) return;
        Span<float> tail = stackalloc float[16];
        x.Slice(i, n - i).CopyTo(tail);
        var r = ErfVector(Vector512.Create(tail));
        r.CopyTo(tail);
        tail[..(n - i)].CopyTo(y[i..]);
    }

    // exp for x ≤ 0 (ExpNonPositive): x = n·ln2 + r with n = round(x·log2 e), |r| ≤ ln2/2, r by Cody–Waite in two FMA
    // steps (ln2 = LnHi + LnLo, LnHi with 16 significant bits so n·LnHi is exact); e^r by its degree-7 Taylor
    // polynomial (truncation r⁸/8! ≤ 5e-9 relative); 2^n applied through the exponent field (n ≥ −126, normal).
    private const float Log2E = 1.44269504088896341f, LnHi = 0.693145751953125f, LnLo = 1.42860682030941723e-06f;
    private const float ExpMin = -87.33654f; // ln(2⁻¹²⁶): below it the result is < 1.2e-38 and returned as 0
    private const float E2 = 1f / 2, E3 = 1f / 6, E4 = 1f / 24, E5 = 1f / 120, E6 = 1f / 720, E7 = 1f / 5040;

    /// <summary>
    /// e^x for x ≤ 0 in 16 lanes, relative error ≤ about 2 ulp; x &lt; −87.34 (also −∞) gives 0, NaN stays NaN.
    /// Results for x &gt; 0 are not defined. .NET's Vector512.Exp is several times slower on this path (Erf, Softmax).
    /// Bit-identical to <see cref="ExpNonPositive(float)"/> (same operations, FMA in both).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ExpNonPositive(Vector512<float> x)
    {
        var n = Vector512.Round(x * Vector512.Create(Log2E));
        var r = Vector512.FusedMultiplyAdd(-n, Vector512.Create(LnHi), x);
        r = Vector512.FusedMultiplyAdd(-n, Vector512.Create(LnLo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(E7), r, Vector512.Create(E6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(E2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        // 2^n: n + 127 in [1, 127] for ExpMin ≤ x ≤ 0, shifted into the exponent field. Lanes outside the range
        // (and NaN, whose conversion is arbitrary) are replaced below.
        var bits = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23);
        var y = p * bits.AsSingle();
        y = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(ExpMin)), Vector512<float>.Zero, y);
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), y, x);
    }

    /// <summary>Scalar reference of <see cref="ExpNonPositive(Vector512{float})"/>, the same float operations.</summary>
    internal static float ExpNonPositive(float x)
    {
        if (float.IsNaN(x)) return x;
        if (x < ExpMin) return 0f;
        float n = MathF.Round(x * Log2E);
        float r = MathF.FusedMultiplyAdd(-n, LnHi, x);
        r = MathF.FusedMultiplyAdd(-n, LnLo, r);
        float p = MathF.FusedMultiplyAdd(E7, r, E6);
        p = MathF.FusedMultiplyAdd(p, r, E5);
        p = MathF.FusedMultiplyAdd(p, r, E4);
        p = MathF.FusedMultiplyAdd(p, r, E3);
        p = MathF.FusedMultiplyAdd(p, r, E2);
        p = MathF.FusedMultiplyAdd(p, r, 1f);
        p = MathF.FusedMultiplyAdd(p, r, 1f);
        return p * BitConverter.Int32BitsToSingle(((int)n + 127) << 23);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ErfVector(Vector512<float> v)
    {
        var one = Vector512<float>.One;
        var two = Vector512.Create(2f);
        var a = Vector512.Abs(v);
        var c = Vector512.Min(a, Vector512.Create(4f));
        var e = ExpNonPositive(-(c * c));
        var t = a * a * two - one;
        var p = Vector512.Create(P7);
        p = p * t + Vector512.Create(P6);
        p = p * t + Vector512.Create(P5);
        p = p * t + Vector512.Create(P4);
        p = p * t + Vector512.Create(P3);
        p = p * t + Vector512.Create(P2);
        p = p * t + Vector512.Create(P1);
        p = p * t + Vector512.Create(P0);
        var small = v * p;
        var sv = (c * two - Vector512.Create(5f)) * Vector512.Create(1f / 3f);
        var q = Vector512.Create(Q11);
        q = q * sv + Vector512.Create(Q10);
        q = q * sv + Vector512.Create(Q9);
        q = q * sv + Vector512.Create(Q8);
        q = q * sv + Vector512.Create(Q7);
        q = q * sv + Vector512.Create(Q6);
        q = q * sv + Vector512.Create(Q5);
        q = q * sv + Vector512.Create(Q4);
        q = q * sv + Vector512.Create(Q3);
        q = q * sv + Vector512.Create(Q2);
        q = q * sv + Vector512.Create(Q1);
        q = q * sv + Vector512.Create(Q0);
        var large = one - e * q;
        large = Vector512.ConditionalSelect(Vector512.LessThan(v, Vector512<float>.Zero), -large, large);
        var r = Vector512.ConditionalSelect(Vector512.LessThan(a, one), small, large);
        return Vector512.ConditionalSelect(Vector512.Equals(v, v), r, v); // NaN stays NaN
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ErfCombine(ReadOnlySpan<float> x, ReadOnlySpan<float> e, Span<float> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            int w = Vector<float>.Count;
            var one = Vector<float>.One;
            var two = new Vector<float>(2f);
            var four = new Vector<float>(4f);
            var five = new Vector<float>(5f);
            var third = new Vector<float>(1f / 3f);
            for (; i <= x.Length - w; i += w)
            {
                var v = new Vector<float>(x[i..]);
                var a = Vector.Abs(v);
                var t = a * a * two - one;
                var p = new Vector<float>(P7);
                p = p * t + new Vector<float>(P6);
                p = p * t + new Vector<float>(P5);
                p = p * t + new Vector<float>(P4);
                p = p * t + new Vector<float>(P3);
                p = p * t + new Vector<float>(P2);
                p = p * t + new Vector<float>(P1);
                p = p * t + new Vector<float>(P0);
                var small = v * p;
                var s = (Vector.Min(a, four) * two - five) * third;
                var q = new Vector<float>(Q11);
                q = q * s + new Vector<float>(Q10);
                q = q * s + new Vector<float>(Q9);
                q = q * s + new Vector<float>(Q8);
                q = q * s + new Vector<float>(Q7);
                q = q * s + new Vector<float>(Q6);
                q = q * s + new Vector<float>(Q5);
                q = q * s + new Vector<float>(Q4);
                q = q * s + new Vector<float>(Q3);
                q = q * s + new Vector<float>(Q2);
                q = q * s + new Vector<float>(Q1);
                q = q * s + new Vector<float>(Q0);
                var large = one - new Vector<float>(e[i..]) * q;
                large = Vector.ConditionalSelect(Vector.LessThan(v, Vector<float>.Zero), -large, large);
                var r = Vector.ConditionalSelect(Vector.LessThan(a, one), small, large);
                r = Vector.ConditionalSelect(Vector.Equals(v, v), r, v); // NaN stays NaN
                r.CopyTo(y[i..]);
            }
        }
        for (; i < x.Length; i++) y[i] = ErfScalar(x[i], e[i]);
    }

    private static float ErfScalar(float v, float expNegA2)
    {
        if (float.IsNaN(v)) return v;
        float a = MathF.Abs(v);
        if (a < 1f)
        {
            float t = a * a * 2f - 1f;
            float p = ((((((P7 * t + P6) * t + P5) * t + P4) * t + P3) * t + P2) * t + P1) * t + P0;
            return v * p;
        }
        float s = (MathF.Min(a, 4f) * 2f - 5f) / 3f;
        float q = ((((((((((Q11 * s + Q10) * s + Q9) * s + Q8) * s + Q7) * s + Q6) * s + Q5) * s + Q4) * s + Q3) * s + Q2) * s + Q1) * s + Q0;
        float r = 1f - expNegA2 * q;
        return v < 0 ? -r : r;
    }

    /// <summary>erf in double with the same approximation (absolute error about 4e-9).</summary>
    public static double Erf(double v)
    {
        if (double.IsNaN(v)) return v;
        double a = Math.Abs(v);
        if (a < 1)
        {
            double t = a * a * 2 - 1;
            double p = ((((((P7D * t + P6D) * t + P5D) * t + P4D) * t + P3D) * t + P2D) * t + P1D) * t + P0D;
            return v * p;
        }
        if (a >= 6) return v < 0 ? -1 : 1;
        double c = Math.Min(a, 4);
        double s = (c * 2 - 5) / 3;
        double q = ((((((((((Q11D * s + Q10D) * s + Q9D) * s + Q8D) * s + Q7D) * s + Q6D) * s + Q5D) * s + Q4D) * s + Q3D) * s + Q2D) * s + Q1D) * s + Q0D;
        // Beyond 4 the interpolant is not valid; erfc(x)·exp(x²) ≈ 1/(x√π)·(1 − 1/(2x²)) is accurate to 1e-4 relative there.
        if (a > 4) q = 1 / (a * Math.Sqrt(Math.PI)) * (1 - 1 / (2 * a * a) + 3 / (4 * a * a * a * a));
        double r = 1 - Math.Exp(-a * a) * q;
        return v < 0 ? -r : r;
    }

    private const double P0D = 0.9654687386375693, P1D = -0.14053608902111792, P2D = 0.019852497722450374,
        P3D = -0.00228548561222941, P4D = 0.00021751199063424487, P5D = -1.7536914156845995e-05,
        P6D = 1.2316395889833132e-06, P7D = -7.552379521769126e-08;

    private const double Q0D = 0.2108063577431362, Q1D = -0.1115210179372282, Q2D = 0.056110947556979214,
        Q3D = -0.027005458212878, Q4D = 0.012484123148493155, Q5D = -0.005568837645393824,
        Q6D = 0.002425638938043262, Q7D = -0.0010136625984194698, Q8D = 0.00036815109778132177,
        Q9D = -0.00014741614272484327, Q10D = 9.629120197847858e-05, Q11D = -3.5664178823206306e-05;

    /// <summary>
    /// y = 1/(1+e^−x), stable for large |x|: with e = exp(−|x|) ∈ (0,1], y = 1/(1+e) for x ≥ 0 and e/(1+e)
    /// for x &lt; 0, so no overflow and tiny results keep their relative precision.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Sigmoid(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> e = stackalloc float[Block];
        for (int start = 0; start < x.Length; start += Block)
        {
            int n = Math.Min(Block, x.Length - start);
            var xs = x.Slice(start, n);
            var ys = y.Slice(start, n);
            var es = e[..n];
            TensorPrimitives.Abs(xs, es);
            TensorPrimitives.Negate(es, es);
            TensorPrimitives.Exp(es, es);
            int i = 0;
            if (Vector.IsHardwareAccelerated)
            {
                int w = Vector<float>.Count;
                for (; i <= n - w; i += w)
                {
                    var v = new Vector<float>(xs[i..]);
                    var ev = new Vector<float>(es[i..]);
                    var s = Vector<float>.One / (Vector<float>.One + ev);
                    Vector.ConditionalSelect(Vector.LessThan(v, Vector<float>.Zero), ev * s, s).CopyTo(ys[i..]);
                }
            }
            for (; i < n; i++)
            {
                float s = 1f / (1f + es[i]);
                ys[i] = xs[i] < 0 ? es[i] * s : s;
            }
        }
    }

    public static double Sigmoid(double x)
    {
        double e = Math.Exp(-Math.Abs(x));
        double s = 1 / (1 + e);
        return x < 0 ? e * s : s;
    }

    /// <summary>GELU, exact form 0.5·x·(1 + erf(x/√2)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> t = stackalloc float[Block];
        for (int start = 0; start < x.Length; start += Block)
        {
            int n = Math.Min(Block, x.Length - start);
            var xs = x.Slice(start, n);
            var ts = t[..n];
            TensorPrimitives.Multiply(xs, 0.70710678118654752f, ts);
            Erf(ts, ts);
            // y = 0.5·x·(1 + erf) = (0.5·x)·erf + 0.5·x
            TensorPrimitives.Add(ts, 1f, ts);
            TensorPrimitives.Multiply(ts, xs, ts);
            TensorPrimitives.Multiply(ts, 0.5f, y.Slice(start, n));
        }
    }

    /// <summary>GELU, tanh form 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GeluTanh(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> t = stackalloc float[Block];
        for (int start = 0; start < x.Length; start += Block)
        {
            int n = Math.Min(Block, x.Length - start);
            var xs = x.Slice(start, n);
            var ts = t[..n];
            TensorPrimitives.Multiply(xs, xs, ts);
            TensorPrimitives.Multiply(ts, 0.044715f, ts);
            TensorPrimitives.Add(ts, 1f, ts);                    // 1 + 0.044715·x²
            TensorPrimitives.Multiply(ts, xs, ts);                // x + 0.044715·x³
            TensorPrimitives.Multiply(ts, 0.79788456080286536f, ts);
            TensorPrimitives.Tanh(ts, ts);
            TensorPrimitives.Add(ts, 1f, ts);
            TensorPrimitives.Multiply(ts, xs, ts);
            TensorPrimitives.Multiply(ts, 0.5f, y.Slice(start, n));
        }
    }
}

[OnnxOperator("Erf", 9)]
public sealed class ErfKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => ActivationMath.Erf(x, y);

    protected override void Apply(ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = ActivationMath.Erf(x[i]);
    }
}

[OnnxOperator("Sigmoid", 1)]
public sealed class SigmoidKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => ActivationMath.Sigmoid(x, y);

    protected override void Apply(ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = ActivationMath.Sigmoid(x[i]);
    }
}

[OnnxOperator("Tanh", 1)]
public sealed class TanhKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Tanh(x, y);
    protected override void Apply(ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.Tanh(x, y);
}

/// <summary>LeakyRelu: y = x for x ≥ 0, alpha·x otherwise (alpha default 0.01).</summary>
[OnnxOperator("LeakyRelu", 1)]
public sealed class LeakyReluKernel : UnaryKernel
{
    private float _alpha;

    public override void Initialize(KernelInitContext ctx) => _alpha = Node.GetFloat("alpha", 0.01f);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var a = new Vector<float>(_alpha);
            for (; i <= x.Length - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = new Vector<float>(x[i..]);
                Vector.ConditionalSelect(Vector.LessThan(v, Vector<float>.Zero), v * a, v).CopyTo(y[i..]);
            }
        }
        for (; i < x.Length; i++) y[i] = x[i] < 0 ? x[i] * _alpha : x[i];
    }

    protected override void Apply(ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] < 0 ? x[i] * _alpha : x[i];
    }
}

/// <summary>HardSigmoid: y = max(0, min(1, alpha·x + beta)), alpha 0.2 and beta 0.5 by default.</summary>
[OnnxOperator("HardSigmoid", 1)]
public sealed class HardSigmoidKernel : UnaryKernel
{
    private float _alpha, _beta;

    public override void Initialize(KernelInitContext ctx)
    {
        _alpha = Node.GetFloat("alpha", 0.2f);
        _beta = Node.GetFloat("beta", 0.5f);
    }

    protected override void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        TensorPrimitives.Multiply(x, _alpha, y);
        TensorPrimitives.Add(y, _beta, y);
        TensorPrimitives.Clamp(y, 0f, 1f, y);
    }

    protected override void Apply(ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = Math.Clamp(_alpha * x[i] + _beta, 0.0, 1.0);
    }
}

/// <summary>HardSwish (opset 14): y = x·max(0, min(1, x/6 + 1/2)).</summary>
[OnnxOperator("HardSwish", 14)]
public sealed class HardSwishKernel : UnaryKernel
{
    protected override void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        Span<float> t = stackalloc float[ActivationMath.Block];
        for (int start = 0; start < x.Length; start += ActivationMath.Block)
        {
            int n = Math.Min(ActivationMath.Block, x.Length - start);
            var xs = x.Slice(start, n);
            var ts = t[..n];
            TensorPrimitives.Multiply(xs, 1f / 6f, ts);
            TensorPrimitives.Add(ts, 0.5f, ts);
            TensorPrimitives.Clamp(ts, 0f, 1f, ts);
            TensorPrimitives.Multiply(ts, xs, y.Slice(start, n));
        }
    }

    protected override void Apply(ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = x[i] * Math.Clamp(x[i] / 6 + 0.5, 0.0, 1.0);
    }
}

/// <summary>Gelu (opset 20): approximate="none" → 0.5·x·(1+erf(x/√2)); "tanh" → the tanh approximation.</summary>
[OnnxOperator("Gelu", 20)]
public sealed class GeluKernel : UnaryKernel
{
    private bool _tanh;

    public override void Initialize(KernelInitContext ctx)
    {
        string mode = Node.GetString("approximate", "none");
        _tanh = mode switch
        {
            "none" => false,
            "tanh" => true,
            _ => throw new QuantSharpException($"Gelu approximate must be 'none' or 'tanh', got '{mode}'"),
        };
    }

    protected override void Apply(ReadOnlySpan<float> x, Span<float> y)
    {
        if (_tanh) ActivationMath.GeluTanh(x, y);
        else ActivationMath.Gelu(x, y);
    }

    protected override void Apply(ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = _tanh
                ? 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))
                : 0.5 * v * (1 + ActivationMath.Erf(v / Math.Sqrt(2)));
        }
    }
}

/// <summary>
/// Fused exact GELU built by <see cref="Lowering.FloatFusion"/> from x ⊘ c → Erf → Add 1 → Mul x → Mul 0.5:
/// y = (x·(erf(x ⊘ c) + 1))·0.5 with ⊘ = / (attribute erf_divisor) or · (erf_scale). Each step is the same float
/// operation, in the same order, as the separate nodes, so the result is bit-identical to the unfused chain; the
/// gain is one pass over memory instead of five (blocks of <see cref="ActivationMath.Block"/> stay in L1).
/// </summary>
[OnnxOperator("Gelu", 1, Domain = Lowering.FloatFusion.Domain)]
public sealed class FusedGeluKernel : UnaryKernel
{
    private float _c;
    private bool _divide;

    public override void Initialize(KernelInitContext ctx)
    {
        var div = Node.Attribute(Lowering.FloatFusion.ErfDivisorAttribute);
        var scale = Node.Attribute(Lowering.FloatFusion.ErfScaleAttribute);
        if ((div is null) == (scale is null))
            throw new QuantSharpException($"node {Node.Describe()}: fused Gelu needs exactly one of {Lowering.FloatFusion.ErfDivisorAttribute} / {Lowering.FloatFusion.ErfScaleAttribute}");
        _divide = div is not null;
        _c = Node.GetFloat(_divide ? Lowering.FloatFusion.ErfDivisorAttribute : Lowering.FloatFusion.ErfScaleAttribute, 1f);
    }

    /// <summary>y = (x·(erf(x ⊘ c) + 1))·0.5, in blocks; x and y may be the same span.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Compute(ReadOnlySpan<float> x, Span<float> y, float c, bool divide)
    {
        Span<float> t = stackalloc float[ActivationMath.Block];
        for (int start = 0; start < x.Length; start += ActivationMath.Block)
        {
            int n = Math.Min(ActivationMath.Block, x.Length - start);
            var xs = x.Slice(start, n);
            var ts = t[..n];
            if (divide) TensorPrimitives.Divide(xs, c, ts);
            else TensorPrimitives.Multiply(xs, c, ts);
            ActivationMath.Erf(ts, ts);
            TensorPrimitives.Add(ts, 1f, ts);
            TensorPrimitives.Multiply(xs, ts, ts);
            TensorPrimitives.Multiply(ts, 0.5f, y.Slice(start, n));
        }
    }

    protected override void Apply(ReadOnlySpan<float> x, Span<float> y) => Compute(x, y, _c, _divide);

    protected override void Apply(ReadOnlySpan<double> x, Span<double> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = v * (ActivationMath.Erf(_divide ? v / _c : v * _c) + 1) * 0.5;
        }
    }
}
