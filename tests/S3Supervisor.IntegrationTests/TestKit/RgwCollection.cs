using S3Supervisor.TestKit;

namespace S3Supervisor.IntegrationTests.TestKit;

/// <summary>
/// The one RGW (Ceph radosgw on loopback) shared by every test class of this project marked
/// <c>[Collection(RgwFixture.Collection)]</c>. xunit requires the definition in the test assembly;
/// declare it nowhere else in this project.
/// </summary>
[CollectionDefinition(RgwFixture.Collection)]
public sealed class RgwCollection : ICollectionFixture<RgwFixture>;
