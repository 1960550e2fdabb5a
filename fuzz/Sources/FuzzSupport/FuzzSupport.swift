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
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// The input split into a selector byte and the rest.
    public static func split(_ start: UnsafeRawPointer, _ count: Int) -> (selector: UInt8, rest: UnsafeRawBufferPointer)? {
        guard count > 0 else { return nil }
        let bytes = UnsafeRawBufferPointer(start: start, count: count)
        return (bytes[0], UnsafeRawBufferPointer(rebasing: bytes[1...]))
    }
}
