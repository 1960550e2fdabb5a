import Foundation
import Testing

@testable import QuiverStorage

/// A fresh directory under the system temp dir, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/quiver-storage-tests-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let created else { throw CocoaError(.fileWriteUnknown) }
        path = String(cString: created)
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Writes raw bytes, for files the writers would never produce.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian, Array.init)
}

func floatBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { littleEndianBytes($0.bitPattern) }
}

/// A .npy file with a hand-written header dict, padded the way numpy pads it.
func npyBytes(header dict: String, major: UInt8 = 1, data: [UInt8] = []) -> [UInt8] {
    let prefix = major == 1 ? 10 : 12
    var text = Array(dict.utf8)
    let total = (prefix + text.count + 1 + 63) / 64 * 64
    text += [UInt8](repeating: 0x20, count: total - prefix - text.count - 1) + [0x0A]
    let length = major == 1 ? littleEndianBytes(UInt16(text.count)) : littleEndianBytes(UInt32(text.count))
    return [0x93] + Array("NUMPY".utf8) + [major, 0] + length + text + data
}

/// TEXMEX rows with an explicit dimension prefix per row, so tests can make them disagree.
func fvecsBytes(_ rows: [(dimension: Int32, values: [Float])]) -> [UInt8] {
    rows.flatMap { littleEndianBytes($0.dimension) + floatBytes($0.values) }
}

/// Runs `body`, expecting a DatasetError that mentions `path` in its description.
func datasetError(
    mentioning path: String?, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> DatasetError? {
    do {
        try body()
        Issue.record("expected a DatasetError, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as DatasetError {
        if let path {
            #expect(error.description.contains(path), "\(error)", sourceLocation: sourceLocation)
            #expect(error.path == path, sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected a DatasetError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Deterministic test vectors: distinct, exactly representable in float16.
func sampleValues(rows: Int, dimension: Int, offset: Int = 0) -> [Float] {
    (0..<(rows * dimension)).map { Float(($0 + offset) % 512 - 256) * 0.25 }
}
