// The local node: the life of one S3 volume as a cluster drives it, on this machine, for real.
//
//   Ceph RGW (S3, loopback)  <-  s3fs children  <-  s3supervisor  <-  s3csi-plugin  <-  this program (playing kubelet
//                                                        |                                 and the external provisioner)
//   test Kubernetes API server (loopback, seeded with the scenario's objects) <-------------+ (the supervisor's rebuild)
//
// By default the supervisor and the plugin run as plain processes and the two "app containers" are
// processes in their own mount namespaces holding bind copies of the pods' publish targets, as a
// container runtime gives them. With --containers the node pod of deploy/ runs under podman from the
// images of scripts/images.sh, and the app containers are podman containers too
// (S3Supervisor.TestKit.Containers.ContainerScenario). Every step checks what it claims and the
// program exits non-zero if any check failed.
using S3Supervisor.LocalNode;
using S3Supervisor.TestKit;
using S3Supervisor.TestKit.Containers;

ScenarioReport report;
string name;
if (args.Contains("--containers"))
{
    var missing = await ContainerScenario.MissingAsync();
    if (missing is not null)
    {
        Console.Error.WriteLine($"local node (containers): cannot run here: {missing}");
        return 1;
    }
    var containers = new ContainerScenario(Console.WriteLine);
    (report, name) = (containers.Report, "local node (containers)");
    await RunAsync(containers.RunAsync, containers.DisposeAsync);
}
else
{
    var scenario = new Scenario();
    (report, name) = (scenario.Report, "local node");
    await RunAsync(scenario.RunAsync, scenario.DisposeAsync);
}
Console.WriteLine();
Console.WriteLine(report.Summary(name));
return report.Failed.Any() ? 1 : 0;

async Task RunAsync(Func<Task> run, Func<ValueTask> dispose)
{
    try
    {
        await run();
    }
    catch (Exception e)
    {
        report.Fail("scenario aborted", e.ToString());
    }
    finally
    {
        await dispose();
    }
}
