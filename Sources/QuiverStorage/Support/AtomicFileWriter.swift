#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A temporary sibling of the destination, renamed over it on `commit`; deleted if dropped
/// before that. Errors are reported through `failure`, so each file format keeps its own
/// typed error.
final class AtomicFileWriter<Failure: Error> {
    let path: String
    let temporaryPath: String
    private let failure: (_ reason: String) -> Failure
    private var fd: Int32
    private var committed = false

    init(path: String, failure: @escaping (_ reason: String) -> Failure) throws(Failure) {
        self.path = path
        self.failure = failure
        temporaryPath = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw failure(String(cString: strerror(errno))) }
    }

    func append(_ bytes: [UInt8]) throws(Failure) {
        let code = bytes.withUnsafeBytes { appendReportingErrno($0) }
        if code != 0 { throw failure(String(cString: strerror(code))) }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
        let code = appendReportingErrno(bytes)
        if code != 0 { throw failure(String(cString: strerror(code))) }
    }

    /// Overwrites bytes already appended, for fields only known once the rest is written.
    func overwrite(_ bytes: [UInt8], at offset: Int) throws(Failure) {
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw failure(String(cString: strerror(errno)))
            }
            done += written
        }
    }

    /// 0 on success, else errno.
    private func appendReportingErrno(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return 0
    }

    func commit() throws(Failure) {
        // fsync before rename so a crash cannot leave the new name pointing at missing data.
        if fsync(fd) != 0 || close(fd) != 0 {
            let reason = String(cString: strerror(errno))
            fd = -1
            throw failure(reason)
        }
        fd = -1
        if rename(temporaryPath, path) != 0 {
            throw failure(String(cString: strerror(errno)))
        }
        committed = true
        // The rename lives in the directory; until that is synced a crash can bring back the old file.
        let directory = open(Self.directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory < 0 { throw failure("written, but cannot open its directory to sync it: " + String(cString: strerror(errno))) }
        defer { close(directory) }
        if fsync(directory) != 0 {
            throw failure("written, but syncing its directory failed: " + String(cString: strerror(errno)))
        }
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporaryPath) }
    }
}
