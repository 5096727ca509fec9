using System.Globalization;
using System.Text;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Supervisor.Observability;

/// <summary>
/// The supervisor's Prometheus metrics, in the text exposition format, without a metrics library:
/// a handful of counters and one gauge read from the volume manager at scrape time.
/// </summary>
public sealed class SupervisorMetrics
{
    private readonly Lock _lock = new();
    private long _recoveriesSucceeded;
    private long _recoveriesFailed;
    private double _recoverySecondsSum;
    private long _restores;
    private long _restoreFailures;
    private long _repairsSucceeded;
    private long _repairsFailed;
    private readonly Dictionary<string, long> _rebuild = new(StringComparer.Ordinal);

    /// <summary>A heal (s3fs restarted, targets re-bound) finished.</summary>
    public void Recovery(bool success, TimeSpan duration)
    {
        lock (_lock)
        {
            if (success)
            {
                _recoveriesSucceeded++;
                _recoverySecondsSum += duration.TotalSeconds;
            }
            else
            {
                _recoveriesFailed++;
            }
        }
    }

    /// <summary>A volume restored after a supervisor restart.</summary>
    public void Restore(bool success)
    {
        lock (_lock)
        {
            if (success)
            {
                _restores++;
            }
            else
            {
                _restoreFailures++;
            }
        }
    }

    public void ContainerRepairs(int succeeded, int failed)
    {
        lock (_lock)
        {
            _repairsSucceeded += succeeded;
            _repairsFailed += failed;
        }
    }

    /// <summary>What the rebuild decided for a volume: dropped, unexplained, blocked.</summary>
    public void RebuildOutcome(string outcome)
    {
        lock (_lock)
        {
            _rebuild[outcome] = _rebuild.GetValueOrDefault(outcome) + 1;
        }
    }

    public string Render(IReadOnlyList<Volume> volumes)
    {
        var text = new StringBuilder();
        void Line(FormattableString line) => text.Append(line.ToString(CultureInfo.InvariantCulture)).Append('\n');
        Line($"# HELP s3supervisor_volumes Volumes this node serves, by state.");
        Line($"# TYPE s3supervisor_volumes gauge");
        foreach (var state in new[] { VolumeState.Mounting, VolumeState.Ready, VolumeState.Stale, VolumeState.Recovering, VolumeState.Failed, VolumeState.Unmounting })
        {
            Line($"s3supervisor_volumes{{state=\"{VolumeStates.Name(state)}\"}} {volumes.Count(v => v.State == state)}");
        }
        Line($"# HELP s3supervisor_publish_targets Bind mounts of staged volumes on pod target paths.");
        Line($"# TYPE s3supervisor_publish_targets gauge");
        Line($"s3supervisor_publish_targets {volumes.Sum(v => v.Targets.Count)}");
        Line($"# HELP s3supervisor_s3fs_restarts_total s3fs restarts over the volumes now served (heals and restores).");
        Line($"# TYPE s3supervisor_s3fs_restarts_total counter");
        Line($"s3supervisor_s3fs_restarts_total {volumes.Sum(v => (long)v.RestartCount)}");
        lock (_lock)
        {
            Line($"# HELP s3supervisor_recoveries_total Heals of a volume whose s3fs died or stopped answering.");
            Line($"# TYPE s3supervisor_recoveries_total counter");
            Line($"s3supervisor_recoveries_total{{result=\"success\"}} {_recoveriesSucceeded}");
            Line($"s3supervisor_recoveries_total{{result=\"failure\"}} {_recoveriesFailed}");
            Line($"# HELP s3supervisor_recovery_duration_seconds Time from a detected failure to the volume served again.");
            Line($"# TYPE s3supervisor_recovery_duration_seconds summary");
            Line($"s3supervisor_recovery_duration_seconds_sum {_recoverySecondsSum}");
            Line($"s3supervisor_recovery_duration_seconds_count {_recoveriesSucceeded}");
            Line($"# HELP s3supervisor_restores_total Volumes restored after a supervisor restart.");
            Line($"# TYPE s3supervisor_restores_total counter");
            Line($"s3supervisor_restores_total{{result=\"success\"}} {_restores}");
            Line($"s3supervisor_restores_total{{result=\"failure\"}} {_restoreFailures}");
            Line($"# HELP s3supervisor_container_repairs_total Stale mounts replaced inside running containers.");
            Line($"# TYPE s3supervisor_container_repairs_total counter");
            Line($"s3supervisor_container_repairs_total{{result=\"success\"}} {_repairsSucceeded}");
            Line($"s3supervisor_container_repairs_total{{result=\"failure\"}} {_repairsFailed}");
            Line($"# HELP s3supervisor_rebuild_outcomes_total Volumes the rebuild did not restore, by reason.");
            Line($"# TYPE s3supervisor_rebuild_outcomes_total counter");
            foreach (var outcome in new[] { "dropped", "unexplained", "blocked" })
            {
                Line($"s3supervisor_rebuild_outcomes_total{{outcome=\"{outcome}\"}} {_rebuild.GetValueOrDefault(outcome)}");
            }
        }
        return text.ToString();
    }
}
