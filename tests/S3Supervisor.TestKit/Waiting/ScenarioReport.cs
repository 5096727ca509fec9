using System.Diagnostics;

namespace S3Supervisor.TestKit;

/// <summary>One check of a scenario: what was claimed, whether it held, and the measured detail.</summary>
public sealed record ScenarioCheck(string Step, bool Ok, string Detail);

/// <summary>
/// What a walk-through scenario prints and keeps (the stand-in local node, the node pod under podman):
/// steps, lines stamped with the time since the start, and checks with their figures; the summary line
/// that ends a run.
/// </summary>
public sealed class ScenarioReport(Action<string> write)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<ScenarioCheck> _checks = [];

    public IReadOnlyList<ScenarioCheck> Checks => _checks;

    public IEnumerable<ScenarioCheck> Failed => _checks.Where(c => !c.Ok);

    public TimeSpan Elapsed => _clock.Elapsed;

    public void Check(string what, bool ok, string detail)
    {
        _checks.Add(new ScenarioCheck(what, ok, detail));
        Say($"   [{(ok ? "ok" : "FAILED")}] {what}: {detail}");
    }

    public void Fail(string step, string detail) => Check(step, false, detail);

    public void Step(string title)
    {
        write("");
        Say(title);
    }

    public void Say(string line) => write($"{_clock.Elapsed.TotalSeconds,7:0.00}s {line}");

    /// <summary>"NAME: all N checks passed in T s", or which failed.</summary>
    public string Summary(string name)
    {
        var failed = Failed.ToList();
        return failed.Count == 0
            ? $"{name}: all {_checks.Count} checks passed in {Elapsed.TotalSeconds:0.0} s"
            : $"{name}: {failed.Count} of {_checks.Count} checks FAILED: {string.Join("; ", failed.Select(c => c.Step))}";
    }
}
