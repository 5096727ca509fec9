using Csi.V1;
using Google.Protobuf.Reflection;
using S3Supervisor.Plugin.Csi;

namespace S3Supervisor.Plugin.Tests;

public sealed class SecretStripperTests
{
    [Fact]
    public void Format_NodeStage_SecretsStrippedOtherFieldsKept()
    {
        var request = TestData.Stage();
        var text = SecretStripper.Format(request);

        Assert.DoesNotContain(TestData.SecretKey, text);
        Assert.DoesNotContain(TestData.AccessKey, text);
        Assert.Contains(SecretStripper.Redacted, text);
        Assert.Contains("accessKeyID", text);
        Assert.Contains(TestData.StagingPath, text);
        Assert.Contains("data-bucket", text);
        // The request itself is not changed.
        Assert.Equal(TestData.SecretKey, request.Secrets["secretAccessKey"]);
    }

    [Fact]
    public void Format_CreateVolume_SecretsStripped()
    {
        var text = SecretStripper.Format(TestData.Create());
        Assert.DoesNotContain(TestData.SecretKey, text);
        Assert.Contains("127.0.0.1:7480", text);
    }

    [Fact]
    public void Format_EverySecretField_Stripped()
    {
        // Each request type with a csi_secret field, filled with a recognisable value.
        var types = CsiReflection.Descriptor.MessageTypes.Where(m => m.Fields.InDeclarationOrder().Any(SecretStripper.IsSecret)).ToList();
        Assert.True(types.Count >= 12);
        foreach (var type in types)
        {
            var message = type.Parser.ParseFrom([]);
            foreach (var field in type.Fields.InDeclarationOrder().Where(SecretStripper.IsSecret))
            {
                ((System.Collections.IDictionary)field.Accessor.GetValue(message))["k"] = "value-that-must-not-appear";
            }
            Assert.DoesNotContain("value-that-must-not-appear", SecretStripper.Format(message));
        }
    }

    [Fact]
    public void IsSecret_SpecFields_MatchesSpec()
    {
        Assert.True(SecretStripper.IsSecret(NodeStageVolumeRequest.Descriptor.FindFieldByName("secrets")));
        Assert.False(SecretStripper.IsSecret(NodeStageVolumeRequest.Descriptor.FindFieldByName("volume_context")));
    }
}

/// <summary>Guards the wire contract: a few spec numbers that a careless edit of csi.proto would break.</summary>
public sealed class CsiProtoTests
{
    [Theory]
    [InlineData("NodeStageVolumeRequest", "volume_id", 1)]
    [InlineData("NodeStageVolumeRequest", "staging_target_path", 3)]
    [InlineData("NodeStageVolumeRequest", "secrets", 5)]
    [InlineData("NodeStageVolumeRequest", "volume_context", 6)]
    [InlineData("NodePublishVolumeRequest", "target_path", 4)]
    [InlineData("NodePublishVolumeRequest", "readonly", 6)]
    [InlineData("NodePublishVolumeRequest", "volume_context", 8)]
    [InlineData("CreateVolumeRequest", "mutable_parameters", 8)]
    [InlineData("Volume", "volume_id", 2)]
    [InlineData("NodeGetVolumeStatsResponse", "volume_condition", 2)]
    [InlineData("NodeGetInfoResponse", "max_volumes_per_node", 2)]
    public void Field_Number_AsInSpec(string message, string field, int number) =>
        Assert.Equal(number, CsiReflection.Descriptor.FindTypeByName<MessageDescriptor>(message).FindFieldByName(field).FieldNumber);

    [Fact]
    public void Services_Methods_AsInSpec()
    {
        Assert.Equal("csi.v1.Node", CsiReflection.Descriptor.Services.Single(s => s.Name == "Node").FullName);
        Assert.Equal(14, CsiReflection.Descriptor.Services.Single(s => s.Name == "Controller").Methods.Count);
        Assert.Equal(8, CsiReflection.Descriptor.Services.Single(s => s.Name == "Node").Methods.Count);
        Assert.Equal(3, CsiReflection.Descriptor.Services.Single(s => s.Name == "Identity").Methods.Count);
    }
}
