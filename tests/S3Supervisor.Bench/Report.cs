using System.Globalization;
using System.Text;

namespace S3Supervisor.Bench;

/// <summary>A plain-text table: first column left-aligned, the others right-aligned.</summary>
internal sealed class Table
{
    private readonly string[] _headers;
    private readonly List<string[]> _rows = [];

    public Table(params string[] headers)
    {
        _headers = headers;
    }

    /// <summary>Left-align every column (for text rather than figures).</summary>
    public bool AllLeft { get; init; }

    public void Add(params string[] cells)
    {
        if (cells.Length != _headers.Length)
        {
            throw new ArgumentException($"expected {_headers.Length} cells, got {cells.Length}", nameof(cells));
        }
        _rows.Add(cells);
    }

    public override string ToString()
    {
        var widths = _headers.Select((h, i) => Math.Max(h.Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[i].Length))).ToArray();
        var text = new StringBuilder();
        void Line(string[] cells)
        {
            for (var i = 0; i < cells.Length; i++)
            {
                var last = i == cells.Length - 1;
                text.Append(i == 0 ? cells[i].PadRight(widths[i])
                    : AllLeft ? "  " + (last ? cells[i] : cells[i].PadRight(widths[i]))
                    : "  " + cells[i].PadLeft(widths[i]));
            }
            text.Append('\n');
        }
        Line(_headers);
        Line(widths.Select(w => new string('-', w)).ToArray());
        foreach (var row in _rows)
        {
            Line(row);
        }
        return text.ToString();
    }
}

/// <summary>Number formatting and small statistics shared by the benchmarks.</summary>
internal static class Fmt
{
    public static string Ms(TimeSpan value) => Ms(value.TotalMilliseconds);

    public static string Ms(double ms) => ms >= 100
        ? ms.ToString("0", CultureInfo.InvariantCulture) + " ms"
        : ms.ToString("0.0", CultureInfo.InvariantCulture) + " ms";

    public static string MiB(long kib) => (kib / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB";

    public static string Ratio(double numerator, double denominator) =>
        denominator <= 0 ? "n/a" : (numerator / denominator).ToString("0.00", CultureInfo.InvariantCulture) + "x";

    public static string Ratio(TimeSpan numerator, TimeSpan denominator) => Ratio(numerator.TotalMilliseconds, denominator.TotalMilliseconds);

    public static string Int(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static TimeSpan Median(IReadOnlyCollection<TimeSpan> values)
    {
        if (values.Count == 0)
        {
            throw new ArgumentException("no samples", nameof(values));
        }
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    public static string Samples(IEnumerable<TimeSpan> values) =>
        string.Join(" ", values.Select(v => v.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture)));
}

/// <summary>Writes section headings and tables to stdout; progress lines go to stderr so that stdout is the report.</summary>
internal static class Out
{
    public static void Section(string title)
    {
        Console.Out.WriteLine();
        Console.Out.WriteLine($"== {title}");
        Console.Out.Flush();
    }

    public static void Write(Table table)
    {
        Console.Out.Write(table.ToString());
        Console.Out.Flush();
    }

    public static void Note(string line)
    {
        Console.Out.WriteLine(line);
        Console.Out.Flush();
    }

    public static void Progress(string line)
    {
        Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss.fff}] {line}");
        Console.Error.Flush();
    }
}
