#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if _endian(big)
#error("Dataset files are little-endian and are read without byte swapping")
#endif

/// A whole file mapped read-only, so datasets larger than RAM are paged in on demand and
/// dropped again by the kernel under memory pressure instead of being copied into the heap.
///
/// The mapping is never written and lives until the last reference goes away, which is what
/// makes sharing it between threads safe. Truncating the file while it is mapped makes later
/// reads fault (SIGBUS); that is inherent to mmap.
final class MappedFile: @unchecked Sendable {
    let path: String
    let size: Int
    /// nil for an empty file: mmap rejects zero-length mappings.
    private let base: UnsafeRawPointer?

    init(path: String) throws(DatasetError) {
        self.path = path
        // Non-blocking, so that opening a FIFO returns at once instead of waiting for a writer;
        // anything but a regular file is then refused before a byte is read.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd < 0 {
            let code = errno
            if code == ENOENT { throw .fileNotFound(path: path) }
            throw .cannotOpen(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }

        var info = stat()
        if fstat(fd, &info) != 0 {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: throw .cannotOpen(path: path, reason: "is a directory")
        default: throw .cannotOpen(path: path, reason: "is not a regular file")
        }
        size = Int(info.st_size)
        if size == 0 {
            base = nil
            return
        }
        let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        if mapped == MAP_FAILED || mapped == nil {
            throw .cannotOpen(path: path, reason: "mmap failed: " + String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(mapped!)
    }

    deinit {
        if let base {
            munmap(UnsafeMutableRawPointer(mutating: base), size)
        }
    }

    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: size)
    }

    /// Doubles the kernel's read-ahead for the streaming pass over a big file; only a hint.
    func adviseSequential() {
        if let base {
            _ = madvise(UnsafeMutableRawPointer(mutating: base), size, MADV_SEQUENTIAL)
        }
    }

    /// Reads a little-endian Int32 at `offset`; the caller has checked bounds.
    @inline(__always)
    func int32(at offset: Int) -> Int32 {
        base.unsafelyUnwrapped.loadUnaligned(fromByteOffset: offset, as: Int32.self)
    }
}
