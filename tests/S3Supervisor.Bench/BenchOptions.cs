using System.Globalization;

namespace S3Supervisor.Bench;

/// <summary>Command line: <c>[startup|rebuild|data|all] [--n 10,50,200] [--rounds 3] [--repeat 5] [--volumes 10] [--settle 2] [--parallelism P] [--timeout 180]</c>.</summary>
internal sealed record BenchOptions
{
    public const string Usage = """
        usage: s3supervisor-bench [startup|rebuild|data|all] [options]
          startup            supervisor start-to-listening time and idle memory, next to a bare s3fs mount
          rebuild            kill the supervisor with N volumes published to 2 stand-in containers, time the rebuild,
                             next to N bare s3fs mounted in parallel
          data               sequential write/read through a published target vs a bare s3fs mount, and one
                             s3fs killed until a container's view answers again, vs a bare mount
          all                all three (default)
        options:
          --n 10,50,200      volume counts for rebuild (default 10,50,200)
          --rounds 3         rebuild rounds per N (each with its own baseline), data and heal rounds; medians (default 3)
          --repeat 5         timed runs for startup figures, after one untimed warm-up (default 5)
          --volumes 10       volumes staged before the second memory reading (default 10)
          --settle 2         seconds to let a process go idle before reading its memory (default 2)
          --parallelism P    Supervisor__RestoreParallelism for the rebuilt supervisor (default: the supervisor's own, 64)
          --timeout 180      seconds a rebuild may take before the run fails (default 180)
        Needs root, /dev/fuse, s3fs, radosgw (scripts/install-deps.sh). Tables go to stdout, progress to stderr.
        """;

    public bool Startup { get; init; } = true;

    public bool Rebuild { get; init; } = true;

    public bool DataPath { get; init; } = true;

    public IReadOnlyList<int> Ns { get; init; } = [10, 50, 200];

    public int Repeat { get; init; } = 5;

    public int Volumes { get; init; } = 10;

    public int Rounds { get; init; } = 3;

    public TimeSpan Settle { get; init; } = TimeSpan.FromSeconds(2);

    public int? Parallelism { get; init; }

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(180);

    public bool Help { get; init; }

    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{arg} needs a value");
            int Positive(string text) => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
                ? n
                : throw new ArgumentException($"{arg}: '{text}' is not a positive whole number");
            options = arg switch
            {
                "startup" => options with { Startup = true, Rebuild = false, DataPath = false },
                "rebuild" => options with { Startup = false, Rebuild = true, DataPath = false },
                "data" => options with { Startup = false, Rebuild = false, DataPath = true },
                "all" => options with { Startup = true, Rebuild = true, DataPath = true },
                "--n" => options with { Ns = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Positive).ToArray() },
                "--repeat" => options with { Repeat = Positive(Value()) },
                "--rounds" => options with { Rounds = Positive(Value()) },
                "--volumes" => options with { Volumes = Positive(Value()) },
                "--settle" => options with { Settle = TimeSpan.FromSeconds(Positive(Value())) },
                "--parallelism" => options with { Parallelism = Positive(Value()) },
                "--timeout" => options with { Timeout = TimeSpan.FromSeconds(Positive(Value())) },
                "-h" or "--help" => options with { Help = true },
                _ => throw new ArgumentException($"unknown argument '{arg}'"),
            };
        }
        if (options.Ns.Count == 0)
        {
            throw new ArgumentException("--n needs at least one volume count");
        }
        return options;
    }
}
