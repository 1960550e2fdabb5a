#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuiverIndex

/// Saves and loads an `IVFIndex` as one file.
///
/// Layout (little-endian, no padding):
///
///     header         magic "QVRIDX" (6) · format version u16 · flags u64 (none defined; must be 0) · file length u64
///     sections       in this order, back to back:
///       model          ModelCodec bytes
///       list directory nlist × entry count i64
///       list rows      every list's row ids (i64), list after list
///       list codes     every list's code bytes (FastScan blocks or PQ8 rows), list after list
///       list vectors   every list's float32 vectors (flat encoding), list after list
///       external ids   one i64 per stored row
///       raw vectors    precision u64 (0 none, 1 float32, 2 float16) · dimension i64 · rows i64 · values
///     section table  per section: tag u32 · CRC-32C u32 · offset u64 · length u64
///     footer         table offset u64 · section count u32 · table CRC-32C u32 · file length u64 · "QVRIDXFT"
///
/// The table sits at the end so sections stream out in one pass with their checksums computed
/// on the way; the header's file length is patched in last, so a file cut anywhere reports how
/// much is missing. The footer repeats the length and must be the last 32 bytes, and the
/// sections must tile the file exactly, so any cut or flipped byte is caught before anything is
/// allocated from it or returned.
public enum IndexFile {
    public static let magic: [UInt8] = Array("QVRIDX".utf8)
    public static let formatVersion: UInt16 = 1
    static let footerMagic: [UInt8] = Array("QVRIDXFT".utf8)
    static let headerSize = 24
    static let tableEntrySize = 24
    static let footerSize = 32
    static let rawVectorPrefixSize = 24

    /// The data sections, in file order, with their tags ("MODL" etc. read as a little-endian u32).
    static let sections: [(section: IndexFileSection, tag: UInt32)] = [
        (.model, tag("MODL")), (.listDirectory, tag("LDIR")), (.listRows, tag("LROW")), (.listCodes, tag("LCOD")),
        (.listVectors, tag("LVEC")), (.externalIDs, tag("XIDS")), (.rawVectors, tag("RAWV")),
    ]

    private static func tag(_ name: String) -> UInt32 {
        name.utf8.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }

    // MARK: - Saving

    /// Writes `index` to `path` atomically: a temporary file in the same folder, synced, renamed
    /// over `path`, then the folder synced; a crash leaves either the old file or the new one.
    public static func save(_ index: IVFIndex, to path: String) throws(IndexFileError) {
        let file = try AtomicFileWriter(path: path) { IndexFileError.writeFailed(path: path, reason: $0) }
        let out = SectionWriter(file: file)
        out.write(array: header(fileLength: 0))

        out.section(tag: sections[0].tag) { out.write(array: ModelCodec.encode(index.model)) }
        out.section(tag: sections[1].tag) { out.write(array: index.lists.map { Int64($0.count) }) }
        out.section(tag: sections[2].tag) { for list in index.lists { out.write(array: list.rows.map(Int64.init)) } }
        out.section(tag: sections[3].tag) { for list in index.lists { out.write(array: list.codes) } }
        out.section(tag: sections[4].tag) { for list in index.lists { out.write(array: list.vectors) } }
        out.section(tag: sections[5].tag) { out.write(array: index.externalIDs) }
        out.section(tag: sections[6].tag) {
            let raw = index.rawVectors
            out.write(array: [UInt64(ModelCodec.code(of: raw.precision, in: ModelCodec.precisionCodes)),
                              UInt64(raw.dimension), UInt64(raw.count)])
            raw.withUnsafeBytes { out.write($0) }
        }
        let fileLength = try out.finish()
        try file.overwrite(header(fileLength: fileLength), at: 0)
        try file.commit()
    }

    private static func header(fileLength: Int) -> [UInt8] {
        var header = LittleEndianWriter(capacity: headerSize)
        header.append(magic)
        header.append(formatVersion)
        header.append(UInt64(0))
        header.append(UInt64(fileLength))
        return header.bytes
    }

    /// Streams sections through a staging buffer (list arrays are many and small), keeping each
    /// section's offset, length and checksum for the table. The first write error sticks and
    /// is thrown by `finish`, which keeps the array-access closures non-throwing.
    private final class SectionWriter {
        private let file: AtomicFileWriter<IndexFileError>
        private let staging = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        private var staged = 0
        private var offset = 0
        private var crc: UInt32 = 0
        private var failure: IndexFileError?
        private var table = LittleEndianWriter()
        private var sectionCount: UInt32 = 0

        init(file: AtomicFileWriter<IndexFileError>) { self.file = file }
        deinit { staging.deallocate() }

        func section(tag: UInt32, _ body: () -> Void) {
            let start = offset
            crc = 0
            body()
            table.append(tag)
            table.append(crc)
            table.append(UInt64(start))
            table.append(UInt64(offset - start))
            sectionCount += 1
        }

        func write<T: BitwiseCopyable>(array: [T]) {
            array.withUnsafeBytes { write($0) }
        }

        func write(_ bytes: UnsafeRawBufferPointer) {
            guard failure == nil, bytes.count > 0 else { return }
            crc = Kernels.crc32c(bytes, continuing: crc)
            offset += bytes.count
            if staged + bytes.count <= staging.count {
                UnsafeMutableRawBufferPointer(rebasing: staging[staged...]).copyMemory(from: bytes)
                staged += bytes.count
                return
            }
            flush()
            do throws(IndexFileError) {
                try file.append(bytes)
            } catch {
                failure = error
            }
        }

        private func flush() {
            guard failure == nil, staged > 0 else { return }
            do throws(IndexFileError) {
                try file.append(UnsafeRawBufferPointer(rebasing: staging[..<staged]))
            } catch {
                failure = error
            }
            staged = 0
        }

        /// Writes table and footer; returns the file's length.
        func finish() throws(IndexFileError) -> Int {
            let tableOffset = offset
            let tableBytes = table.bytes
            var footer = LittleEndianWriter(capacity: IndexFile.footerSize)
            footer.append(UInt64(tableOffset))
            footer.append(sectionCount)
            footer.append(tableBytes.withUnsafeBytes { Kernels.crc32c($0) })
            footer.append(UInt64(tableOffset + tableBytes.count + IndexFile.footerSize))
            footer.append(IndexFile.footerMagic)
            tableBytes.withUnsafeBytes { write($0) }
            footer.bytes.withUnsafeBytes { write($0) }
            flush()
            if let failure { throw failure }
            return offset
        }
    }

    // MARK: - Loading

    /// Reads and checks the whole file, then builds the index; nothing is returned from a file
    /// that fails any check. Every length is checked against the file size before memory is
    /// allocated for it, so a damaged length cannot make the reader allocate wildly.
    public static func load(path: String) throws(IndexFileError) -> IVFIndex {
        let file = try InputFile(path: path)
        let layout = try readLayout(file)

        let modelBytes: [UInt8] = try file.readSection(layout[.model]!)
        let model: IVFModel
        do {
            model = try ModelCodec.decode(modelBytes)
        } catch {
            throw .invalidModel(path: path, error)
        }
        let configuration = model.configuration
        let dimension = model.dimension

        let directory = layout[.listDirectory]!
        guard directory.length == model.nlist * 8 else {
            throw file.inconsistent(.listDirectory, expected: "\(model.nlist * 8) bytes (one i64 count for each of nlist=\(model.nlist) lists)",
                                    found: "\(directory.length) bytes")
        }
        let counts: [Int64] = try file.readSection(directory)
        let rowsSection = layout[.listRows]!
        var entries = 0
        for (list, count) in counts.enumerated() {
            // Bounding each count by the rows section keeps every size computed below from overflowing.
            guard count >= 0, Int(count) <= rowsSection.length / 8 - entries else {
                throw file.inconsistent(.listDirectory, expected: "list \(list) to hold 0...\(max(0, rowsSection.length / 8 - entries)) entries (the rest of the list rows section)",
                                        found: "\(count)")
            }
            entries += Int(count)
        }
        guard entries * 8 == rowsSection.length else {
            throw file.inconsistent(.listRows, expected: "\(entries * 8) bytes for the \(entries) entries in the list directory",
                                    found: "\(rowsSection.length) bytes")
        }
        let codeBytes = counts.map { codeBytesPerList(Int($0), configuration) }
        let vectorFloats = counts.map { configuration.encoding == .flat ? Int($0) * dimension : 0 }
        let codesSection = layout[.listCodes]!
        let vectorsSection = layout[.listVectors]!
        let expectedCodes = codeBytes.reduce(0, +)
        guard expectedCodes == codesSection.length else {
            throw file.inconsistent(.listCodes, expected: "\(expectedCodes) bytes of \(configuration.encoding.rawValue) codes for \(entries) entries",
                                    found: "\(codesSection.length) bytes")
        }
        let expectedVectorBytes = vectorFloats.reduce(0, +) * 4
        guard expectedVectorBytes == vectorsSection.length else {
            throw file.inconsistent(.listVectors, expected: "\(expectedVectorBytes) bytes of float32 vectors for \(entries) \(configuration.encoding.rawValue) entries",
                                    found: "\(vectorsSection.length) bytes")
        }

        let idsSection = layout[.externalIDs]!
        guard idsSection.length % 8 == 0 else {
            throw file.inconsistent(.externalIDs, expected: "a multiple of 8 bytes (i64 ids)", found: "\(idsSection.length) bytes")
        }
        let storedRows = idsSection.length / 8

        let rawSection = layout[.rawVectors]!
        guard rawSection.length >= rawVectorPrefixSize else {
            throw file.inconsistent(.rawVectors, expected: "at least \(rawVectorPrefixSize) bytes (precision, dimension, rows)",
                                    found: "\(rawSection.length) bytes")
        }
        var rawCRC: UInt32 = 0
        let rawPrefix: [UInt64] = try file.read(count: 3, at: rawSection.offset, section: .rawVectors, crc: &rawCRC)
        // The prefix is read before its checksum can be, so a damaged prefix is reported as damage.
        func rawInconsistent(expected: String, found: String) throws(IndexFileError) -> IndexFileError {
            try file.verifyStreaming(rawSection)
            return file.inconsistent(.rawVectors, expected: expected, found: found)
        }
        guard let precision = ModelCodec.precisionCodes.first(where: { UInt64($0.1) == rawPrefix[0] })?.0 else {
            throw try rawInconsistent(expected: "precision 0 (none), 1 (float32) or 2 (float16)", found: "\(rawPrefix[0])")
        }
        guard rawPrefix[1] == UInt64(dimension) else {
            throw try rawInconsistent(expected: "dimension \(dimension) (the model's)", found: "\(rawPrefix[1])")
        }
        let rawRows = precision == .none ? 0 : storedRows
        guard rawPrefix[2] == UInt64(rawRows) else {
            throw try rawInconsistent(expected: "\(rawRows) rows (\(precision == .none ? "none are kept" : "one per external id"))",
                                      found: "\(rawPrefix[2])")
        }
        let rawValues = rawRows * dimension
        guard rawSection.length == rawVectorPrefixSize + rawValues * precision.bytesPerComponent else {
            throw try rawInconsistent(expected: "\(rawVectorPrefixSize + rawValues * precision.bytesPerComponent) bytes for \(rawRows)×\(dimension) \(precision.rawValue) values",
                                      found: "\(rawSection.length) bytes")
        }

        // The structure adds up; now the bulk data, each section checked against its checksum.
        let externalIDs: [Int64] = try file.readSection(idsSection)
        let rawOffset = rawSection.offset + rawVectorPrefixSize
        let rawVectors: RawVectorStore
        switch precision {
        case .none:
            rawVectors = RawVectorStore(precision: .none, dimension: dimension)
        case .float32:
            let floats: [Float] = try file.read(count: rawValues, at: rawOffset, section: .rawVectors, crc: &rawCRC)
            rawVectors = RawVectorStore(precision: .float32, dimension: dimension, floats: floats)
        case .float16:
            let halves: [UInt16] = try file.read(count: rawValues, at: rawOffset, section: .rawVectors, crc: &rawCRC)
            rawVectors = RawVectorStore(precision: .float16, dimension: dimension, halves: halves)
        }
        try file.verify(rawSection, computed: rawCRC)

        let rows: [[Int64]] = try file.readPerList(rowsSection, counts: counts.map { Int($0) })
        for (list, listRows) in rows.enumerated() {
            if let bad = listRows.firstIndex(where: { $0 < 0 || $0 >= storedRows }) {
                throw file.inconsistent(.listRows, expected: "row ids in 0..<\(storedRows) (the stored vectors)",
                                        found: "\(listRows[bad]) at entry \(bad) of list \(list)")
            }
        }
        let codes: [[UInt8]] = try file.readPerList(codesSection, counts: codeBytes)
        let vectors: [[Float]] = try file.readPerList(vectorsSection, counts: vectorFloats)
        guard storedRows <= IVFIndex.maxRows else {
            throw file.inconsistent(.externalIDs, expected: "at most \(IVFIndex.maxRows) rows (one index's limit)", found: "\(storedRows)")
        }
        // Rows are checked above to lie below storedRows, so they fit the lists' 32-bit rows.
        let lists = (0 ..< model.nlist).map { list in
            InvertedList(count: Int(counts[list]), rows: rows[list].map { UInt32(truncatingIfNeeded: $0) },
                         codes: codes[list], vectors: vectors[list])
        }
        return IVFIndex(model: model, lists: lists, externalIDs: externalIDs, rawVectors: rawVectors)
    }

    /// FastScan lists hold whole 32-entry blocks of `paddedSubspaces × 16` bytes; PQ8 one byte
    /// per subspace and entry; flat lists keep vectors instead of codes.
    private static func codeBytesPerList(_ count: Int, _ configuration: IVFConfiguration) -> Int {
        switch configuration.encoding {
        case .fastScan: (count + 31) / 32 * configuration.paddedSubspaces * 16
        case .pq8: count * configuration.subspaces
        case .flat: 0
        }
    }

    struct SectionEntry {
        let section: IndexFileSection
        let offset: Int
        let length: Int
        let crc: UInt32
    }

    /// Checks header, footer and section table, and that the sections tile the file exactly.
    private static func readLayout(_ file: InputFile) throws(IndexFileError) -> [IndexFileSection: SectionEntry] {
        let size = file.size
        guard size > 0 else { throw .empty(path: file.path) }
        let header: [UInt8] = try file.read(count: min(size, headerSize), at: 0, section: .header)
        let foundMagic = Array(header.prefix(magic.count))
        guard foundMagic == magic else {
            if foundMagic.count < magic.count, magic.starts(with: foundMagic) {
                throw .truncated(path: file.path, expectedBytes: headerSize + footerSize, actualBytes: size)
            }
            throw .badMagic(path: file.path, found: foundMagic)
        }
        guard size >= headerSize else {
            throw .truncated(path: file.path, expectedBytes: headerSize + footerSize, actualBytes: size)
        }
        let fields = header.withUnsafeBytes { raw in
            (version: raw.loadUnaligned(fromByteOffset: 6, as: UInt16.self),
             flags: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
             fileLength: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        }
        guard fields.version == formatVersion else {
            throw .unsupportedVersion(path: file.path, found: fields.version, supported: formatVersion)
        }
        guard fields.flags == 0 else { throw .unsupportedFlags(path: file.path, flags: fields.flags) }
        guard fields.fileLength <= UInt64(size) else {
            throw .truncated(path: file.path, expectedBytes: Int(clamping: fields.fileLength), actualBytes: size)
        }
        guard fields.fileLength == UInt64(size), size >= headerSize + footerSize else {
            throw file.inconsistent(.header, expected: "a file of at least \(headerSize + footerSize) bytes ending where the header says (\(fields.fileLength))",
                                    found: "\(size) bytes")
        }

        let footerBytes: [UInt8] = try file.read(count: footerSize, at: size - footerSize, section: .footer)
        let footer = footerBytes.withUnsafeBytes { raw in
            (tableOffset: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
             sectionCount: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self),
             tableCRC: raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self),
             fileLength: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        }
        guard Array(footerBytes[24...]) == footerMagic else {
            throw file.inconsistent(.footer, expected: "the file to end with \"QVRIDXFT\"",
                                    found: "\(hex(Array(footerBytes[24...]))); the file was cut short or overwritten at the end")
        }
        guard footer.fileLength == UInt64(size) else {
            throw file.inconsistent(.footer, expected: "file length \(size) (as the header records)", found: "\(footer.fileLength)")
        }
        let tableLength = Int(footer.sectionCount) * tableEntrySize
        guard footer.sectionCount == UInt32(sections.count),
              footer.tableOffset == UInt64(size - footerSize - tableLength) else {
            throw file.inconsistent(.footer, expected: "\(sections.count) sections with their table ending at the footer",
                                    found: "\(footer.sectionCount) sections, table at offset \(footer.tableOffset)")
        }
        let tableOffset = Int(footer.tableOffset)
        let tableBytes: [UInt8] = try file.read(count: tableLength, at: tableOffset, section: .sectionTable)
        let tableCRC = tableBytes.withUnsafeBytes { Kernels.crc32c($0) }
        guard tableCRC == footer.tableCRC else {
            throw .checksumMismatch(path: file.path, section: .sectionTable, stored: footer.tableCRC, computed: tableCRC)
        }

        var layout: [IndexFileSection: SectionEntry] = [:]
        var expectedOffset = headerSize
        for (position, expected) in sections.enumerated() {
            let entry = tableBytes.withUnsafeBytes { raw in
                let base = position * tableEntrySize
                return (tag: raw.loadUnaligned(fromByteOffset: base, as: UInt32.self),
                        crc: raw.loadUnaligned(fromByteOffset: base + 4, as: UInt32.self),
                        offset: raw.loadUnaligned(fromByteOffset: base + 8, as: UInt64.self),
                        length: raw.loadUnaligned(fromByteOffset: base + 16, as: UInt64.self))
            }
            guard entry.tag == expected.tag else {
                throw file.inconsistent(.sectionTable, expected: "section \(position) to be the \(expected.section.rawValue) (tag \(hex32(expected.tag)))",
                                        found: "tag \(hex32(entry.tag))")
            }
            guard entry.offset == UInt64(expectedOffset), entry.length <= UInt64(tableOffset - expectedOffset) else {
                throw file.inconsistent(expected.section, expected: "to start at offset \(expectedOffset) and fit in the \(tableOffset - expectedOffset) bytes before the section table",
                                        found: "offset \(entry.offset), length \(entry.length)")
            }
            layout[expected.section] = SectionEntry(section: expected.section, offset: expectedOffset, length: Int(entry.length), crc: entry.crc)
            expectedOffset += Int(entry.length)
        }
        guard expectedOffset == tableOffset else {
            throw file.inconsistent(.sectionTable, expected: "sections to end at the table (offset \(tableOffset))",
                                    found: "they end at offset \(expectedOffset)")
        }
        return layout
    }

    /// An open file read with `pread` straight into the arrays that will hold the data: no
    /// second copy in memory, and no SIGBUS if the file shrinks underneath, unlike a mapping.
    private final class InputFile {
        let path: String
        let size: Int
        private let fd: Int32

        init(path: String) throws(IndexFileError) {
            self.path = path
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw .cannotOpen(path: path, reason: reason)
            }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                close(fd)
                throw .cannotOpen(path: path, reason: "not a regular file")
            }
            size = Int(info.st_size)
        }

        deinit { close(fd) }

        func inconsistent(_ section: IndexFileSection, expected: String, found: String) -> IndexFileError {
            .inconsistent(path: path, section: section, expected: expected, found: found)
        }

        /// `count` elements at `offset`, continuing `crc` over their bytes.
        func read<T: BitwiseCopyable>(count: Int, at offset: Int, section: IndexFileSection,
                                      crc: inout UInt32) throws(IndexFileError) -> [T] {
            var failure: IndexFileError?
            var checksum = crc
            let values = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                let bytes = UnsafeMutableRawBufferPointer(buffer)
                do throws(IndexFileError) {
                    try fill(bytes, at: offset, section: section)
                    checksum = Kernels.crc32c(UnsafeRawBufferPointer(bytes), continuing: checksum)
                    initialized = count
                } catch {
                    failure = error
                    initialized = 0
                }
            }
            if let failure { throw failure }
            crc = checksum
            return values
        }

        func read<T: BitwiseCopyable>(count: Int, at offset: Int, section: IndexFileSection) throws(IndexFileError) -> [T] {
            var ignored: UInt32 = 0
            return try read(count: count, at: offset, section: section, crc: &ignored)
        }

        /// A whole section as one array, checksum verified.
        func readSection<T: BitwiseCopyable>(_ entry: SectionEntry) throws(IndexFileError) -> [T] {
            var crc: UInt32 = 0
            let values: [T] = try read(count: entry.length / MemoryLayout<T>.stride, at: entry.offset,
                                       section: entry.section, crc: &crc)
            try verify(entry, computed: crc)
            return values
        }

        /// A section holding one run of `counts[i]` elements per list, checksum verified.
        func readPerList<T: BitwiseCopyable>(_ entry: SectionEntry, counts: [Int]) throws(IndexFileError) -> [[T]] {
            var crc: UInt32 = 0
            var offset = entry.offset
            var lists: [[T]] = []
            lists.reserveCapacity(counts.count)
            for count in counts {
                lists.append(try read(count: count, at: offset, section: entry.section, crc: &crc))
                offset += count * MemoryLayout<T>.stride
            }
            try verify(entry, computed: crc)
            return lists
        }

        /// Checks a section's checksum in bounded chunks, without keeping its contents.
        func verifyStreaming(_ entry: SectionEntry) throws(IndexFileError) {
            var crc: UInt32 = 0
            var offset = entry.offset
            let end = entry.offset + entry.length
            while offset < end {
                let chunk: [UInt8] = try read(count: min(1 << 20, end - offset), at: offset, section: entry.section, crc: &crc)
                offset += chunk.count
            }
            try verify(entry, computed: crc)
        }

        func verify(_ entry: SectionEntry, computed: UInt32) throws(IndexFileError) {
            guard computed == entry.crc else {
                throw .checksumMismatch(path: path, section: entry.section, stored: entry.crc, computed: computed)
            }
        }

        private func fill(_ buffer: UnsafeMutableRawBufferPointer, at offset: Int, section: IndexFileSection) throws(IndexFileError) {
            var done = 0
            while done < buffer.count {
                let got = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
                if got < 0 {
                    if errno == EINTR { continue }
                    throw .readFailed(path: path, reason: String(cString: strerror(errno)))
                }
                // The size was checked up front, so running out means the file shrank meanwhile.
                if got == 0 {
                    throw .readFailed(path: path, reason: "the file shrank to \(offset + done) bytes while reading the \(section.rawValue)")
                }
                done += got
            }
        }
    }
}
