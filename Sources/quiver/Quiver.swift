import ArgumentParser

@main
struct Quiver: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quiver",
        abstract: "Quiver: sharded vector search (IVF + PQ + 4-bit FastScan).",
        subcommands: [BenchCommand.self]
    )
}
