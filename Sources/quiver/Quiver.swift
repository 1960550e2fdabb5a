import ArgumentParser

@main
struct Quiver: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quiver",
        abstract: "Quiver: sharded vector search (IVF + PQ + 4-bit FastScan).",
        subcommands: [CreateCommand.self, TrainCommand.self, LoadCommand.self, QueryCommand.self, StatusCommand.self,
                      CollectionsCommand.self, DropCommand.self, RemoveWorkerCommand.self, DeleteCommand.self, DrainCommand.self, BenchCommand.self, ClusterBenchCommand.self, WorkerCommand.self,
                      CoordinatorCommand.self, TransportBenchCommand.self, CertsCommand.self, ChaosCommand.self]
    )
}
