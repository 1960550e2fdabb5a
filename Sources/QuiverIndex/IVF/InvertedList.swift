import CQuiverKernels

/// One inverted list: the entries of one coarse centroid. `rows` are positions in the owning
/// index's row store (external ids and raw vectors), 32 bits each: an index holds at most
/// `IVFIndex.maxRows` rows. The payload depends on the encoding: FastScan blocks, 8-bit code
/// rows, or raw float32 vectors for IVF_FLAT.
public struct InvertedList: Sendable, Equatable {
    public private(set) var count: Int = 0
    public private(set) var rows: [UInt32] = []
    /// FastScan: packed 32-vector blocks; PQ8: `count × m` code bytes.
    public private(set) var codes: [UInt8] = []
    /// IVF_FLAT only: `count × d` floats.
    public private(set) var vectors: [Float] = []

    public init() {}

    public init(count: Int, rows: [UInt32], codes: [UInt8], vectors: [Float]) {
        self.count = count
        self.rows = rows
        self.codes = codes
        self.vectors = vectors
    }

    /// Bytes held by this list.
    public var memoryBytes: Int { rows.count * 4 + codes.count + vectors.count * 4 }

    /// Appends one FastScan entry; `entryCodes` holds `paddedSubspaces` codes < 16.
    mutating func appendFastScan(row: UInt32, entryCodes: UnsafePointer<UInt8>, paddedSubspaces m: Int) {
        let block = Int(QUIVER_FASTSCAN_BLOCK_VECTORS)
        if count % block == 0 { codes.append(contentsOf: repeatElement(0, count: quiver_fastscan_packed_size(block, m))) }
        codes.withUnsafeMutableBufferPointer { quiver_fastscan_set_entry($0.baseAddress!, m, count, entryCodes) }
        rows.append(row)
        count += 1
    }

    mutating func appendCodes(row: UInt32, entryCodes: UnsafePointer<UInt8>, subspaces: Int) {
        codes.append(contentsOf: UnsafeBufferPointer(start: entryCodes, count: subspaces))
        rows.append(row)
        count += 1
    }

    mutating func appendVector(row: UInt32, vector: UnsafePointer<Float>, dimension: Int) {
        vectors.append(contentsOf: UnsafeBufferPointer(start: vector, count: dimension))
        rows.append(row)
        count += 1
    }

    mutating func reserve(additional: Int, bytesPerEntry: Int, floatsPerEntry: Int) {
        rows.reserveGrowing(additional)
        if bytesPerEntry > 0 { codes.reserveGrowing((additional + Int(QUIVER_FASTSCAN_BLOCK_VECTORS)) * bytesPerEntry) }
        if floatsPerEntry > 0 { vectors.reserveGrowing(additional * floatsPerEntry) }
    }

    /// Removes entry `index` by moving the last entry into its place (entry order carries no
    /// meaning: ties rank by external id). `width` is the code bytes per entry (padded
    /// subspaces for FastScan), `dimension` the floats per entry of IVF_FLAT lists.
    mutating func removeEntry(at index: Int, encoding: ListEncoding, width: Int, dimension: Int) {
        precondition(index >= 0 && index < count)
        let last = count - 1
        switch encoding {
        case .fastScan:
            let block = Int(QUIVER_FASTSCAN_BLOCK_VECTORS)
            var moved = [UInt8](repeating: 0, count: width)
            codes.withUnsafeMutableBufferPointer { packed in
                if index != last {
                    quiver_fastscan_get_entry(packed.baseAddress!, width, last, &moved)
                    quiver_fastscan_set_entry(packed.baseAddress!, width, index, moved)
                }
                // Leave the freed slot zeroed, as a growing list's fresh slots are.
                let zero = [UInt8](repeating: 0, count: width)
                quiver_fastscan_set_entry(packed.baseAddress!, width, last, zero)
            }
            if last % block == 0 { codes.removeLast(quiver_fastscan_packed_size(block, width)) }
        case .pq8:
            if index != last {
                for byte in 0 ..< width { codes[index * width + byte] = codes[last * width + byte] }
            }
            codes.removeLast(width)
        case .flat:
            if index != last {
                for value in 0 ..< dimension { vectors[index * dimension + value] = vectors[last * dimension + value] }
            }
            vectors.removeLast(dimension)
        }
        rows[index] = rows[last]
        rows.removeLast()
        count -= 1
    }

    /// Empties the list.
    mutating func removeAll() {
        self = InvertedList()
    }

    /// The codes of entry `index` (FastScan lists are unpacked), `subspaces` bytes.
    public func entryCodes(_ index: Int, paddedSubspaces m: Int, fastScan: Bool) -> [UInt8] {
        if !fastScan { return Array(codes[index * m ..< (index + 1) * m]) }
        return [UInt8](unsafeUninitializedCapacity: m) { out, initialized in
            codes.withUnsafeBufferPointer { quiver_fastscan_get_entry($0.baseAddress!, m, index, out.baseAddress!) }
            initialized = m
        }
    }
}

extension Array {
    /// Room for `additional` more elements, at least doubling the capacity when it must grow.
    /// `reserveCapacity(count + additional)` allocates exactly that, so calling it once per
    /// batch copied every list whole on every batch: quadratic in the list's length.
    mutating func reserveGrowing(_ additional: Int) {
        let needed = count + additional
        if needed > capacity { reserveCapacity(Swift.max(needed, 2 * capacity)) }
    }
}
