import Foundation
import QuiverClient

/// The named phases of a long cluster test. Each phase that ends prints how long it took (a
/// slow run's log then shows where the time went); one that throws names itself, says after
/// how long, and carries the servers' last log lines: a failed run keeps no logs, and an error
/// such as a stream closed under a call says nothing of why.
struct TestPhases {
    private let label: String
    private let servers: () -> [ServerProcess]
    private let started = ContinuousClock.now

    /// `servers` is asked on failure, so it may name processes started or replaced since.
    init(_ label: String, servers: @escaping () -> [ServerProcess]) {
        self.label = label
        self.servers = servers
    }

    func callAsFunction<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
        let begun = ContinuousClock.now
        do {
            let value = try await body()
            print("\(label): \(name): \(begun.duration(to: .now)) (at \(started.duration(to: .now)))")
            return value
        } catch {
            let logs = servers().map { process in
                "\(process.name) (running: \(process.isRunning)), last 30 log lines:\n"
                    + process.logText().split(separator: "\n").suffix(30).joined(separator: "\n")
            }
            throw LocalClusterError("\(name), after \(begun.duration(to: .now)): \(error)\n" + logs.joined(separator: "\n"))
        }
    }
}
