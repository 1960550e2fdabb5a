import Foundation
import QuiverIndex
import Testing

@testable import QuiverStorage

/// Small trained indexes covering every encoding, raw precision and the optional settings.
enum IndexFixtures {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let index: IVFIndex
        let queries: Matrix
        var description: String { name }
    }

    static func gaussian(rows: Int, dimension: Int, seed: UInt64) -> Matrix {
        var generator = SeededGenerator(seed: seed)
        let centers = (0 ..< 8 * dimension).map { _ in Float.random(in: -2 ... 2, using: &generator) }
        var values = [Float]()
        values.reserveCapacity(rows * dimension)
        for _ in 0 ..< rows {
            let center = Int.random(in: 0 ..< 8, using: &generator)
            for j in 0 ..< dimension { values.append(centers[center * dimension + j] + Float.random(in: -0.5 ... 0.5, using: &generator)) }
        }
        return Matrix(rows: rows, dimension: dimension, values: values)
    }

    static func make(_ name: String, dimension: Int = 16, _ configure: (inout IVFConfiguration) -> Void,
                     ids: (Int) -> Int64 = { Int64($0) }) -> Case {
        var configuration = IVFConfiguration(dimension: dimension, metric: .l2, nlist: 8, trainingIterations: 4, seed: 3)
        configure(&configuration)
        let data = gaussian(rows: 2000, dimension: dimension, seed: 11)
        var model = try! IVFModel.train(sample: data, configuration: configuration)
        model.version = 42
        var index = IVFIndex(model: model)
        // Two batches, so lists grow across adds like they do in service.
        let first = Matrix(rows: 1200, dimension: dimension, values: Array(data.values[..<(1200 * dimension)]))
        let second = Matrix(rows: 800, dimension: dimension, values: Array(data.values[(1200 * dimension)...]))
        try! index.add(first, ids: (0 ..< 1200).map(ids))
        try! index.add(second, ids: (1200 ..< 2000).map(ids))
        return Case(name: name, index: index, queries: gaussian(rows: 40, dimension: dimension, seed: 99))
    }

    static let all: [Case] = [
        make("fastScan, L2, spilling, float32") {
            $0.encoding = .fastScan
            $0.subspaces = 8
            $0.spillLambda = 1
            $0.rawVectors = .float32
        },
        make("pq8, inner product, anisotropic, float16", {
            $0.metric = .innerProduct
            $0.encoding = .pq8
            $0.subspaces = 4
            $0.anisotropicThreshold = 0.2
            $0.rawVectors = .float16
            $0.spherical = false
        }, ids: { Int64($0) * 7 + 1_000_000 }),
        make("flat, cosine, no raw vectors") {
            $0.metric = .cosine
            $0.encoding = .flat
            $0.subspaces = 1
            $0.rawVectors = .none
            $0.spherical = true
        },
        make("fastScan, odd subspaces, no raw vectors", dimension: 15) {
            $0.metric = .cosine
            $0.encoding = .fastScan
            $0.subspaces = 5
            $0.rawVectors = .none
        },
    ]

    static var spilling: Case { all[0] }
}

func expectSameIndex(_ loaded: IVFIndex, _ original: IVFIndex, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(loaded.model == original.model, sourceLocation: sourceLocation)
    #expect(loaded.lists == original.lists, sourceLocation: sourceLocation)
    #expect(loaded.externalIDs == original.externalIDs, sourceLocation: sourceLocation)
    #expect(loaded.rawVectors == original.rawVectors, sourceLocation: sourceLocation)
}

/// Runs `body`, expecting an IndexFileError about `path`.
func indexFileError(path: String, sourceLocation: SourceLocation = #_sourceLocation,
                    _ body: () throws -> Void) -> IndexFileError? {
    do {
        try body()
        Issue.record("expected an IndexFileError, nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as IndexFileError {
        #expect(error.path == path, sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix(path + ": "), sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected an IndexFileError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// The layout of a saved file as the tests see it: section ranges from the table at the end.
struct SavedLayout {
    struct Entry {
        let section: IndexFileSection
        let tagOffset: Int
        let range: Range<Int>
    }

    let entries: [Entry]
    let tableRange: Range<Int>
    let footerRange: Range<Int>

    init(_ bytes: [UInt8]) {
        let footerStart = bytes.count - IndexFile.footerSize
        let tableOffset = Int(read(UInt64.self, bytes, footerStart))
        entries = IndexFile.sections.enumerated().map { position, known in
            let base = tableOffset + position * IndexFile.tableEntrySize
            let offset = Int(read(UInt64.self, bytes, base + 8))
            return Entry(section: known.section, tagOffset: base, range: offset ..< offset + Int(read(UInt64.self, bytes, base + 16)))
        }
        tableRange = tableOffset ..< footerStart
        footerRange = footerStart ..< bytes.count
    }

    func range(of section: IndexFileSection) -> Range<Int> { entries.first { $0.section == section }!.range }
}

func read<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
    bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
}

func store<T: FixedWidthInteger>(_ value: T, _ bytes: inout [UInt8], _ offset: Int) {
    withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset ..< offset + MemoryLayout<T>.size, with: $0) }
}

/// Recomputes every checksum, so a test can make a file that is consistent in its checksums
/// but wrong in its structure, and see the structural checks catch it.
func resealed(_ original: [UInt8]) -> [UInt8] {
    var bytes = original
    for entry in SavedLayout(bytes).entries {
        let crc = bytes[entry.range].withUnsafeBytes { Kernels.crc32c($0) }
        store(crc, &bytes, entry.tagOffset + 4)
    }
    return resealedTable(bytes)
}

/// Recomputes only the section table's checksum, for edits to the table itself.
func resealedTable(_ original: [UInt8]) -> [UInt8] {
    var bytes = original
    let layout = SavedLayout(bytes)
    let tableCRC = bytes[layout.tableRange].withUnsafeBytes { Kernels.crc32c($0) }
    store(tableCRC, &bytes, layout.footerRange.lowerBound + 12)
    return bytes
}

@Suite struct IndexFileRoundTripTests {
    @Test(arguments: IndexFixtures.all)
    func saveLoadIsIdentical(_ fixture: IndexFixtures.Case) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("index.qvr")
        try IndexFile.save(fixture.index, to: path)
        let loaded = try IndexFile.load(path: path)
        expectSameIndex(loaded, fixture.index)
        #expect(try dir.contents() == ["index.qvr"], "no temporary files are left behind")

        let parameters = SearchParameters(k: 10, nprobe: 3, reorderK: 30)
        let expected = try fixture.index.search(fixture.queries, parameters: parameters)
        let found = try loaded.search(fixture.queries, parameters: parameters)
        #expect(found.ids == expected.ids)
        #expect(found.distances == expected.distances)
    }

    @Test func emptyIndexRoundTrips() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("empty.qvr")
        let empty = IVFIndex(model: IndexFixtures.spilling.index.model)
        try IndexFile.save(empty, to: path)
        expectSameIndex(try IndexFile.load(path: path), empty)
    }

    @Test func savingReplacesAnExistingFile() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("index.qvr")
        try IndexFile.save(IndexFixtures.all[1].index, to: path)
        try IndexFile.save(IndexFixtures.all[2].index, to: path)
        expectSameIndex(try IndexFile.load(path: path), IndexFixtures.all[2].index)
        #expect(try dir.contents() == ["index.qvr"])
    }

    @Test func saveIntoMissingDirectoryFails() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("missing/index.qvr")
        let error = indexFileError(path: path) { try IndexFile.save(IndexFixtures.all[2].index, to: path) }
        guard case .writeFailed? = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test func missingFileCannotBeOpened() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("nope.qvr")
        let error = indexFileError(path: path) { _ = try IndexFile.load(path: path) }
        guard case .cannotOpen? = error else { Issue.record("\(String(describing: error))"); return }
        let directoryError = indexFileError(path: dir.path) { _ = try IndexFile.load(path: dir.path) }
        guard case .cannotOpen? = directoryError else { Issue.record("\(String(describing: directoryError))"); return }
    }
}

@Suite struct ModelCodecTests {
    @Test(arguments: IndexFixtures.all)
    func roundTrip(_ fixture: IndexFixtures.Case) throws {
        let model = fixture.index.model
        let bytes = ModelCodec.encode(model)
        let decoded = try ModelCodec.decode(bytes)
        #expect(decoded == model)
        #expect(decoded.configuration == model.configuration)
        #expect(decoded.version == 42)
        #expect(ModelCodec.encode(decoded) == bytes, "encoding is deterministic")
    }

    @Test func everyPrefixIsRejected() {
        let bytes = ModelCodec.encode(IndexFixtures.all[1].index.model)
        for length in 0 ..< bytes.count {
            #expect(throws: ModelCodecError.self) { try ModelCodec.decode(Array(bytes[..<length])) }
        }
        #expect(throws: ModelCodecError.lengthMismatch(declared: UInt64(bytes.count - 24), actual: bytes.count - 23)) {
            try ModelCodec.decode(bytes + [0])
        }
    }

    @Test func headerErrors() {
        let bytes = ModelCodec.encode(IndexFixtures.all[0].index.model)
        var wrongMagic = bytes
        wrongMagic[0] = UInt8(ascii: "X")
        #expect(throws: ModelCodecError.badMagic(found: Array("XVRMODEL".utf8))) { try ModelCodec.decode(wrongMagic) }
        #expect(throws: ModelCodecError.badMagic(found: [])) { try ModelCodec.decode([]) }

        var future = bytes
        store(UInt32(2), &future, 8)
        #expect(throws: ModelCodecError.unsupportedVersion(found: 2, supported: 1)) { try ModelCodec.decode(future) }
        #expect(ModelCodecError.unsupportedVersion(found: 2, supported: 1).description.contains("upgrade"))

        var flipped = bytes
        flipped[bytes.count / 2] ^= 0x10
        #expect {
            try ModelCodec.decode(flipped)
        } throws: { error in
            guard case .checksumMismatch? = error as? ModelCodecError else { return false }
            return true
        }
    }

    /// Payload edits with the checksum fixed up: the field checks must catch them by themselves.
    private func reencoded(_ bytes: [UInt8], _ edit: (inout [UInt8]) -> Void) -> [UInt8] {
        var payload = Array(bytes[ModelCodec.headerSize...])
        edit(&payload)
        var out = Array(bytes[..<ModelCodec.headerSize])
        store(payload.withUnsafeBytes { Kernels.crc32c($0) }, &out, 12)
        store(UInt64(payload.count), &out, 16)
        return out + payload
    }

    @Test func fieldErrors() {
        let fastScan = ModelCodec.encode(IndexFixtures.all[0].index.model)
        let flat = ModelCodec.encode(IndexFixtures.all[2].index.model)
        // Payload offsets: five 8-byte integers, then metric, encoding, raw precision, spherical.
        func expectError(_ bytes: [UInt8], _ matches: (ModelCodecError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try ModelCodec.decode(bytes)
                Issue.record("decoded without error", sourceLocation: sourceLocation)
            } catch {
                #expect(matches(error), "\(error)", sourceLocation: sourceLocation)
            }
        }
        expectError(reencoded(fastScan) { $0[40] = 9 }) { if case .unknownValue(field: "metric", value: 9, _) = $0 { true } else { false } }
        expectError(reencoded(fastScan) { $0[41] = 0 }) { if case .unknownValue(field: "encoding", _, _) = $0 { true } else { false } }
        expectError(reencoded(fastScan) { $0[43] = 3 }) { if case .unknownValue(field: "spherical", _, _) = $0 { true } else { false } }
        expectError(reencoded(fastScan) { store(Int64(0), &$0, 0) }) { if case .invalidConfiguration = $0 { true } else { false } }
        expectError(reencoded(fastScan) { store(Int64(7), &$0, 16) }) { if case .invalidConfiguration = $0 { true } else { false } }
        // nlist so large its centroids could never fit: rejected before any allocation.
        expectError(reencoded(fastScan) { store(Int64(1) << 40, &$0, 8) }) { if case .shapeMismatch(field: "centroids", _, _) = $0 { true } else { false } }
        expectError(reencoded(flat) { $0[41] = 3 }) { if case .shapeMismatch(field: "quantizer", _, _) = $0 { true } else { false } }
        expectError(reencoded(fastScan) { $0.append(0) }) { $0 == .trailingBytes(count: 1) }
        expectError(reencoded(fastScan) { payload in
            // The first centroid value follows the fields and the centroid shape.
            let firstCentroid = payload.count - 4 * (8 * 16 + 16 * 16) - 8 - 1 - 8 - 8 - 1
            store(Float.nan.bitPattern, &payload, firstCentroid)
        }) { if case .nonFinite(field: "centroids", index: 0, _) = $0 { true } else { false } }
        expectError(reencoded(fastScan) { store(Float.infinity.bitPattern, &$0, $0.count - 4) }) {
            if case .nonFinite(field: "codebooks", index: 255, _) = $0 { true } else { false }
        }
    }
}

@Suite struct IndexFileCorruptionTests {
    static func bytes(of index: IVFIndex) -> [UInt8] {
        let dir = try! TemporaryDirectory()
        let path = dir.file("index.qvr")
        try! IndexFile.save(index, to: path)
        return Array(FileManager.default.contents(atPath: path)!)
    }

    /// The spilling FastScan fixture saved once; most tests edit a copy of its bytes.
    static let saved = bytes(of: IndexFixtures.spilling.index)

    private func load(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws -> IndexFileError? {
        let dir = try TemporaryDirectory()
        let path = try dir.write("bad.qvr", bytes)
        return indexFileError(path: path, sourceLocation: sourceLocation) { _ = try IndexFile.load(path: path) }
    }

    @Test(arguments: IndexFixtures.all)
    func truncationAnywhereIsDetected(_ fixture: IndexFixtures.Case) throws {
        let bytes = Self.bytes(of: fixture.index)
        let layout = SavedLayout(bytes)
        var cuts: Set<Int> = [1, 5, 6, 7, 8, 15, 16, 23, 24, 25, bytes.count - 1]
        for entry in layout.entries {
            cuts.formUnion([entry.range.lowerBound, entry.range.lowerBound + 1, entry.range.upperBound - 1])
        }
        cuts.formUnion([layout.tableRange.lowerBound, layout.tableRange.upperBound - 1, layout.footerRange.lowerBound + 8])
        var generator = SeededGenerator(seed: 5)
        cuts.formUnion((0 ..< 40).map { _ in Int.random(in: 1 ..< bytes.count, using: &generator) })

        for cut in cuts.sorted() where cut > 0 && cut < bytes.count {
            let error = try load(Array(bytes[..<cut]))
            let expected = cut < IndexFile.headerSize ? IndexFile.headerSize + IndexFile.footerSize : bytes.count
            guard case .truncated(_, expected, cut)? = error else {
                Issue.record("cut at \(cut): \(String(describing: error))")
                continue
            }
        }
        let error = try load([])
        guard case .empty? = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test(arguments: IndexFixtures.all)
    func flippedByteInEachSectionIsDetected(_ fixture: IndexFixtures.Case) throws {
        let bytes = Self.bytes(of: fixture.index)
        let layout = SavedLayout(bytes)
        for entry in layout.entries where !entry.range.isEmpty {
            var damaged = bytes
            damaged[(entry.range.lowerBound + entry.range.upperBound) / 2] ^= 0x04
            let error = try load(damaged)
            guard case .checksumMismatch(_, entry.section, _, _)? = error else {
                Issue.record("\(entry.section): \(String(describing: error))")
                continue
            }
        }
        // Table bytes are covered by the footer's checksum.
        var table = bytes
        table[layout.tableRange.lowerBound + 30] ^= 0x01
        guard case .checksumMismatch(_, .sectionTable, _, _)? = try load(table) else { Issue.record("table flip"); return }
        // Every footer field is checked against the rest of the file.
        for offset in layout.footerRange {
            var damaged = bytes
            damaged[offset] ^= 0x80
            let error = try load(damaged)
            #expect(error?.section == .footer || error?.section == .sectionTable, "footer byte \(offset - layout.footerRange.lowerBound): \(String(describing: error))")
        }
        // And every header byte.
        for offset in 0 ..< IndexFile.headerSize {
            var damaged = bytes
            damaged[offset] ^= 0x80
            let error = try load(damaged)
            #expect(error?.section == .header, "header byte \(offset): \(String(describing: error))")
        }
    }

    @Test func headerErrors() throws {
        var wrongMagic = Self.saved
        wrongMagic.replaceSubrange(0 ..< 6, with: [0x93] + Array("NUMPY".utf8))
        guard case .badMagic(_, let found)? = try load(wrongMagic) else { Issue.record("wrong magic"); return }
        #expect(found == [0x93] + Array("NUMPY".utf8))

        guard case .badMagic? = try load(Array("hello".utf8)) else { Issue.record("short text file"); return }
        guard case .truncated? = try load(Array("QVR".utf8)) else { Issue.record("cut inside the magic"); return }

        var future = Self.saved
        store(UInt16(2), &future, 6)
        let error = try load(future)
        guard case .unsupportedVersion(_, 2, 1)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(error!.description.contains("upgrade Quiver"))

        var flags = Self.saved
        store(UInt64(1) << 3, &flags, 8)
        guard case .unsupportedFlags(_, 8)? = try load(flags) else { Issue.record("flags"); return }

        var trailing = Self.saved
        trailing.append(0)
        guard case .inconsistent(_, .header, _, _)? = try load(trailing) else { Issue.record("trailing byte"); return }
    }

    @Test func hugeDeclaredLengthsAreRejectedBeforeAllocating() throws {
        let layout = SavedLayout(Self.saved)
        // A huge section length in an otherwise well-sealed table.
        for entry in layout.entries {
            var huge = Self.saved
            store(UInt64(1) << 62, &huge, entry.tagOffset + 16)
            let error = try load(resealedTable(huge))
            guard case .inconsistent(_, entry.section, _, _)? = error else {
                Issue.record("\(entry.section): \(String(describing: error))")
                continue
            }
        }
        // Header and footer claiming an enormous file.
        var header = Self.saved
        store(UInt64.max, &header, 16)
        guard case .truncated(_, Int.max, _)? = try load(header) else { Issue.record("header length"); return }
        var footerCount = Self.saved
        store(UInt32.max, &footerCount, layout.footerRange.lowerBound + 8)
        guard case .inconsistent(_, .footer, _, _)? = try load(footerCount) else { Issue.record("footer count"); return }
        // A list count far beyond what the rows section holds.
        var count = Self.saved
        store(Int64(1) << 60, &count, layout.range(of: .listDirectory).lowerBound)
        guard case .inconsistent(_, .listDirectory, _, _)? = try load(resealed(count)) else { Issue.record("list count"); return }
        // A negative count.
        var negative = Self.saved
        store(Int64(-1), &negative, layout.range(of: .listDirectory).lowerBound)
        guard case .inconsistent(_, .listDirectory, _, _)? = try load(resealed(negative)) else { Issue.record("negative count"); return }
    }

    @Test func structuralChecksCatchWellSealedNonsense() throws {
        let layout = SavedLayout(Self.saved)
        let storedRows = IndexFixtures.spilling.index.count

        var badRow = Self.saved
        store(Int64(storedRows), &badRow, layout.range(of: .listRows).lowerBound)
        let rowError = try load(resealed(badRow))
        guard case .inconsistent(_, .listRows, _, let found)? = rowError else { Issue.record("\(String(describing: rowError))"); return }
        #expect(found.contains("\(storedRows) at entry 0 of list 0"))

        // Moving entries between lists keeps the row total; pick a move that changes how many
        // FastScan blocks the lists need, which the codes section's length must then contradict.
        let directory = layout.range(of: .listDirectory).lowerBound
        let counts = (0 ..< 8).map { Int(read(Int64.self, Self.saved, directory + 8 * $0)) }
        func blocks(_ counts: [Int]) -> Int { counts.reduce(0) { $0 + ($1 + 31) / 32 } }
        let moves = (0 ..< 8).flatMap { from in (0 ..< 8).flatMap { to in (1 ... 32).map { (from, to, $0) } } }
        let (from, to, moved) = try #require(moves.first { from, to, moved in
            guard from != to, counts[from] >= moved else { return false }
            var edited = counts
            edited[from] -= moved
            edited[to] += moved
            return blocks(edited) != blocks(counts)
        })
        var shifted = Self.saved
        store(Int64(counts[from] - moved), &shifted, directory + 8 * from)
        store(Int64(counts[to] + moved), &shifted, directory + 8 * to)
        guard case .inconsistent(_, .listCodes, _, _)? = try load(resealed(shifted)) else { Issue.record("shifted counts"); return }

        let raw = layout.range(of: .rawVectors).lowerBound
        var precision = Self.saved
        store(UInt64(7), &precision, raw)
        guard case .inconsistent(_, .rawVectors, _, "7")? = try load(resealed(precision)) else { Issue.record("precision"); return }
        var dimension = Self.saved
        store(UInt64(15), &dimension, raw + 8)
        guard case .inconsistent(_, .rawVectors, _, "15")? = try load(resealed(dimension)) else { Issue.record("raw dimension"); return }
        var rows = Self.saved
        store(UInt64(storedRows - 1), &rows, raw + 16)
        guard case .inconsistent(_, .rawVectors, _, _)? = try load(resealed(rows)) else { Issue.record("raw rows"); return }
        var unsealedPrecision = Self.saved
        store(UInt64(7), &unsealedPrecision, raw)
        guard case .checksumMismatch(_, .rawVectors, _, _)? = try load(unsealedPrecision) else { Issue.record("raw prefix damage"); return }

        var tag = Self.saved
        tag[layout.entries[2].tagOffset] ^= 0x20
        guard case .inconsistent(_, .sectionTable, _, _)? = try load(resealedTable(tag)) else { Issue.record("tag"); return }

        var model = Self.saved
        model[layout.range(of: .model).lowerBound] = UInt8(ascii: "X")
        guard case .invalidModel(_, .badMagic)? = try load(resealed(model)) else { Issue.record("model magic"); return }
    }
}
