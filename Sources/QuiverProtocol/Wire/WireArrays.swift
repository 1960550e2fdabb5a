import Foundation

/// A `bytes` field whose length does not fit the shape it claims.
public struct WireFormatError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Packing of numeric arrays into protobuf `bytes` fields: little-endian, contiguous, no per-element
/// framing (the wire rule in proto/quiver/v1/common.proto). Every decode checks the length.
public enum WireArrays {
    public static func pack<Element: BitwiseCopyable>(_ values: [Element]) -> Data {
        values.withUnsafeBytes { Data($0) }
    }

    public static func pack<Element: BitwiseCopyable>(_ values: ArraySlice<Element>) -> Data {
        values.withUnsafeBytes { Data($0) }
    }

    /// Unpacks `data` as elements; `count`, when given, must match exactly.
    public static func unpack<Element: BitwiseCopyable>(_ data: Data, as type: Element.Type, count: Int? = nil,
                                                        field: String) throws(WireFormatError) -> [Element] {
        let width = MemoryLayout<Element>.stride
        guard data.count % width == 0 else {
            throw WireFormatError("\(field): \(data.count) bytes is not a whole number of \(width)-byte values")
        }
        let elements = data.count / width
        if let count, count != elements {
            throw WireFormatError("\(field): expected \(count) values (\(count * width) bytes), got \(elements) (\(data.count) bytes)")
        }
        return [Element](unsafeUninitializedCapacity: elements) { buffer, initialized in
            data.withUnsafeBytes { raw in
                if elements > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw) }
            }
            initialized = elements
        }
    }
}

extension Quiver_V1_FloatMatrix {
    public init(rows: Int, dimension: Int, values: [Float]) {
        self.init()
        self.rows = UInt32(rows)
        self.dimension = UInt32(dimension)
        self.data = WireArrays.pack(values)
    }

    /// The row-major values; the byte length must be rows × dimension × 4.
    public func values(field: String = "vectors") throws(WireFormatError) -> [Float] {
        try WireArrays.unpack(data, as: Float.self, count: Int(rows) * Int(dimension), field: field)
    }
}

extension Quiver_V1_TopK {
    public init(queryCount: Int, k: Int, ids: [Int64], scores: [Float]) {
        self.init()
        self.queryCount = UInt32(queryCount)
        self.k = UInt32(k)
        self.ids = WireArrays.pack(ids)
        self.scores = WireArrays.pack(scores)
    }

    public func unpackedIDs() throws(WireFormatError) -> [Int64] {
        try WireArrays.unpack(ids, as: Int64.self, count: Int(queryCount) * Int(k), field: "results.ids")
    }

    public func unpackedScores() throws(WireFormatError) -> [Float] {
        try WireArrays.unpack(scores, as: Float.self, count: Int(queryCount) * Int(k), field: "results.scores")
    }
}
