/// Vectors encoded for their lists but not yet appended: the unit a worker makes durable before
/// acknowledging, and replays from its segments after a restart.
public struct EncodedBatch: Sendable, Equatable {
    /// External ids, one per row.
    public var ids: [Int64]
    /// The list of each row.
    public var primary: [Int32]
    /// The second (spill) list of each row, −1 for none; empty when no row spills.
    public var spill: [Int32]
    /// `count × codeWidth` codes, one code per byte (unpacked), for the primary lists.
    public var primaryCodes: [UInt8]
    /// The same for the spill lists; empty when no row spills.
    public var spillCodes: [UInt8]
    /// Prepared float32 vectors (`count × d`) when the index keeps raw vectors or flat lists;
    /// empty otherwise.
    public var vectors: [Float]

    public init(ids: [Int64], primary: [Int32], spill: [Int32], primaryCodes: [UInt8], spillCodes: [UInt8], vectors: [Float]) {
        self.ids = ids
        self.primary = primary
        self.spill = spill
        self.primaryCodes = primaryCodes
        self.spillCodes = spillCodes
        self.vectors = vectors
    }

    public var count: Int { ids.count }

    /// Bytes of code per entry: padded subspaces for FastScan, subspaces for PQ8, none for flat.
    public static func codeWidth(_ configuration: IVFConfiguration) -> Int {
        switch configuration.encoding {
        case .flat: 0
        case .pq8: configuration.subspaces
        case .fastScan: configuration.paddedSubspaces
        }
    }

    /// Checks every array against the model's shape, so a corrupt or mismatched batch is refused
    /// before anything is appended.
    public func validate(for model: IVFModel) throws(IndexError) {
        let config = model.configuration
        let n = count
        let width = Self.codeWidth(config)
        let needsVectors = config.encoding == .flat || config.rawVectors != .none
        guard primary.count == n else { throw .invalidParameter("batch has \(primary.count) list ids for \(n) rows") }
        guard spill.isEmpty || spill.count == n else { throw .invalidParameter("batch has \(spill.count) spill list ids for \(n) rows") }
        guard primaryCodes.count == n * width else {
            throw .invalidParameter("batch has \(primaryCodes.count) code bytes, expected \(n * width)")
        }
        guard spillCodes.count == (spill.isEmpty ? 0 : n * width) else {
            throw .invalidParameter("batch has \(spillCodes.count) spill code bytes, expected \(spill.isEmpty ? 0 : n * width)")
        }
        guard vectors.count == (needsVectors ? n * model.dimension : 0) else {
            throw .invalidParameter("batch has \(vectors.count) vector values, expected \(needsVectors ? n * model.dimension : 0)")
        }
        // Each check is a pass without early exit (it vectorises); only a failure looks further.
        let nlist = Int32(clamping: model.nlist)
        if !primary.allInRange(0 ..< nlist), let list = primary.first(where: { !(0 ..< nlist).contains($0) }) {
            throw .invalidParameter("list \(list) does not exist (nlist \(model.nlist))")
        }
        if !spill.allInRange(-1 ..< nlist), let list = spill.first(where: { !(-1 ..< nlist).contains($0) }) {
            throw .invalidParameter("spill list \(list) does not exist (nlist \(model.nlist))")
        }
        if config.encoding == .fastScan, (primaryCodes.reduce(0, |) | spillCodes.reduce(0, |)) >= 16,
           let bad = (primaryCodes.first { $0 >= 16 } ?? spillCodes.first { $0 >= 16 }) {
            throw .invalidParameter("4-bit code \(bad) out of range")
        }
    }
}

extension Array where Element == Int32 {
    /// Whether every element lies in `range`, in one pass without early exit (a value below the
    /// range wraps to a large offset, so one unsigned maximum checks both ends).
    func allInRange(_ range: Range<Int32>) -> Bool {
        var largest: UInt32 = 0
        for value in self { largest = Swift.max(largest, UInt32(bitPattern: value &- range.lowerBound)) }
        return isEmpty || largest < UInt32(bitPattern: range.upperBound &- range.lowerBound)
    }
}
