#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few POSIX calls the collection store needs, each failing with the path and the step.
enum FileSystem {
    static func errorText() -> String { String(cString: strerror(errno)) }

    static func failure(_ path: String, _ operation: String) -> CollectionStoreError {
        .ioFailed(path: path, operation: operation, reason: errorText())
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates `path` and any missing parents.
    static func makeDirectories(_ path: String) throws(CollectionStoreError) {
        if isDirectory(path) { return }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]))
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw failure(path, "creating the folder") }
    }

    /// Makes creations, renames and removals inside `path` durable.
    static func syncDirectory(_ path: String) throws(CollectionStoreError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw failure(path, "opening the folder to sync it") }
        defer { close(fd) }
        if fsync(fd) != 0 { throw failure(path, "syncing the folder") }
    }

    /// Entry names in `path`, without "." and "..".
    static func entries(of path: String) throws(CollectionStoreError) -> [String] {
        guard let directory = opendir(path) else { throw failure(path, "listing the folder") }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func size(of path: String) throws(CollectionStoreError) -> Int {
        var info = stat()
        if stat(path, &info) != 0 { throw failure(path, "reading the file size") }
        return Int(info.st_size)
    }

    static func move(_ from: String, to: String) throws(CollectionStoreError) {
        if rename(from, to) != 0 { throw failure(from, "renaming to \(to)") }
    }

    static func remove(_ path: String) throws(CollectionStoreError) {
        if unlink(path) != 0 && errno != ENOENT { throw failure(path, "removing the file") }
    }

    /// Removes a collection folder: it holds only files, so one level suffices.
    /// Returns the bytes the files occupied.
    @discardableResult
    static func removeFolder(_ path: String) throws(CollectionStoreError) -> Int {
        var freed = 0
        for name in try entries(of: path) {
            let file = path + "/" + name
            freed += (try? size(of: file)) ?? 0
            try remove(file)
        }
        if rmdir(path) != 0 { throw failure(path, "removing the folder") }
        return freed
    }

    /// Writes `bytes` at `offset`, looping over short writes.
    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> Int32? {
        var done = 0
        while done < bytes.count {
            let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += written
        }
        return nil
    }

    /// Reads exactly `buffer.count` bytes at `offset`; returns the count read when the file ends first.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int,
                     path: String) throws(CollectionStoreError) -> Int {
        var done = 0
        while done < buffer.count {
            let got = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if got < 0 {
                if errno == EINTR { continue }
                throw failure(path, "reading at byte \(offset + done)")
            }
            if got == 0 { break }
            done += got
        }
        return done
    }

    /// Fills `bytes[range]` from `offset`; returns the count read when the file ends first.
    static func read(_ fd: Int32, into bytes: inout [UInt8], range: Range<Int>? = nil, at offset: Int,
                     path: String) throws(CollectionStoreError) -> Int {
        let range = range ?? 0 ..< bytes.count
        return try bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(CollectionStoreError) in
                try read(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[range]), at: offset, path: path)
            }
        }.get()
    }

    static func readFile(_ path: String) throws(CollectionStoreError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw FileSystem.failure(path, "opening") }
        defer { close(fd) }
        let size = try FileSystem.size(of: path)
        var bytes = [UInt8](repeating: 0, count: size)
        let got = try read(fd, into: &bytes, at: 0, path: path)
        guard got == size else { throw .ioFailed(path: path, operation: "reading", reason: "file shrank while being read") }
        return bytes
    }
}
