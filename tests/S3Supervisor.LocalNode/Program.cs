// The local node: the life of one S3 volume as a cluster drives it, on this machine, for real.
//
//   Ceph RGW (S3, loopback)  <-  s3fs children  <-  s3supervisor  <-  s3csi-plugin  <-  this program (playing kubelet
//                                                        |                                 and the external provisioner)
//   test Kubernetes API server (loopback, seeded with the scenario's objects) <-------------+ (the supervisor's rebuild)
//
// Two "app containers" are processes in their own mount namespaces holding bind copies of the
// pods' publish targets, as a container runtime gives them. Every step checks what it claims and
// the program exits non-zero if any check failed.
using S3Supervisor.LocalNode;

var scenario = new Scenario();
try
{
    await scenario.RunAsync();
}
catch (Exception e)
{
    scenario.Fail("scenario aborted", e.ToString());
}
finally
{
    await scenario.DisposeAsync();
}
return scenario.Summary();
