using S3Supervisor.Api.V1;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Tests.Mounts;

public sealed class JournalTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("s3sv-journal-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public async Task Save_PendingRecordsOfVolumesNotHeld_AreKeptUntilCleared()
    {
        var journal = new Journal(_dir);
        journal.SetPendingRecords([new Volume { VolumeId = "waiting", StagingPath = "/k/s", Source = new VolumeSource { Bucket = "b" } }]);

        await journal.SaveAsync(() => [new Volume { VolumeId = "held", StagingPath = "/k/h", Source = new VolumeSource { Bucket = "b" } }]);
        Assert.Equal(["held", "waiting"], journal.Load().Select(v => v.VolumeId));

        journal.ClearPendingRecord("waiting");
        await journal.SaveAsync(() => []);
        Assert.Empty(journal.Load());
    }
}
