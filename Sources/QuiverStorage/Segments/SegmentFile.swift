#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuiverIndex

/// Reading and appending the records of one segment file.
///
/// Records are only ever appended, each synced before its rows are acknowledged, and a failed
/// append is cut off again before the next one. So a crash can damage only the record being
/// written, at the very end of the active segment, and those rows were never acknowledged.
/// Everything else is committed: a bad record below the manifest's committed length, in a
/// sealed segment, or followed by an intact record is damage. Replay skips it (resuming at the
/// next intact record) and reports it, so one bad record costs the rows it held — which the
/// coordinator repairs from a replica — rather than the whole collection.
enum SegmentFile {
    static func name(number: UInt64) -> String {
        let digits = String(number)
        return "segment-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".qseg"
    }

    /// The number in a segment file name, nil for other names.
    static func number(fromName name: String) -> UInt64? {
        guard name.hasPrefix("segment-"), name.hasSuffix(".qseg") else { return nil }
        return UInt64(name.dropFirst("segment-".count).dropLast(".qseg".count))
    }

    /// What replaying a segment found.
    struct Replayed {
        /// Bytes of intact records, where appends continue.
        var length: Int
        /// Bytes of a torn tail record that were cut off.
        var truncatedBytes: Int
        /// Committed records that failed their checks and were skipped.
        var damage: [SegmentDamage] = []
    }

    /// Hands every record's entry and offset to `body` in file order. A torn tail of the active
    /// segment is truncated away; damaged committed records are skipped and reported.
    static func replay(path: String, segment: CollectionManifest.Segment,
                       body: (SegmentEntry, _ offset: Int) throws(CollectionStoreError) -> Void) throws(CollectionStoreError) -> Replayed {
        let fd = open(path, (segment.sealed ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { throw .segmentMissing(path: path, committedBytes: segment.committedBytes) }
            throw FileSystem.failure(path, "opening the segment")
        }
        defer { close(fd) }
        let size = try FileSystem.size(of: path)
        guard size >= segment.committedBytes else {
            throw .segmentShorterThanCommitted(path: path, size: size, committedBytes: segment.committedBytes)
        }
        if segment.sealed && size > segment.committedBytes {
            throw .corruptRecord(path: path, offset: segment.committedBytes,
                                 reason: "\(size - segment.committedBytes) bytes follow the end recorded when the segment was sealed")
        }

        var headerBytes = [UInt8](repeating: 0, count: SegmentRecord.headerSize)
        var offset = 0
        var damage: [SegmentDamage] = []
        while offset < size {
            let problem: String
            let got = try FileSystem.read(fd, into: &headerBytes, at: offset, path: path)
            if got < SegmentRecord.headerSize {
                problem = "record header cut short: \(got) of \(SegmentRecord.headerSize) bytes"
            } else if let header = headerBytes.withUnsafeBytes({ SegmentRecord.decodeHeader($0) }) {
                if header.recordLength > size - offset {
                    problem = "record of \(header.recordLength) bytes runs past the end of the file (\(size - offset) bytes left)"
                } else {
                    var payload = [UInt8](repeating: 0, count: header.payloadLength)
                    _ = try FileSystem.read(fd, into: &payload, at: offset + SegmentRecord.headerSize, path: path)
                    let computed = payload.withUnsafeBytes { Kernels.crc32c($0) }
                    if computed == header.payloadCRC {
                        let entry = payload.withUnsafeBytes { SegmentRecord.decodePayload($0, header: header) }
                        try body(entry, offset)
                        offset += header.recordLength
                        continue
                    }
                    problem = "payload CRC-32C is \(computed), the header recorded \(header.payloadCRC)"
                }
            } else {
                problem = "record header is damaged (bad magic, checksum or shape)"
            }

            let intact = try findIntactHeader(fd: fd, path: path, from: offset + 1, size: size)
            if segment.sealed || offset < segment.committedBytes || intact != nil {
                // Committed bytes (or bytes an intact record follows) that fail their checks.
                let resume = intact ?? size
                damage.append(SegmentDamage(path: path, offset: offset, length: resume - offset, reason: problem))
                offset = resume
                continue
            }
            // A torn tail: the record being written when the process stopped, never acknowledged.
            if ftruncate(fd, off_t(offset)) != 0 || fsync(fd) != 0 {
                throw FileSystem.failure(path, "truncating the torn record at byte \(offset)")
            }
            return Replayed(length: offset, truncatedBytes: size - offset, damage: damage)
        }
        return Replayed(length: offset, truncatedBytes: 0, damage: damage)
    }

    /// The offset of the first record header with a valid checksum at or after `start`.
    private static func findIntactHeader(fd: Int32, path: String, from start: Int, size: Int) throws(CollectionStoreError) -> Int? {
        let chunk = 1 << 20
        let overlap = SegmentRecord.headerSize - 1
        var buffer = [UInt8](repeating: 0, count: chunk + overlap)
        var base = start
        while base + SegmentRecord.headerSize <= size {
            let got = try FileSystem.read(fd, into: &buffer, range: 0 ..< min(buffer.count, size - base), at: base, path: path)
            let found = buffer.withUnsafeBytes { raw -> Int? in
                let first = SegmentRecord.magic[0]
                var position = 0
                while position + SegmentRecord.headerSize <= got {
                    if raw[position] == first,
                       SegmentRecord.decodeHeader(UnsafeRawBufferPointer(rebasing: raw[position ..< position + SegmentRecord.headerSize])) != nil {
                        return position
                    }
                    position += 1
                }
                return nil
            }
            if let found { return base + found }
            base += chunk
        }
        return nil
    }
}

/// A committed stretch of a segment file that failed its checks and was skipped on replay.
public struct SegmentDamage: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let offset: Int
    public let length: Int
    public let reason: String

    public var description: String { "\(path): \(length) bytes at byte \(offset) skipped (\(reason))" }
}

/// The segment that receives appends. Each append is one write and one sync; a failed append
/// is cut off again so the file never holds a broken record before a good one.
final class SegmentAppender {
    let path: String
    let number: UInt64
    private(set) var length: Int
    private var fd: Int32
    private var unusable = false

    init(folder: String, number: UInt64, length: Int) throws(CollectionStoreError) {
        path = folder + "/" + SegmentFile.name(number: number)
        self.number = number
        self.length = length
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 { throw FileSystem.failure(path, "opening the segment for appending") }
    }

    deinit { closeFile() }

    func closeFile() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    func append(_ record: [UInt8]) throws(CollectionStoreError) {
        guard !unusable, fd >= 0 else { throw .unusableAfterFailedWrite(path: path) }
        let failed = record.withUnsafeBytes { FileSystem.write(fd, $0, at: length) } ?? (fdatasync(fd) != 0 ? errno : nil)
        if let failed {
            if ftruncate(fd, off_t(length)) != 0 || fsync(fd) != 0 { unusable = true }
            throw .ioFailed(path: path, operation: "appending \(record.count) bytes at byte \(length)",
                            reason: String(cString: strerror(failed)))
        }
        length += record.count
    }
}
