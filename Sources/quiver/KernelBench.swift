import CQuiverKernels
import Foundation
import QuiverIndex

/// `quiver bench --kernels`: times the C kernels on synthetic inputs, one ISA at a time, so that
/// each SIMD path's gain over the others is measured on this CPU (CPU time, best of several runs).
enum KernelBench {
    static func run() {
        let isas = [QUIVER_ISA_SCALAR, QUIVER_ISA_AVX2, QUIVER_ISA_AVX512, QUIVER_ISA_NEON].filter { quiver_isa_available($0) != 0 }
        emit("# kernels on \(Kernels.bestISAName); CPU time, best of 5")
        var rng = SeededGenerator(seed: 9)
        gemm(isas, &rng)
        fastScan(isas, &rng)
        heap(&rng)
        encode(isas, &rng)
        rerank(isas, &rng)
    }

    /// Best CPU seconds of `repeats` runs of `body`.
    static func time(repeats: Int = 5, _ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0 ..< repeats {
            let start = processCPUSeconds()
            body()
            best = min(best, processCPUSeconds() - start)
        }
        return best
    }

    static func name(_ isa: quiver_isa) -> String { String(cString: quiver_isa_name(isa)) }

    static func gemm(_ isas: [quiver_isa], _ rng: inout SeededGenerator) {
        for (na, nb, d) in [(4096, 632, 384), (1, 632, 384), (4096, 2000, 128)] {
            let a = (0 ..< na * d).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            let b = (0 ..< nb * d).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            var out = [Float](repeating: 0, count: na * nb)
            let reps = max(1, 200_000_000 / (na * nb * d))
            for isa in isas where isa != QUIVER_ISA_SCALAR || na == 1 {
                let seconds = time { for _ in 0 ..< reps { quiver_inner_products_isa(isa, a, na, b, nb, d, &out, nb) } }
                emit(String(format: "gemm %@ %dx%dx%d: %.1f GMAC/s", name(isa), na, nb, d, Double(reps * na * nb * d) / seconds / 1e9))
            }
        }
    }

    static func fastScan(_ isas: [quiver_isa], _ rng: inout SeededGenerator) {
        let m = 192, count = 4096
        let codes = (0 ..< count * m).map { _ in UInt8.random(in: 0 ..< 16, using: &rng) }
        var packed = [UInt8](repeating: 0, count: quiver_fastscan_packed_size(count, m))
        quiver_fastscan_pack(codes, count, m, &packed)
        let ids = (0 ..< count).map { UInt32($0) }
        let luts = (0 ..< 4).map { _ in (0 ..< m * 16).map { _ in UInt8.random(in: 0 ... 40, using: &rng) } }
        let lutPointers = luts.map { lut -> UnsafePointer<UInt8>? in
            let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: lut.count)
            copy.initialize(from: lut, count: lut.count)
            return UnsafePointer(copy)
        }
        let scales = [Float](repeating: 1, count: 4), biases = [Float](repeating: 0, count: 4)
        let heaps = TopKArray(count: 4, capacity: 40, dedupe: true)
        let reps = 200
        for isa in isas {
            for nq in [1, 2, 4] {
                let heapPointers: [UnsafeMutablePointer<quiver_topk>?] = (0 ..< nq).map { heaps.heap($0) }
                let seconds = time {
                    for _ in 0 ..< reps {
                        for q in 0 ..< nq { heaps.reset(q) }
                        quiver_fastscan_scan_multi(isa, packed, count, m, nq, lutPointers, scales, biases, ids, heapPointers)
                    }
                }
                emit(String(format: "fastscan %@ m=%d, %d quer%@ per pass: %.2f ns per vector per query", name(isa), m, nq,
                            nq == 1 ? "y" : "ies", seconds / Double(reps * count * nq) * 1e9))
            }
        }
        lutPointers.forEach { $0?.deallocate() }
    }

    static func heap(_ rng: inout SeededGenerator) {
        let offers = 2_000_000
        for capacity in [10, 100, 1000, 10000] {
            // Ids repeat (about two offers per id, as with SOAR's second copies).
            let stream = (0 ..< offers).map { _ in (Float.random(in: 0 ..< 1, using: &rng), Int64.random(in: 0 ..< Int64(offers / 2), using: &rng)) }
            var line = "top-k capacity \(capacity) (a reservoir from \(QUIVER_TOPK_RESERVOIR_MIN)):"
            for dedupe in [false, true] {
                var topk = TopK(capacity: capacity, dedupe: dedupe)
                let seconds = time(repeats: 3) {
                    topk.reset()
                    for (distance, id) in stream { topk.push(distance: distance, id: id) }
                }
                line += String(format: " %@ %.1f ns per offer", dedupe ? "dedupe" : "plain", seconds / Double(offers) * 1e9)
            }
            // Worst case: every offer enters (descending distances), each a full sift.
            for dedupe in [false, true] {
                var topk = TopK(capacity: capacity, dedupe: dedupe)
                let seconds = time(repeats: 3) {
                    topk.reset()
                    for i in 0 ..< offers { topk.push(distance: Float(offers - i), id: Int64(i % (offers / 2))) }
                }
                line += String(format: " | every offer enters: %@ %.1f ns", dedupe ? "dedupe" : "plain", seconds / Double(offers) * 1e9)
            }
            emit(line)
        }
        // Heap against reservoir, as a scan offers: a random stream where the candidates that
        // pass the threshold enter (ids repeat, as with SOAR's second copies; dedupe on).
        for capacity in [16, 32, 64, 100, 160, 400, 1000] {
            let stream = (0 ..< offers).map { _ in (Float.random(in: 0 ..< 1, using: &rng), Int64.random(in: 0 ..< Int64(offers / 2), using: &rng)) }
            var line = "top-k \(capacity), dedupe:"
            for room in [capacity, 2 * capacity] {
                let distances = UnsafeMutablePointer<Float>.allocate(capacity: room)
                let ids = UnsafeMutablePointer<Int64>.allocate(capacity: room)
                let index = UnsafeMutablePointer<Int32>.allocate(capacity: quiver_topk_index_size(Int32(room)))
                let positions = UnsafeMutablePointer<Int32>.allocate(capacity: room)
                defer { distances.deallocate(); ids.deallocate(); index.deallocate(); positions.deallocate() }
                var topk = quiver_topk()
                quiver_topk_init(&topk, Int32(capacity), Int32(room), distances, ids, index, positions, nil)
                // Short streams (a query's few thousand codes) with a reset between them.
                let length = 8_000
                let seconds = time(repeats: 3) {
                    for start in stride(from: 0, to: offers, by: length) {
                        quiver_topk_clear(&topk)
                        for i in start ..< start + length { _ = quiver_topk_push(&topk, stream[i].0, stream[i].1) }
                        quiver_topk_sort(&topk)
                    }
                }
                line += String(format: " %@ %.0f ns per stream of %d", room == capacity ? "heap" : "reservoir",
                               seconds / Double(offers / length) * 1e9, length)
            }
            emit(line)
        }
    }

    static func encode(_ isas: [quiver_isa], _ rng: inout SeededGenerator) {
        let m = 192, dsub = 2, d = m * dsub, count = 2000
        let transposed = (0 ..< d * 16).map { _ in Float.random(in: -0.1 ... 0.1, using: &rng) }
        let residuals = (0 ..< count * d).map { _ in Float.random(in: -0.1 ... 0.1, using: &rng) }
        let direction = (0 ..< d).map { _ in Float.random(in: -0.05 ... 0.05, using: &rng) }
        var book = [Float](repeating: 0, count: quiver_pq4_book_size(m, dsub))
        quiver_pq4_encoding_book(transposed, m, dsub, &book)
        var codes = [UInt8](repeating: 0, count: m)
        var scratch = [Float](repeating: 0, count: quiver_pq4_encode_scratch_size(m, dsub))
        for isa in isas {
            for eta: Float in [1, 3.87] {
                let seconds = time(repeats: 3) {
                    residuals.withUnsafeBufferPointer { r in
                        for row in 0 ..< count {
                            quiver_pq4_encode_isa(isa, r.baseAddress! + row * d, eta > 1 ? direction : nil, eta, book, m, dsub,
                                                  Int32(AnisotropicQuantization.searchSteps), &codes, &scratch)
                        }
                    }
                }
                emit(String(format: "pq4 encode %@ m=%d eta=%.2f: %.2f µs per vector", name(isa), m, eta, seconds / Double(count) * 1e6))
            }
        }
    }

    static func rerank(_ isas: [quiver_isa], _ rng: inout SeededGenerator) {
        let d = 384, n = 200_000
        let base = (0 ..< n * d).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        var halves = [UInt16](repeating: 0, count: n * d)
        quiver_f32_to_f16(base, &halves, n * d)
        let query = (0 ..< d).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        let rows = (0 ..< 40_000).map { _ in Int64.random(in: 0 ..< Int64(n), using: &rng) }
        var out = [Float](repeating: 0, count: rows.count)
        for isa in isas {
            let f32 = time { quiver_rerank_isa(isa, query, base, 0, d, rows, rows.count, 1, &out) }
            let f16 = time { quiver_rerank_isa(isa, query, halves, 1, d, rows, rows.count, 1, &out) }
            emit(String(format: "rerank %@ d=%d, scattered rows: float32 %.1f ns, float16 %.1f ns per candidate", name(isa), d,
                        f32 / Double(rows.count) * 1e9, f16 / Double(rows.count) * 1e9))
        }
    }
}
