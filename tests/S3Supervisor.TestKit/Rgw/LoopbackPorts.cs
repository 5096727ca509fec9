using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace S3Supervisor.TestKit;

/// <summary>Loopback ports for the test servers (RGW's daemons, a node pod's metrics listener).</summary>
public static class LoopbackPorts
{
    /// <summary>
    /// Free loopback ports, picked at random below Linux's ephemeral range (so no outgoing connection
    /// of any daemon holds one) and probed by binding them. Random, so that two fixtures starting at
    /// the same moment (or a leftover cluster) do not collide; a rare race is retried by the caller.
    /// </summary>
    public static int[] Free(int count)
    {
        var (low, high) = (20000, 32000);
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            var ephemeralLow = int.Parse(range[0], CultureInfo.InvariantCulture);
            if (ephemeralLow < low + 1000)
            {
                (low, high) = (int.Parse(range[1], CultureInfo.InvariantCulture) + 1, 65000);
            }
            else
            {
                high = Math.Min(high, ephemeralLow);
            }
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            // keep the default window
        }

        if (high - low < 100)
        {
            (low, high) = (20000, 60000);
        }

        var ports = new List<int>();
        while (ports.Count < count)
        {
            var port = Random.Shared.Next(low, high);
            if (!ports.Contains(port) && IsFree(port))
            {
                ports.Add(port);
            }
        }

        return [.. ports];
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
