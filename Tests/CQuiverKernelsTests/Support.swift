import CQuiverKernels
import Testing

/// SplitMix64: a deterministic generator, so a failing case reproduces.
struct TestRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The SIMD path this CPU runs best (AVX-512, AVX2 or NEON), or scalar when it has none.
let simdISA = quiver_best_isa()
let hasSIMD = simdISA != QUIVER_ISA_SCALAR
let noSIMDReason: Comment = "this CPU has no SIMD path (AVX2+FMA+F16C, or NEON)"
/// Every SIMD path this CPU can run (AVX-512 and AVX2 on a CPU with both), each checked against scalar.
let simdISAs = [QUIVER_ISA_AVX512, QUIVER_ISA_AVX2, QUIVER_ISA_NEON].filter { quiver_isa_available($0) != 0 }

/// A quiver_topk with storage owned by Swift.
final class Heap {
    private let distances: UnsafeMutablePointer<Float>
    private let ids: UnsafeMutablePointer<Int64>
    private let index: UnsafeMutablePointer<Int32>?
    private let positions: UnsafeMutablePointer<Int32>?
    /// Stable storage, so batched scans can hold a pointer to several heaps at once.
    let rawPointer: UnsafeMutablePointer<quiver_topk>

    /// `reservoir`: storage of twice the capacity, which makes it a reservoir whatever the
    /// capacity (the library picks one only from QUIVER_TOPK_RESERVOIR_MIN on).
    init(capacity: Int, dedupe: Bool, tieKeys: UnsafePointer<Int64>? = nil, reservoir: Bool = false) {
        let room = reservoir ? 2 * capacity : capacity
        distances = .allocate(capacity: max(room, 1))
        ids = .allocate(capacity: max(room, 1))
        index = dedupe ? .allocate(capacity: quiver_topk_index_size(Int32(room))) : nil
        positions = dedupe ? .allocate(capacity: max(room, 1)) : nil
        rawPointer = .allocate(capacity: 1)
        rawPointer.initialize(to: quiver_topk())
        quiver_topk_init(rawPointer, Int32(capacity), Int32(room), distances, ids, index, positions, tieKeys)
    }

    deinit {
        distances.deallocate()
        ids.deallocate()
        index?.deallocate()
        positions?.deallocate()
        rawPointer.deallocate()
    }

    func clear() { quiver_topk_clear(rawPointer) }

    var threshold: Float { quiver_topk_threshold(rawPointer) }
    var count: Int { Int(rawPointer.pointee.size) }

    @discardableResult
    func push(_ distance: Float, _ id: Int64) -> Bool { quiver_topk_push(rawPointer, distance, id) != 0 }

    /// Held entries in heap order (the raw array), as exact bit patterns.
    var rawEntries: [Entry] { (0..<count).map { Entry(distances[$0], ids[$0]) } }

    /// Sorts the heap and returns its entries.
    func sorted() -> [Entry] {
        quiver_topk_sort(rawPointer)
        return rawEntries
    }

    func scan(_ isa: quiver_isa, _ list: PackedList, lut: [UInt8], scale: Float, bias: Float) {
        list.packed.withUnsafeBufferPointer { packed in
            lut.withUnsafeBufferPointer { lut in
                list.ids.withUnsafeBufferPointer { ids in
                    quiver_fastscan_scan(isa, packed.baseAddress, list.count, list.m, lut.baseAddress,
                                         scale, bias, ids.baseAddress, rawPointer)
                }
            }
        }
    }
}

/// A heap entry compared bit for bit.
struct Entry: Equatable, CustomStringConvertible {
    let distanceBits: UInt32
    let id: Int64
    init(_ distance: Float, _ id: Int64) {
        distanceBits = distance.bitPattern
        self.id = id
    }
    var distance: Float { Float(bitPattern: distanceBits) }
    var description: String { "(\(distance), \(id))" }
}

/// Codes of one inverted list, row-major and packed.
struct PackedList {
    let count: Int
    let m: Int
    let codes: [UInt8]
    let packed: [UInt8]
    let ids: [UInt32]

    init(codes: [UInt8], count: Int, m: Int, ids: [UInt32]? = nil) {
        self.count = count
        self.m = m
        self.codes = codes
        var packed = [UInt8](repeating: 0xAA, count: quiver_fastscan_packed_size(count, m))
        codes.withUnsafeBufferPointer { quiver_fastscan_pack($0.baseAddress, count, m, &packed) }
        self.packed = packed
        self.ids = ids ?? (0..<count).map { UInt32($0) }
    }

    static func random(count: Int, m: Int, using rng: inout TestRandom, ids: [UInt32]? = nil) -> PackedList {
        let codes = (0..<count * m).map { _ in UInt8.random(in: 0..<16, using: &rng) }
        return PackedList(codes: codes, count: count, m: m, ids: ids)
    }

    func sums(_ isa: quiver_isa, lut: [UInt8]) -> [UInt16] {
        var sums = [UInt16](repeating: 0, count: count)
        packed.withUnsafeBufferPointer { packed in
            quiver_fastscan_sums(isa, packed.baseAddress, count, m, lut, &sums)
        }
        return sums
    }

    /// The quantized distances computed the obvious way from the row-major codes.
    func naiveSums(lut: [UInt8]) -> [UInt16] {
        (0..<count).map { v in
            var sum = 0
            for s in 0..<m { sum += Int(lut[s * 16 + Int(codes[v * m + s])]) }
            return UInt16(sum)
        }
    }
}

/// A LUT whose rows' maxima sum to at most 65535, as callers guarantee.
func randomLUT(m: Int, using rng: inout TestRandom) -> [UInt8] {
    let cap = UInt8(min(255, 65535 / m))
    return (0..<m * 16).map { _ in UInt8.random(in: 0...cap, using: &rng) }
}
