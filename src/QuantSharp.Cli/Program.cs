namespace QuantSharp.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("quantsharp: no command yet");
        return 2;
    }
}
