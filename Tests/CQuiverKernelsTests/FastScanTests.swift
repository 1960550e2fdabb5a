import CQuiverKernels
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct FastScanLayout {
    @Test(arguments: [2, 4, 8, 16, 30, 64])
    func packUnpackRoundTrip(m: Int) {
        var rng = TestRandom(seed: UInt64(m))
        for count in [0, 1, 15, 16, 17, 31, 32, 33, 64, 95, 100] {
            let list = PackedList.random(count: count, m: m, using: &rng)
            #expect(list.packed.count == (count + 31) / 32 * 32 * m / 2)
            var unpacked = [UInt8](repeating: 0xFF, count: count * m)
            list.packed.withUnsafeBufferPointer {
                quiver_fastscan_unpack($0.baseAddress, count, m, &unpacked)
            }
            #expect(unpacked == list.codes, "m=\(m) count=\(count)")
        }
    }

    @Test func packMatchesDocumentedLayout() {
        // Vector v, subspace s gets code (v * 7 + s * 3) % 16: every position distinguishable.
        let m = 6, count = 40
        let codes = (0..<count * m).map { UInt8(($0 / m * 7 + $0 % m * 3) % 16) }
        let list = PackedList(codes: codes, count: count, m: m)
        let blockBytes = m / 2 * 32
        for v in 0..<64 {
            for s in 0..<m {
                let (block, j) = (v / 32, v % 32)
                let byte = list.packed[block * blockBytes + s / 2 * 32 + s % 2 * 16 + j % 16]
                let code = j < 16 ? byte & 0x0f : byte >> 4
                #expect(code == (v < count ? codes[v * m + s] : 0), "vector \(v) subspace \(s)")
            }
        }
    }
}

@Suite struct FastScanSums {
    @Test func scalarSumsMatchNaiveSums() {
        var rng = TestRandom(seed: 1)
        for m in [2, 8, 16, 32, 64, 96] {
            for count in [1, 31, 32, 33, 200] {
                let list = PackedList.random(count: count, m: m, using: &rng)
                let lut = randomLUT(m: m, using: &rng)
                #expect(list.sums(QUIVER_ISA_SCALAR, lut: lut) == list.naiveSums(lut: lut),
                        "m=\(m) count=\(count)")
            }
        }
    }

    @Test(.enabled(if: hasSIMD, noSIMDReason))
    func simdSumsMatchScalarOnRandomInputs() {
        var rng = TestRandom(seed: 2)
        for _ in 0..<80 {
            // Odd m included: the last group is half padding.
            let m = Int.random(in: 1...200, using: &rng)
            let count = Int.random(in: 0...300, using: &rng)
            let list = PackedList.random(count: count, m: m, using: &rng)
            let lut = randomLUT(m: m, using: &rng)
            let reference = list.sums(QUIVER_ISA_SCALAR, lut: lut)
            #expect(reference == list.naiveSums(lut: lut), "m=\(m) count=\(count)")
            for isa in simdISAs {
                #expect(list.sums(isa, lut: lut) == reference, "isa=\(isa) m=\(m) count=\(count)")
            }
        }
    }

    @Test(.enabled(if: hasSIMD, noSIMDReason))
    func simdSumsMatchScalarOnUniformAndExtremeLUTs() {
        var rng = TestRandom(seed: 3)
        // 256 * 255 = 65280: the largest sums that still fit 16 bits, exercising every carry.
        let cases: [(m: Int, value: UInt8)] = [(256, 255), (2, 255), (64, 255), (64, 0), (32, 7), (128, 1)]
        for (m, value) in cases {
            let list = PackedList.random(count: 77, m: m, using: &rng)
            let lut = [UInt8](repeating: value, count: m * 16)
            let expected = [UInt16](repeating: UInt16(m) * UInt16(value), count: 77)
            #expect(list.sums(QUIVER_ISA_SCALAR, lut: lut) == expected, "m=\(m) value=\(value)")
            for isa in simdISAs {
                #expect(list.sums(isa, lut: lut) == expected, "isa=\(isa) m=\(m) value=\(value)")
            }
        }
        // Each subspace maximal only at code 15; all-15 codes reach the bound exactly.
        let m = 256
        var lut = [UInt8](repeating: 0, count: m * 16)
        for s in 0..<m { lut[s * 16 + 15] = 255 }
        let list = PackedList(codes: [UInt8](repeating: 15, count: 40 * m), count: 40, m: m)
        for isa in simdISAs {
            #expect(list.sums(isa, lut: lut) == [UInt16](repeating: 65280, count: 40), "isa=\(isa)")
        }
    }
}

@Suite struct FastScanScan {
    /// Scans `lists` into one heap per path and expects identical raw heaps and sorted results.
    func expectPathsAgree(_ lists: [PackedList], luts: [[UInt8]], k: Int, dedupe: Bool,
                          scale: Float, bias: Float) {
        let reference = Heap(capacity: k, dedupe: dedupe)
        for (list, lut) in zip(lists, luts) {
            reference.scan(QUIVER_ISA_SCALAR, list, lut: lut, scale: scale, bias: bias)
        }
        let expectedRaw = reference.rawEntries
        let expectedSorted = reference.sorted()
        for isa in simdISAs {
            let simd = Heap(capacity: k, dedupe: dedupe)
            for (list, lut) in zip(lists, luts) {
                simd.scan(isa, list, lut: lut, scale: scale, bias: bias)
            }
            let context: Comment = "isa=\(isa) k=\(k) dedupe=\(dedupe) scale=\(scale) bias=\(bias)"
            #expect(simd.rawEntries == expectedRaw, context)
            #expect(simd.sorted() == expectedSorted, context)
        }
        // A reservoir in place of the heap (scans of large k use one) keeps the same entries,
        // its pruning looser but never wrong.
        for isa in [QUIVER_ISA_SCALAR] + simdISAs {
            let reservoir = Heap(capacity: k, dedupe: dedupe, reservoir: true)
            for (list, lut) in zip(lists, luts) {
                reservoir.scan(isa, list, lut: lut, scale: scale, bias: bias)
            }
            #expect(reservoir.sorted() == expectedSorted, "reservoir, isa=\(isa) k=\(k) dedupe=\(dedupe) scale=\(scale) bias=\(bias)")
        }
    }

    @Test(.enabled(if: hasSIMD, noSIMDReason), arguments: [false, true])
    func simdScanMatchesScalar(dedupe: Bool) {
        var rng = TestRandom(seed: dedupe ? 5 : 4)
        for k in [1, 3, 10, 64] {
            for (scale, bias) in [(Float(1), Float(0)), (0.37, -12.5), (8.25, 1000), (0.001, 3)] {
                let m = Int.random(in: 1...96, using: &rng)
                // Both lists draw ids from one small range, so the second scan meets ids the heap holds.
                let lists = (0..<2).map { _ in
                    let count = Int.random(in: 1...250, using: &rng)
                    let ids = (0..<count).map { _ in UInt32.random(in: 0..<60, using: &rng) }
                    return PackedList.random(count: count, m: m, using: &rng, ids: ids)
                }
                let luts = lists.map { _ in randomLUT(m: m, using: &rng) }
                expectPathsAgree(lists, luts: luts, k: k, dedupe: dedupe, scale: scale, bias: bias)
            }
        }
    }

    @Test(.enabled(if: hasSIMD, noSIMDReason))
    func pruningStaysExactUnderRounding() {
        // Huge biases next to fine quantization steps, and ties: the 16-bit bound must stay
        // conservative where float rounding makes many sums map to one distance.
        var rng = TestRandom(seed: 6)
        for (scale, bias) in [(Float(1000), Float(1e6)), (4096, -3e5), (1, 1e7), (0.5, 0)] {
            for dedupe in [false, true] {
                let m = 16
                let list = PackedList.random(count: 500, m: m, using: &rng)
                let lut = (0..<m * 16).map { _ in UInt8.random(in: 0...3, using: &rng) }
                expectPathsAgree([list], luts: [lut], k: 20, dedupe: dedupe, scale: scale, bias: bias)
            }
        }
    }

    @Test(arguments: [QUIVER_ISA_SCALAR] + simdISAs)
    func scanOffersOnlyRealVectorsInOrder(isa: quiver_isa) {
        // All distances tie, so ties go by id: the k smallest ids (the first vectors) stay.
        let m = 4
        let list = PackedList(codes: [UInt8](repeating: 0, count: 45 * m), count: 45, m: m)
        let lut = [UInt8](repeating: 2, count: m * 16)
        let all = Heap(capacity: 100, dedupe: false)
        all.scan(isa, list, lut: lut, scale: 2, bias: 1)
        #expect(all.sorted() == (0..<45).map { Entry(5, Int64($0)) })
        let few = Heap(capacity: 5, dedupe: false)
        few.scan(isa, list, lut: lut, scale: 2, bias: 1)
        #expect(few.sorted() == (0..<5).map { Entry(5, Int64($0)) })
    }

    @Test(arguments: [false, true])
    func multiQueryScanMatchesOneScanPerQuery(dedupe: Bool) {
        var rng = TestRandom(seed: dedupe ? 9 : 8)
        for isa in [QUIVER_ISA_SCALAR] + simdISAs {
            for nq in 1...9 {
                let m = Int.random(in: 1...80, using: &rng)
                let count = Int.random(in: 1...200, using: &rng)
                let ids = (0..<count).map { _ in UInt32.random(in: 0..<80, using: &rng) }
                let list = PackedList.random(count: count, m: m, using: &rng, ids: ids)
                let luts = (0..<nq).map { _ in randomLUT(m: m, using: &rng) }
                let scales = (0..<nq).map { _ in Float.random(in: 0.1...10, using: &rng) }
                let biases = (0..<nq).map { _ in Float.random(in: -100...100, using: &rng) }
                let k = Int.random(in: 1...20, using: &rng)
                let single = (0..<nq).map { q in
                    let heap = Heap(capacity: k, dedupe: dedupe)
                    heap.scan(isa, list, lut: luts[q], scale: scales[q], bias: biases[q])
                    return heap
                }
                let batched = (0..<nq).map { _ in Heap(capacity: k, dedupe: dedupe) }
                let lutPointers = luts.map { lut in
                    let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: lut.count)
                    copy.initialize(from: lut, count: lut.count)
                    return UnsafePointer(copy)
                }
                defer { lutPointers.forEach { $0.deallocate() } }
                let heapPointers = UnsafeMutablePointer<UnsafeMutablePointer<quiver_topk>?>.allocate(capacity: nq)
                defer { heapPointers.deallocate() }
                for q in 0..<nq { heapPointers[q] = batched[q].rawPointer }
                list.packed.withUnsafeBufferPointer { packed in
                    list.ids.withUnsafeBufferPointer { ids in
                        quiver_fastscan_scan_multi(isa, packed.baseAddress, count, m, nq,
                                                   lutPointers.map { Optional($0) }, scales, biases,
                                                   ids.baseAddress, heapPointers)
                    }
                }
                for q in 0..<nq {
                    #expect(batched[q].rawEntries == single[q].rawEntries, "isa=\(isa) nq=\(nq) query \(q)")
                }
            }
        }
    }

    @Test func scanMatchesNaiveTopK() {
        var rng = TestRandom(seed: 7)
        let m = 8, k = 10
        let list = PackedList.random(count: 300, m: m, using: &rng)
        let lut = randomLUT(m: m, using: &rng)
        let heap = Heap(capacity: k, dedupe: false)
        heap.scan(QUIVER_ISA_SCALAR, list, lut: lut, scale: 4, bias: -1)
        let naive = list.naiveSums(lut: lut).enumerated()
            .map { Entry(Float($0.element) / 4 - 1, Int64($0.offset)) }
            .sorted { ($0.distance, $0.id) < ($1.distance, $1.id) }
        // Ties at the k-th distance keep the earliest vectors, which are also the smallest ids.
        #expect(heap.sorted() == Array(naive.prefix(k)))
    }
}

/// Bytes placed so that the last one sits just before an inaccessible page: a kernel reading even one
/// byte past the end crashes the test instead of passing by luck.
final class GuardedBytes {
    private let region: UnsafeMutableRawPointer
    private let regionSize: Int
    let pointer: UnsafeMutablePointer<UInt8>
    let count: Int

    init(_ bytes: [UInt8]) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        count = bytes.count
        let dataPages = (bytes.count + page - 1) / page
        regionSize = (dataPages + 1) * page
        region = mmap(nil, regionSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        mprotect(region + dataPages * page, page, PROT_NONE)
        pointer = (region + dataPages * page - bytes.count).assumingMemoryBound(to: UInt8.self)
        pointer.initialize(from: bytes, count: bytes.count)
    }

    deinit { munmap(region, regionSize) }
}

@Suite struct FastScanOddSubspaces {
    @Test(arguments: [1, 3, 5, 7, 31, 65, 191])
    func oddMIsPaddedAndNeverReadPastTheLUTOrCodes(m: Int) {
        var rng = TestRandom(seed: UInt64(100 + m))
        for count in [1, 17, 32, 45, 100] {
            let list = PackedList.random(count: count, m: m, using: &rng)
            #expect(list.packed.count == (count + 31) / 32 * (m + 1) / 2 * 32)
            let lut = randomLUT(m: m, using: &rng)
            let guardedLUT = GuardedBytes(lut)
            let guardedCodes = GuardedBytes(list.packed)
            let reference = list.naiveSums(lut: lut)
            for isa in [QUIVER_ISA_SCALAR] + simdISAs {
                var sums = [UInt16](repeating: 0, count: count)
                quiver_fastscan_sums(isa, guardedCodes.pointer, count, m, guardedLUT.pointer, &sums)
                #expect(sums == reference, "isa=\(isa) m=\(m) count=\(count)")
                let heap = Heap(capacity: 7, dedupe: false)
                list.ids.withUnsafeBufferPointer { ids in
                    quiver_fastscan_scan(isa, guardedCodes.pointer, count, m, guardedLUT.pointer, 0.5, 1, ids.baseAddress, heap.rawPointer)
                }
                let expected = reference.enumerated().map { Entry(Float($0.element) / 0.5 + 1, Int64($0.offset)) }
                    .sorted { ($0.distance, $0.id) < ($1.distance, $1.id) }.prefix(7)
                #expect(heap.sorted() == Array(expected), "isa=\(isa) m=\(m) count=\(count)")
            }
        }
    }

    @Test func packWritesOnlyItsBlocksAndEntriesRoundTrip() {
        var rng = TestRandom(seed: 33)
        for m in [1, 2, 3, 9, 10] {
            let count = 70
            let codes = (0..<count * m).map { _ in UInt8.random(in: 0..<16, using: &rng) }
            let size = quiver_fastscan_packed_size(count, m)
            var buffer = [UInt8](repeating: 0xEE, count: size + 64)
            codes.withUnsafeBufferPointer { quiver_fastscan_pack($0.baseAddress, count, m, &buffer) }
            #expect(buffer[size...].allSatisfy { $0 == 0xEE }, "m=\(m): pack wrote past its blocks")
            // Entry by entry into zeroed blocks gives the same bytes; get_entry reads them back.
            var incremental = [UInt8](repeating: 0, count: size)
            for v in 0..<count {
                codes.withUnsafeBufferPointer { quiver_fastscan_set_entry(&incremental, m, v, $0.baseAddress! + v * m) }
            }
            #expect(incremental == Array(buffer[..<size]), "m=\(m)")
            for v in [0, 15, 16, 31, 32, 69] {
                var entry = [UInt8](repeating: 0xFF, count: m)
                quiver_fastscan_get_entry(incremental, m, v, &entry)
                #expect(entry == Array(codes[v * m ..< (v + 1) * m]), "m=\(m) v=\(v)")
            }
        }
    }
}
