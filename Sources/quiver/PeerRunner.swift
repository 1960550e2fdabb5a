import Foundation

/// One row of peers.py's JSON output.
struct PeerRow: Codable {
    let peer: String
    let params: String
    let recall: Double
    let qps: Double
    let bytes_per_vec: Int?
    let build_s: Double?
}

/// Runs the peers script (faiss, ScaNN, hnswlib) as a child process with the same data, thread
/// count and list count, echoing its table, and reads back its JSON rows.
struct PeerRunner {
    let script: String?
    let python: String?

    func run(data: String, threads: Int, nlist: Int, only: String) throws -> [PeerRow] {
        let fileManager = FileManager.default
        guard let script = script ?? ["../shared/tools/peers.py", "shared/tools/peers.py"].first(where: fileManager.fileExists) else {
            throw PeerError("peers.py not found; pass --peers-script PATH")
        }
        let environment = ProcessInfo.processInfo.environment
        let interpreter = python ?? environment["QUIVER_PYTHON"]
            ?? (fileManager.isExecutableFile(atPath: ".venv-peers/bin/python") ? ".venv-peers/bin/python" : "/usr/bin/env")
        var arguments = [script, data, "--threads", "\(threads)", "--nlist", "\(nlist)", "--only", only]
        if interpreter == "/usr/bin/env" { arguments.insert("python3", at: 0) }
        let output = fileManager.temporaryDirectory.appendingPathComponent("quiver-peers-\(getpid()).json").path
        arguments += ["--json", output]
        emit("# running peers: \(interpreter) \(arguments.joined(separator: " "))")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: interpreter)
        process.arguments = arguments
        var env = environment
        env["PYTHONUNBUFFERED"] = "1"
        env["OMP_NUM_THREADS"] = "\(threads)"
        process.environment = env
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PeerError("peers.py exited with status \(process.terminationStatus)")
        }
        defer { try? fileManager.removeItem(atPath: output) }
        return try JSONDecoder().decode([PeerRow].self, from: Data(contentsOf: URL(fileURLWithPath: output)))
    }
}

struct PeerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
