import Foundation
import QuiverClient
import QuiverProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A `quiver` process started by a test: its address is read from the line it prints once it
/// listens (it binds port 0, so the OS picks a free port), and it is stopped when the test ends.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let name: String
    private(set) var address: HostAndPort!
    let log: URL

    init(name: String, arguments: [String], logDirectory: URL) throws {
        self.name = name
        log = logDirectory.appendingPathComponent("\(name).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = LocalCluster.binary
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        try process.run()
        address = try waitForAddress()
    }

    private func waitForAddress() throws -> HostAndPort {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on ") }),
               let address = HostAndPort(String(line.split(separator: " ").last!)) {
                return address
            }
            guard process.isRunning else { throw ClusterTestError("\(name) exited during start-up:\n\(text)") }
            usleep(50_000)
        }
        throw ClusterTestError("\(name) did not report its address within 60 s")
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Kills the process at once, as a crash or power loss would.
    func crash() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

struct ClusterTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A coordinator and N workers on loopback, each a real `quiver` process, with data under one
/// temporary folder that is removed afterwards.
final class LocalCluster: @unchecked Sendable {
    let root: URL
    private(set) var workers: [ServerProcess] = []
    private(set) var coordinator: ServerProcess!

    /// The `quiver` executable built beside the test bundle (or $QUIVER_BIN).
    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["QUIVER_BIN"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("quiver")
    }

    init(workers count: Int) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        for index in 0 ..< count { workers.append(try startWorker(index)) }
        coordinator = try ServerProcess(
            name: "coordinator",
            arguments: ["coordinator", "--listen", "127.0.0.1:0", "--data-dir", root.appendingPathComponent("coordinator").path,
                        "--workers", workers.map(\.address.description).joined(separator: ",")],
            logDirectory: root)
    }

    func workerDataDirectory(_ index: Int) -> URL { root.appendingPathComponent("worker-\(index)") }

    private func startWorker(_ index: Int, port: Int = 0) throws -> ServerProcess {
        try ServerProcess(name: "worker-\(index)",
                          arguments: ["worker", "--listen", "127.0.0.1:\(port)", "--data-dir", workerDataDirectory(index).path],
                          logDirectory: root)
    }

    /// Stops worker `index` and starts it again on the same port with the same data folder.
    func restartWorker(_ index: Int) throws {
        let port = workers[index].address.port
        workers[index].stop()
        workers[index] = try startWorker(index, port: port)
    }

    func client<Result: Sendable>(_ body: (QuiverClient) async throws -> Result) async throws -> Result {
        try await QuiverClient.withConnection(to: coordinator.address, timeout: .seconds(120), body)
    }

    func shutdown() {
        coordinator?.stop()
        for worker in workers { worker.stop() }
        try? FileManager.default.removeItem(at: root)
    }

    deinit { shutdown() }
}
