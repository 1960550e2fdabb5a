import CQuiverKernels

/// One inverted list: the entries of one coarse centroid. `rows` are positions in the owning
/// index's row store (external ids and raw vectors); the payload depends on the encoding:
/// FastScan blocks, 8-bit code rows, or raw float32 vectors for IVF_FLAT.
public struct InvertedList: Sendable, Equatable {
    public private(set) var count: Int = 0
    public private(set) var rows: [Int64] = []
    /// FastScan: packed 32-vector blocks; PQ8: `count × m` code bytes.
    public private(set) var codes: [UInt8] = []
    /// IVF_FLAT only: `count × d` floats.
    public private(set) var vectors: [Float] = []

    public init() {}

    public init(count: Int, rows: [Int64], codes: [UInt8], vectors: [Float]) {
        self.count = count
        self.rows = rows
        self.codes = codes
        self.vectors = vectors
    }

    /// Bytes held by this list.
    public var memoryBytes: Int { rows.count * 8 + codes.count + vectors.count * 4 }

    /// Appends one FastScan entry; `entryCodes` holds `paddedSubspaces` codes < 16.
    mutating func appendFastScan(row: Int64, entryCodes: UnsafePointer<UInt8>, paddedSubspaces m: Int) {
        let blockBytes = m * 16
        let slot = count % 32
        if slot == 0 { codes.append(contentsOf: repeatElement(0, count: blockBytes)) }
        let blockStart = (count / 32) * blockBytes
        let lane = slot & 15
        let high = slot >= 16
        codes.withUnsafeMutableBufferPointer { packed in
            for s in 0 ..< m {
                let index = blockStart + (s >> 1) * 32 + (s & 1) * 16 + lane
                let code = entryCodes[s] & 15
                packed[index] |= high ? code << 4 : code
            }
        }
        rows.append(row)
        count += 1
    }

    mutating func appendCodes(row: Int64, entryCodes: UnsafePointer<UInt8>, subspaces: Int) {
        codes.append(contentsOf: UnsafeBufferPointer(start: entryCodes, count: subspaces))
        rows.append(row)
        count += 1
    }

    mutating func appendVector(row: Int64, vector: UnsafePointer<Float>, dimension: Int) {
        vectors.append(contentsOf: UnsafeBufferPointer(start: vector, count: dimension))
        rows.append(row)
        count += 1
    }

    mutating func reserve(additional: Int, bytesPerEntry: Int, floatsPerEntry: Int) {
        rows.reserveCapacity(count + additional)
        if bytesPerEntry > 0 { codes.reserveCapacity(codes.count + additional * bytesPerEntry + 32 * bytesPerEntry) }
        if floatsPerEntry > 0 { vectors.reserveCapacity(vectors.count + additional * floatsPerEntry) }
    }

    /// The codes of entry `index` (FastScan lists are unpacked), `subspaces` bytes.
    public func entryCodes(_ index: Int, paddedSubspaces m: Int, fastScan: Bool) -> [UInt8] {
        if !fastScan { return Array(codes[index * m ..< (index + 1) * m]) }
        let blockBytes = m * 16
        let slot = index % 32
        let blockStart = (index / 32) * blockBytes
        return (0 ..< m).map { s in
            let byte = codes[blockStart + (s >> 1) * 32 + (s & 1) * 16 + (slot & 15)]
            return slot >= 16 ? byte >> 4 : byte & 15
        }
    }
}

/// Raw vectors kept for exact re-ranking, by row, as float32 or float16.
public struct RawVectorStore: Sendable, Equatable {
    public let precision: RawVectorPrecision
    public let dimension: Int
    public private(set) var floats: [Float] = []
    public private(set) var halves: [UInt16] = []

    public init(precision: RawVectorPrecision, dimension: Int, floats: [Float] = [], halves: [UInt16] = []) {
        self.precision = precision
        self.dimension = dimension
        self.floats = floats
        self.halves = halves
    }

    public var memoryBytes: Int { floats.count * 4 + halves.count * 2 }

    mutating func append(_ vectors: UnsafePointer<Float>, count: Int) {
        switch precision {
        case .none: break
        case .float32: floats.append(contentsOf: UnsafeBufferPointer(start: vectors, count: count * dimension))
        case .float16:
            let start = halves.count
            halves.append(contentsOf: repeatElement(0, count: count * dimension))
            halves.withUnsafeMutableBufferPointer { Kernels.floatToHalf(vectors, $0.baseAddress! + start, count: count * dimension) }
        }
    }

    /// Exact distance between a prepared query and stored row `row`.
    @inline(__always)
    func distance(query: UnsafePointer<Float>, row: Int, metric: Metric,
                  floats: UnsafeBufferPointer<Float>, halves: UnsafeBufferPointer<UInt16>) -> Float {
        switch precision {
        case .none: return .infinity
        case .float32:
            let x = floats.baseAddress! + row * dimension
            return metric.usesInnerProduct ? -quiver_dot(query, x, dimension) : quiver_l2_squared(query, x, dimension)
        case .float16:
            let x = halves.baseAddress! + row * dimension
            return metric.usesInnerProduct ? -quiver_dot_f16(query, x, dimension) : quiver_l2_squared_f16(query, x, dimension)
        }
    }
}
