#if canImport(Glibc)
import Glibc
#endif
import Foundation
import QuiverIndex
import QuiverStorage

/// What every fuzz target shares: a scratch folder in memory and a small trained model.
public enum FuzzSupport {
    /// A folder for this process's scratch files, in /dev/shm when it exists (no disk I/O).
    public static let scratch: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let path = base + "/quiver-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    /// A model of 8 dimensions, 4 lists, 4 subspaces, with raw float32 vectors, trained on fixed data.
    public static let model: IVFModel = {
        var generator = SeededGenerator(seed: 7)
        let values = (0 ..< 256 * 8).map { _ in Float.random(in: -1 ... 1, using: &generator) }
        let configuration = IVFConfiguration(dimension: 8, metric: .innerProduct, nlist: 4, subspaces: 4,
                                             spillLambda: 1, rawVectors: .float32, trainingIterations: 4)
        return try! IVFModel.train(sample: Matrix(rows: 256, dimension: 8, values: values), configuration: configuration)
    }()

    /// `count` rows of the model's dimension, fixed, for seeds.
    public static func rows(_ count: Int, seed: UInt64 = 3) -> Matrix {
        var generator = SeededGenerator(seed: seed)
        return Matrix(rows: count, dimension: 8, values: (0 ..< count * 8).map { _ in Float.random(in: -1 ... 1, using: &generator) })
    }

    /// Writes `bytes` to a scratch file and returns its path.
    public static func file(_ name: String, _ bytes: UnsafeRawBufferPointer) -> String {
        let path = scratch + "/" + name
        write(path, bytes)
        return path
    }

    /// Writes `bytes` to `path`, replacing it. libFuzzer's timeout timer (SIGALRM every few
    /// seconds) interrupts system calls, and Foundation's file calls fail on EINTR instead of
    /// retrying, so the harness does its own I/O.
    public static func write(_ path: String, _ bytes: UnsafeRawBufferPointer) {
        let fd = retrying { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        precondition(fd >= 0, "fuzz harness: cannot create \(path): \(String(cString: strerror(errno)))")
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let written = retrying { Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) }
            precondition(written > 0, "fuzz harness: cannot write \(path): \(String(cString: strerror(errno)))")
            done += written
        }
    }

    /// The whole of the file at `path`.
    public static func read(_ path: String) -> [UInt8] {
        let fd = retrying { open(path, O_RDONLY | O_CLOEXEC) }
        precondition(fd >= 0, "fuzz harness: cannot open \(path): \(String(cString: strerror(errno)))")
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let got = chunk.withUnsafeMutableBytes { buffer in retrying { Glibc.read(fd, buffer.baseAddress!, buffer.count) } }
            precondition(got >= 0, "fuzz harness: cannot read \(path): \(String(cString: strerror(errno)))")
            if got == 0 { return bytes }
            bytes += chunk[..<got]
        }
    }

    /// Every file under `folder`, by path relative to it, read once.
    public static func snapshot(_ folder: String) -> [(path: String, bytes: [UInt8])] {
        let names = (FileManager.default.subpaths(atPath: folder) ?? []).sorted()
        return names.compactMap { name in
            var isFolder: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isFolder)
            return isFolder.boolValue ? nil : (name, read(folder + "/" + name))
        }
    }

    /// Lays `files` (from `snapshot`) out under `folder`, which is removed first.
    public static func restore(_ files: [(path: String, bytes: [UInt8])], into folder: String) {
        try? FileManager.default.removeItem(atPath: folder)
        for file in files {
            let path = folder + "/" + file.path
            let parent = String(path[..<path.lastIndex(of: "/")!])
            try! FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            file.bytes.withUnsafeBytes { write(path, $0) }
        }
    }

    private static func retrying<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    /// The input split into a selector byte and the rest.
    public static func split(_ start: UnsafeRawPointer, _ count: Int) -> (selector: UInt8, rest: UnsafeRawBufferPointer)? {
        guard count > 0 else { return nil }
        let bytes = UnsafeRawBufferPointer(start: start, count: count)
        return (bytes[0], UnsafeRawBufferPointer(rebasing: bytes[1...]))
    }
}
