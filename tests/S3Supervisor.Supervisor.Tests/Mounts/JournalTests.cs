using S3Supervisor.Api.V1;
using S3Supervisor.Supervisor.Mounts;

namespace S3Supervisor.Supervisor.Tests.Mounts;

public sealed class JournalTests : IDisposable
{
    /// <summary>journal.json as supervisors wrote it before the journal had a message of its own: a ListVolumesResponse.</summary>
    private const string ListVolumesResponseFile = """
        {
          "volumes": [
            {
              "volumeId": "pvc-1",
              "stagingPath": "/var/lib/kubelet/plugins/kubernetes.io/csi/s3.csi.example/abc/globalmount",
              "source": {
                "bucket": "data",
                "prefix": "team/a",
                "endpoint": "http://127.0.0.1:7480",
                "options": {
                  "uid": 1000,
                  "allowOther": true
                }
              },
              "targets": [
                {
                  "targetPath": "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pv1/mount",
                  "readOnly": true,
                  "pod": {
                    "uid": "u1",
                    "name": "app",
                    "namespace": "ns"
                  }
                }
              ]
            },
            {
              "volumeId": "pvc-2",
              "stagingPath": "/var/lib/kubelet/plugins/kubernetes.io/csi/s3.csi.example/def/globalmount",
              "source": {
                "bucket": "other",
                "endpoint": "http://127.0.0.1:7480"
              }
            }
          ]
        }
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("s3sv-journal-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Load_FileWrittenAsListVolumesResponse_ReadsEveryRecord()
    {
        var journal = new Journal(_dir);
        File.WriteAllText(journal.FilePath, ListVolumesResponseFile);

        var records = journal.Load();

        Assert.Equal(["pvc-1", "pvc-2"], records.Select(r => r.VolumeId));
        var first = records[0];
        Assert.Equal("/var/lib/kubelet/plugins/kubernetes.io/csi/s3.csi.example/abc/globalmount", first.StagingPath);
        Assert.Equal("data", first.Source.Bucket);
        Assert.Equal("team/a", first.Source.Prefix);
        Assert.Equal(1000u, first.Source.Options.Uid);
        Assert.True(first.Source.Options.AllowOther);
        var target = Assert.Single(first.Targets);
        Assert.True(target.ReadOnly);
        Assert.Equal("app", target.Pod.Name);
        Assert.Empty(records[1].Targets);
    }

    [Fact]
    public async Task Save_ThenLoad_WritesItsOwnVersionedMessageAndReadsItBack()
    {
        var journal = new Journal(_dir);
        File.WriteAllText(journal.FilePath, ListVolumesResponseFile);
        var old = journal.Load();

        await journal.SaveAsync(() => old);

        var text = await File.ReadAllTextAsync(journal.FilePath);
        Assert.Contains("\"version\": 1", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\"state\"", text, StringComparison.Ordinal);
        Assert.Equal(old, new Journal(_dir).Load());
    }

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

    [Fact]
    public async Task Save_ManyAtOnceWhileOneWrites_OneMoreWriteServesThemAllAndHoldsTheLastState()
    {
        var journal = new Journal(_dir);
        var state = 0;
        var snapshots = 0;
        using var firstTaken = new SemaphoreSlim(0);
        using var release = new SemaphoreSlim(0);
        IEnumerable<Volume> Snapshot()
        {
            if (Interlocked.Increment(ref snapshots) == 1)
            {
                // The first save is writing: every other one asks meanwhile.
                firstTaken.Release();
                release.Wait();
            }
            return [new Volume { VolumeId = $"v{Volatile.Read(ref state)}", StagingPath = "/k/s", Source = new VolumeSource { Bucket = "b" } }];
        }

        var first = Task.Run(() => journal.SaveAsync(Snapshot));
        await firstTaken.WaitAsync();
        var others = Enumerable.Range(1, 20).Select(i =>
        {
            Volatile.Write(ref state, i);
            return journal.SaveAsync(Snapshot);
        }).ToArray();
        release.Release();
        await first;
        await Task.WhenAll(others);

        // The first write, then one for the 20 that waited (each asked after its change: all are in it).
        Assert.Equal(2, snapshots);
        Assert.Equal(["v20"], journal.Load().Select(v => v.VolumeId));
        // A save asked after everything is written writes again.
        Volatile.Write(ref state, 21);
        await journal.SaveAsync(Snapshot);
        Assert.Equal(["v21"], journal.Load().Select(v => v.VolumeId));
    }
}
