import CQuiverKernels
import Testing

@Suite struct CRC32C {
    private func crc(_ isa: quiver_isa, _ bytes: [UInt8], from crc: UInt32 = 0) -> UInt32 {
        quiver_crc32c_isa(isa, crc, bytes, bytes.count)
    }

    @Test(arguments: [QUIVER_ISA_SCALAR, simdISA])
    func knownAnswers(isa: quiver_isa) {
        #expect(crc(isa, Array("123456789".utf8)) == 0xE306_9283)
        #expect(crc(isa, []) == 0)
        // RFC 3720 (iSCSI) test vectors.
        #expect(crc(isa, [UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(crc(isa, [UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(crc(isa, (0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(quiver_crc32c(0, "123456789", 9) == 0xE306_9283)
    }

    @Test func incrementalEqualsOneShotAndPathsAgree() {
        var rng = TestRandom(seed: 30)
        let data = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let whole = crc(QUIVER_ISA_SCALAR, data)
        for isa in [QUIVER_ISA_SCALAR, simdISA] {
            #expect(crc(isa, data) == whole)
            for _ in 0..<50 {
                var cuts = (0..<3).map { _ in Int.random(in: 0...data.count, using: &rng) }.sorted()
                cuts = [0] + cuts + [data.count]
                var running: UInt32 = 0
                for (start, end) in zip(cuts, cuts.dropFirst()) {
                    running = crc(isa, Array(data[start..<end]), from: running)
                }
                #expect(running == whole, "isa=\(isa) cuts=\(cuts)")
            }
        }
        // Every length and misalignment around the 8-byte stride.
        for start in 0..<9 {
            for length in 0..<40 {
                let slice = Array(data[start..<start + length])
                #expect(crc(simdISA, slice) == crc(QUIVER_ISA_SCALAR, slice))
            }
        }
    }
}
