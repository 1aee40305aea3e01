using QuantSharp.Tensors;

namespace QuantSharp.Tests.Conformance;

/// <summary>
/// ONNX backend-test comparison: dtype and shape must match; floating types pass when
/// |actual − expected| ≤ atol + rtol·|expected| elementwise (NaN equals NaN, infinities must match exactly);
/// integer, bool and string tensors must be equal.
/// </summary>
public static class TensorComparison
{
    public const double Rtol = 1e-3, Atol = 1e-7;

    /// <summary>Null when equal within tolerance, else a one-line reason naming the first mismatch.</summary>
    public static string? Compare(Tensor actual, Tensor expected, double rtol = Rtol, double atol = Atol)
    {
        if (actual.DataType != expected.DataType)
            return $"dtype {DataTypes.Name(actual.DataType)}, expected {DataTypes.Name(expected.DataType)}";
        if (!actual.Shape.AsSpan().SequenceEqual(expected.Shape))
            return $"shape {ShapeUtil.Format(actual.Shape)}, expected {ShapeUtil.Format(expected.Shape)}";
        int bad = 0, first = -1;
        double worst = 0;
        if (DataTypes.IsFloatingPoint(actual.DataType))
        {
            for (int i = 0; i < actual.Length; i++)
            {
                double a = actual.GetDouble(i), e = expected.GetDouble(i);
                if (a == e || (double.IsNaN(a) && double.IsNaN(e))) continue;
                double diff = Math.Abs(a - e);
                // An infinity matches only itself (checked above); the bound would be infinite too.
                if (!double.IsInfinity(a) && !double.IsInfinity(e) && diff <= atol + rtol * Math.Abs(e)) continue;
                if (double.IsNaN(diff)) diff = double.PositiveInfinity;
                if (first < 0) first = i;
                bad++;
                worst = Math.Max(worst, diff);
            }
            if (bad == 0) return null;
            return $"{bad} of {actual.Length} elements differ (first at {first}: {actual.GetDouble(first):R} vs {expected.GetDouble(first):R}; max |diff| {worst:G4})";
        }
        var ab = actual.Buffer;
        var eb = expected.Buffer;
        for (int i = 0; i < actual.Length; i++)
        {
            if (Equals(ab.GetValue(i), eb.GetValue(i))) continue;
            if (first < 0) first = i;
            bad++;
        }
        if (bad == 0) return null;
        return $"{bad} of {actual.Length} elements differ (first at {first}: {ab.GetValue(first)} vs {eb.GetValue(first)})";
    }
}
