using S3Supervisor.TestKit;
using Xunit.Abstractions;

namespace S3Supervisor.IntegrationTests.TestKit;

/// <summary>A bare s3fs mount against RGW, and what a container holding a bind of it sees when s3fs dies.</summary>
[Collection(RgwFixture.Collection)]
public sealed class S3fsAndStandInTests(RgwFixture rgw, ITestOutputHelper output)
{
    private const string NotConnected = "Transport endpoint is not connected";

    [SkippableFact]
    public async Task S3fsMount_ObjectPutThroughSdk_IsVisibleInMount()
    {
        var server = rgw.RequireServer();
        await server.CreateBucketAsync("s3fs-visible");
        await server.PutObjectTextAsync("s3fs-visible", "hello.txt", "through s3fs");

        await using var mount = await S3fsMount.MountAsync(server, "s3fs-visible");
        output.WriteLine($"bare s3fs mount in {mount.MountTime.TotalMilliseconds:0} ms");

        Assert.Equal("fuse.s3fs", MountTable.Find(mount.MountPoint)?.FileSystemType);
        Assert.Equal("through s3fs", await File.ReadAllTextAsync(Path.Combine(mount.MountPoint, "hello.txt")));
        await File.WriteAllTextAsync(Path.Combine(mount.MountPoint, "written.txt"), "back through s3fs");
        Assert.Equal("back through s3fs", await server.GetObjectTextAsync("s3fs-visible", "written.txt"));
    }

    [SkippableFact]
    public async Task StandIn_BindOfS3fsMount_ReadsFile_ThenGetsEnotconnAfterKill9_EvenAfterHostRemount()
    {
        var server = rgw.RequireServer();
        Requires.MountNamespaces();
        await server.CreateBucketAsync("standin");
        await server.PutObjectTextAsync("standin", "app/config.txt", "v1");

        S3fsMount? mount = null;
        S3fsMount? remount = null;
        StandInContainer? container = null;
        try
        {
            mount = await S3fsMount.MountAsync(server, "standin");
            container = await StandInContainer.StartAsync("app", [new VolumeMountSpec(mount.MountPoint, "/data")]);

            Assert.Equal("v1", await container.ReadFileAsync("/data/app/config.txt"));
            var device = container.ReadMountTable().Single(m => m.MountPoint == "/data").Device;
            Assert.Equal(MountTable.Find(mount.MountPoint)!.Device, device);

            await mount.KillAsync();

            var dead = await container.ExecAsync("cat", "/data/app/config.txt");
            Assert.NotEqual(0, dead.ExitCode);
            Assert.Contains(NotConnected, dead.Stderr);

            // The host heals its side: a new s3fs on the same path. The container keeps the old mount.
            await ProcessRunner.RunCheckedAsync("umount", ["-l", mount.MountPoint]);
            remount = await S3fsMount.MountAsync(server, "standin", new S3fsMountOptions { MountPoint = mount.MountPoint });
            Assert.Equal("v1", await File.ReadAllTextAsync(Path.Combine(remount.MountPoint, "app", "config.txt")));

            var stillDead = await container.ExecAsync("cat", "/data/app/config.txt");
            Assert.Contains(NotConnected, stillDead.Stderr);
            Assert.Equal(device, container.ReadMountTable().Single(m => m.MountPoint == "/data").Device);
        }
        finally
        {
            if (container is not null)
            {
                await container.DisposeAsync();
            }

            if (remount is not null)
            {
                await remount.DisposeAsync();
            }

            if (mount is not null)
            {
                await mount.DisposeAsync();
            }
        }

        Assert.Null(MountTable.Find(mount.MountPoint));
    }
}
