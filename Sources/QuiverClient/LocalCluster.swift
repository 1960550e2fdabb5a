import Foundation
import QuiverProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A `quiver` server process (coordinator or worker) started on loopback. It binds the port it
/// is given (0: the OS picks one) and prints `… listening on HOST:PORT`; that line gives the
/// address. Stopped with SIGTERM (then SIGKILL) when released. A process started again under
/// the same name appends to the same log, so earlier runs' lines stay readable.
public final class ServerProcess: @unchecked Sendable {
    public let name: String
    public private(set) var address: HostAndPort!
    public let log: URL
    /// Where this run's lines begin in the log.
    private let logStart: UInt64
    private let process = Process()

    /// `waitForListening: false` returns once started (a coordinator standing by prints its
    /// address only when it leads: `waitForAddress` then).
    public init(binary: URL, name: String, arguments: [String], logDirectory: URL, waitForListening: Bool = true) throws {
        self.name = name
        log = logDirectory.appendingPathComponent("\(name).log")
        if !FileManager.default.fileExists(atPath: log.path) {
            FileManager.default.createFile(atPath: log.path, contents: nil)
        }
        let output = try FileHandle(forWritingTo: log)
        logStart = try output.seekToEnd()
        process.executableURL = binary
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = process.standardOutput
        try process.run()
        if waitForListening { address = try waitForAddress() }
    }

    /// What this run has written to the log so far.
    public func logText() -> String {
        guard let handle = try? FileHandle(forReadingFrom: log) else { return "" }
        defer { try? handle.close() }
        try? handle.seek(toOffset: logStart)
        let data = (try? handle.readToEnd()) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Waits until the process has printed the address it listens on.
    @discardableResult
    public func waitForAddress(timeout: TimeInterval = 120) throws -> HostAndPort {
        if let address { return address }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = logText()
            if let line = text.split(separator: "\n").first(where: { $0.contains("listening on ") }),
               let found = HostAndPort(String(line.split(separator: " ").last!)) {
                address = found
                return found
            }
            guard process.isRunning else { throw LocalClusterError("\(name) exited during start-up:\n\(text)") }
            usleep(50_000)
        }
        throw LocalClusterError("\(name) did not report its address within \(Int(timeout)) s; see \(log.path)")
    }

    public var isRunning: Bool { process.isRunning }

    /// The exit status once it has exited (nil while running).
    public var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// The process id (of `ip netns exec …`, which execs the command, the server itself).
    public var pid: Int32 { process.processIdentifier }

    /// The address after `marker` (e.g. "metrics on http://", "health on ") in the log, once it is there.
    public func loggedAddress(after marker: String, timeout: Duration = .seconds(10)) throws -> HostAndPort {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds))
        while Date() < deadline {
            let text = logText()
            if let range = text.range(of: marker) {
                let rest = text[range.upperBound...].prefix { !$0.isWhitespace && $0 != "/" }
                if let address = HostAndPort(String(rest)) { return address }
            }
            usleep(20_000)
        }
        throw LocalClusterError("\(name) never logged \"\(marker)\"; see \(log.path)")
    }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Kills the process at once, as a crash would.
    public func crash() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

extension ServerProcess {
    /// Resident memory of a process in kB (VmRSS in /proc/PID/status); nil where it cannot be
    /// read (another OS, or the process is gone).
    public static func residentKiB(pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
    }
}

public struct LocalClusterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A coordinator and N workers on loopback (ephemeral ports), each a separate `quiver` process,
/// with data under one folder. Tests and `quiver bench-cluster` use it.
public final class LocalCluster: @unchecked Sendable {
    public let root: URL
    public let binary: URL
    public private(set) var workers: [ServerProcess] = []
    public private(set) var coordinator: ServerProcess!
    private let removeOnShutdown: Bool

    /// The folder server-side imports may read (the coordinator's `--import-root`).
    public let importRoot: URL

    /// Credentials and TLS the processes start with (none: plaintext, open, as on a laptop).
    public struct Security: Sendable {
        /// TLS on every hop with these certificates (the coordinator's and the workers').
        public var certificates: DevelopmentCertificates.Files?
        /// The coordinator's client tokens file.
        public var tokensFile: String?
        /// The join token file, given to the coordinator and every worker.
        public var joinTokenFile: String?
        /// The token `client` sends by default.
        public var clientToken: String?
        /// Every process also serves metrics and a plaintext health port (on ephemeral ports,
        /// named in its log: `ServerProcess.loggedAddress`).
        public var observability = false

        public init(certificates: DevelopmentCertificates.Files? = nil, tokensFile: String? = nil, joinTokenFile: String? = nil,
                    clientToken: String? = nil, observability: Bool = false) {
            self.observability = observability
            self.certificates = certificates
            self.tokensFile = tokensFile
            self.joinTokenFile = joinTokenFile
            self.clientToken = clientToken
        }

        func arguments(_ role: NodeRole) -> [String] {
            var arguments: [String] = []
            if let certificates {
                let files = certificates.node(role)
                arguments += ["--tls-cert", files.certificateChain, "--tls-key", files.privateKey, "--tls-ca", files.trustRoots]
            }
            if let joinTokenFile { arguments += ["--join-token-file", joinTokenFile] }
            if role == .coordinator, let tokensFile { arguments += ["--tokens-file", tokensFile] }
            if observability { arguments += ["--metrics-listen", "127.0.0.1:0", "--health-listen", "127.0.0.1:0"] }
            return arguments
        }

        /// How clients reach the coordinator.
        public var clientSecurity: ClientSecurity {
            certificates.map { .tls(trustRoots: $0.ca, identity: nil) } ?? .plaintext
        }
    }

    public let security: Security

    /// - Parameters:
    ///   - binary: the `quiver` executable.
    ///   - root: folder for data and logs (a fresh temporary folder, removed at shutdown, if nil).
    ///   - importRoot: the coordinator's import root (default: `root/data`, created).
    /// Extra arguments of the coordinator (e.g. a short `--heartbeat-interval` for tests).
    public private(set) var coordinatorArguments: [String]

    /// Workers also serve searches on a framed port (`--search-listen`), which the coordinator
    /// then uses for them; so does the coordinator, which `client` then uses for searches.
    public let framedSearch: Bool
    /// The coordinator's framed search port, when it serves one.
    public private(set) var coordinatorSearchAddress: HostAndPort?

    public init(binary: URL, workers count: Int, root: URL? = nil, workerThreads: Int? = nil, importRoot: URL? = nil,
                security: Security = Security(), coordinatorArguments: [String] = [], framedSearch: Bool = true) throws {
        self.coordinatorArguments = coordinatorArguments
        self.framedSearch = framedSearch
        self.binary = binary
        self.security = security
        removeOnShutdown = root == nil
        self.root = root ?? FileManager.default.temporaryDirectory.appendingPathComponent("quiver-cluster-\(UUID().uuidString)")
        self.importRoot = importRoot ?? self.root.appendingPathComponent("data")
        // Logs go under the root, which an import root elsewhere does not create.
        try FileManager.default.createDirectory(at: self.root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: self.importRoot, withIntermediateDirectories: true)
        self.workerThreads = workerThreads
        for index in 0 ..< count { workers.append(try startWorker(index)) }
        coordinator = try startCoordinator()
    }

    private func startCoordinator(port: Int = 0) throws -> ServerProcess {
        var arguments = ["coordinator", "--listen", "127.0.0.1:\(port)", "--data-dir", root.appendingPathComponent("coordinator").path,
                         "--workers", workers.map(\.address.description).joined(separator: ","),
                         "--import-root", importRoot.path] + security.arguments(.coordinator) + coordinatorArguments
        // Its framed port stays the same across restarts, as its gRPC port does.
        if framedSearch { arguments += ["--search-listen", "127.0.0.1:\(coordinatorSearchAddress?.port ?? 0)"] }
        let process = try ServerProcess(binary: binary, name: "coordinator", arguments: arguments, logDirectory: root)
        if framedSearch { coordinatorSearchAddress = try process.loggedAddress(after: "framed search port on ") }
        return process
    }

    /// Stops the coordinator (gracefully, or with SIGKILL when `crash`) and starts it again on
    /// the same port with the same data folder.
    /// `arguments` replaces its extra arguments from then on.
    public func restartCoordinator(crash: Bool = false, arguments: [String]? = nil) throws {
        let port = coordinator.address.port
        if let arguments { coordinatorArguments = arguments }
        if crash { coordinator.crash() } else { coordinator.stop() }
        coordinator = try startCoordinator(port: port)
    }

    private let workerThreads: Int?

    public func workerDataDirectory(_ index: Int) -> URL { root.appendingPathComponent("worker-\(index)") }

    private func startWorker(_ index: Int, port: Int = 0, extra: [String] = []) throws -> ServerProcess {
        var arguments = ["worker", "--listen", "127.0.0.1:\(port)", "--data-dir", workerDataDirectory(index).path] + extra
        if let workerThreads { arguments += ["--threads", "\(workerThreads)"] }
        if framedSearch { arguments += ["--search-listen", "127.0.0.1:0"] }
        arguments += security.arguments(.worker)
        return try ServerProcess(binary: binary, name: "worker-\(index)", arguments: arguments, logDirectory: root)
    }

    /// Stops worker `index` and starts it again on the same port with the same data folder.
    /// `crash` kills it instead (SIGKILL); `wipe` deletes its data folder while it is down.
    public func restartWorker(_ index: Int, crash: Bool = false, wipe: Bool = false) throws {
        let port = workers[index].address.port
        if crash { workers[index].crash() } else { workers[index].stop() }
        if wipe { try? FileManager.default.removeItem(at: workerDataDirectory(index)) }
        workers[index] = try startWorker(index, port: port)
    }

    /// Starts one more worker, which registers itself with the coordinator (`--coordinator`).
    @discardableResult
    public func addWorker() throws -> ServerProcess {
        let worker = try startWorker(workers.count, extra: ["--coordinator", coordinator.address.description])
        workers.append(worker)
        return worker
    }

    /// Starts worker `index` again after `workers[index].crash()` or `stop()`.
    public func startAgain(_ index: Int, wipe: Bool = false) throws {
        let port = workers[index].address.port
        if wipe { try? FileManager.default.removeItem(at: workerDataDirectory(index)) }
        workers[index] = try startWorker(index, port: port)
    }

    /// A client of the coordinator; `token` nil sends the security's `clientToken`. Its searches
    /// go to the coordinator's framed search port unless `framedSearch` is false (or there is
    /// none): then over gRPC, as every other call.
    public func client<Result: Sendable>(timeout: Duration = .seconds(600), token: String? = nil, framedSearch: Bool = true,
                                         _ body: (QuiverClient) async throws -> Result) async throws -> Result {
        try await QuiverClient.withConnection(to: coordinator.address, timeout: timeout, security: security.clientSecurity,
                                              token: token ?? security.clientToken,
                                              searchAddresses: framedSearch ? coordinatorSearchAddress.map { [$0] } ?? [] : [], body)
    }

    public func shutdown() {
        coordinator?.stop()
        for worker in workers { worker.stop() }
        if removeOnShutdown { try? FileManager.default.removeItem(at: root) }
    }

    deinit { shutdown() }
}
