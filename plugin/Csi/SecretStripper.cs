using System.Collections;
using Csi.V1;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace S3Supervisor.Plugin.Csi;

/// <summary>
/// Renders a request for the log with every field the CSI spec marks <c>csi_secret</c> replaced,
/// at any depth (the idea of csi-driver-host-path's protosanitizer). Driven by the proto options,
/// so a secret field added to csi.proto is covered without touching this code.
/// </summary>
public static class SecretStripper
{
    public const string Redacted = "***stripped***";

    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(false));

    public static string Format(IMessage message)
    {
        var copy = message.Descriptor.Parser.ParseFrom(message.ToByteString());
        Strip(copy);
        return Formatter.Format(copy);
    }

    public static void Strip(IMessage message)
    {
        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            if (IsSecret(field))
            {
                Redact(message, field);
                continue;
            }
            if (field.FieldType != FieldType.Message || field.IsMap)
            {
                continue;
            }
            var value = field.Accessor.GetValue(message);
            if (field.IsRepeated)
            {
                foreach (var item in (IList)value)
                {
                    Strip((IMessage)item);
                }
            }
            else if (value is IMessage nested && field.Accessor.HasValue(message))
            {
                Strip(nested);
            }
        }
    }

    public static bool IsSecret(FieldDescriptor field) =>
        field.GetOptions() is { } options && options.HasExtension(CsiExtensions.CsiSecret) && options.GetExtension(CsiExtensions.CsiSecret);

    private static void Redact(IMessage message, FieldDescriptor field)
    {
        var value = field.Accessor.GetValue(message);
        if (field.IsMap)
        {
            var map = (IDictionary)value;
            foreach (var key in map.Keys.Cast<object>().ToList())
            {
                map[key] = Redacted;
            }
        }
        else if (field.IsRepeated)
        {
            ((IList)value).Clear();
        }
        else if (field.FieldType == FieldType.String)
        {
            field.Accessor.SetValue(message, Redacted);
        }
        else
        {
            field.Accessor.Clear(message);
        }
    }
}
