using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters;
using Perfolizer.Horology;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace QuantSharp.Bench;

/// <summary>
/// The short configuration of the committed suite (`suite` mode): one in-process launch, 2 warm-up and 5 measured
/// iterations of about 250 ms each, so that the whole suite takes minutes on a 2-core machine. In-process runs skip
/// the per-benchmark build and process start; the statistics are coarser than BenchmarkDotNet's default job (the
/// error column says how much).
/// </summary>
public static class SuiteConfig
{
    public static IConfig Create(string artifactsPath) =>
        ManualConfig.CreateEmpty()
            .AddJob(Job.Default
                .WithLaunchCount(1)
                .WithWarmupCount(2)
                .WithIterationCount(5)
                .WithIterationTime(TimeInterval.FromMilliseconds(250))
                .WithToolchain(InProcessEmitToolchain.Instance)
                .WithId("Suite"))
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .AddColumn(new ThroughputColumn(), new WeightBandwidthColumn())
            .AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default)
            .AddExporter(MarkdownExporter.GitHub)
            .AddExporter(BenchmarkDotNet.Exporters.Json.JsonExporter.Brief)
            .WithArtifactsPath(artifactsPath)
            .WithOptions(ConfigOptions.DisableLogFile);
}

/// <summary>"M×N×K" of a benchmark case's Shape parameter, or null when it has none.</summary>
internal static class ShapeParameter
{
    public static (long M, long N, long K)? Of(BenchmarkCase benchmarkCase)
    {
        var p = benchmarkCase.Parameters.Items.FirstOrDefault(i => i.Name == "Shape");
        if (p?.Value is not string s) return null;
        var d = s.Split('x');
        return d.Length == 3 ? (long.Parse(d[0]), long.Parse(d[1]), long.Parse(d[2])) : null;
    }
}

/// <summary>GOPS (int8) or GFLOP/s (fp32) = 2·M·N·K / mean time, for benchmarks with an M×N×K Shape parameter.</summary>
public sealed class ThroughputColumn : IColumn
{
    public string Id => nameof(ThroughputColumn);
    public string ColumnName => "G(FL)OP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "2·M·N·K / mean time, in 10^9 operations per second (int8: GOPS, fp32: GFLOP/s)";
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var shape = ShapeParameter.Of(benchmarkCase);
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (shape is not { } s || stats is null || stats.Mean <= 0) return "-";
        return (2.0 * s.M * s.N * s.K / stats.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => summary.BenchmarksCases.Any(b => ShapeParameter.Of(b) is not null);
}

/// <summary>Weight (B operand) bytes read per second: N·K·(element bytes) / mean time; the GEMV figure of merit.</summary>
public sealed class WeightBandwidthColumn : IColumn
{
    public string Id => nameof(WeightBandwidthColumn);
    public string ColumnName => "B GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 1;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "weight bytes N·K·size / mean time in GB/s (int8 1 byte, fp32 4 bytes per weight)";
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var shape = ShapeParameter.Of(benchmarkCase);
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (shape is not { } s || stats is null || stats.Mean <= 0) return "-";
        int size = benchmarkCase.Descriptor.Type == typeof(SgemmShapeBenchmarks) ? 4 : 1;
        return ((double)s.N * s.K * size / stats.Mean).ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => summary.BenchmarksCases.Any(b => ShapeParameter.Of(b) is not null);
}
