using System.Globalization;
using Csi.V1;
using S3Supervisor.Api.V1;

namespace S3Supervisor.Plugin.Csi;

/// <summary>The supervisor's view of a volume as a CSI VolumeCondition (what kubelet turns into events).</summary>
public static class VolumeConditions
{
    public static VolumeCondition From(S3Supervisor.Api.V1.Volume volume)
    {
        var (abnormal, message) = volume.State switch
        {
            VolumeState.Ready => (false, "s3fs is mounted and answering"),
            VolumeState.Mounting => (false, "s3fs is starting"),
            VolumeState.Stale => (true, "the s3fs mount is stale (s3fs exited or the mount stopped answering); the supervisor is remounting it"),
            VolumeState.Recovering => (true, "the supervisor is remounting the volume and re-binding its targets"),
            VolumeState.Failed => (true, "remounting the volume failed; the supervisor keeps retrying with backoff"),
            VolumeState.Unmounting => (true, "the volume is being unstaged"),
            _ => (true, "the supervisor reports no state for the volume"),
        };
        if (abnormal)
        {
            if (volume.RestartCount > 0)
            {
                message += string.Create(CultureInfo.InvariantCulture, $" (s3fs restarts so far: {volume.RestartCount})");
            }
            if (volume.StateSince is not null)
            {
                message += string.Create(CultureInfo.InvariantCulture, $"; since {volume.StateSince.ToDateTime():O}");
            }
            if (volume.LastError.Length > 0)
            {
                message += $"; last error: {volume.LastError}";
            }
        }
        return new VolumeCondition { Abnormal = abnormal, Message = message };
    }
}
