#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Contiguous bytes that grow in place where the allocator can, for stores that only ever append
/// (raw vectors: gigabytes on a large worker). `realloc` of a block this large remaps its pages
/// (glibc takes blocks of 32 MiB and more from mmap and grows them with mremap) instead of copying
/// them, so an append touches only the new bytes; a Swift array doubling a 600 MB buffer copied
/// all of it and faulted in twice its pages (a fifth of a worker's CPU during a pkgdesc load).
/// Copy on write: `GrowableBytes` is a value; the storage is shared until one copy changes.
struct GrowableBytes: @unchecked Sendable, Equatable {
    private final class Storage {
        var base: UnsafeMutableRawPointer?
        var count = 0
        var capacity = 0

        init(capacity: Int) {
            if capacity > 0 {
                base = malloc(capacity)
                guard base != nil else { fatalError("cannot allocate \(capacity) bytes") }
                self.capacity = capacity
            }
        }

        deinit { free(base) }

        func reserve(_ needed: Int) {
            guard needed > capacity else { return }
            let grown = max(needed, capacity + capacity / 2, 4096)
            guard let moved = realloc(base, grown) else { fatalError("cannot grow a buffer to \(grown) bytes") }
            base = moved
            capacity = grown
        }
    }

    private var storage: Storage

    init() { storage = Storage(capacity: 0) }

    init(_ bytes: UnsafeRawBufferPointer) {
        storage = Storage(capacity: bytes.count)
        if bytes.count > 0 { storage.base!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        storage.count = bytes.count
    }

    var count: Int { storage.count }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.base, count: storage.count))
    }

    /// Grows by `byteCount` bytes (uninitialised) and lets `body` write them.
    mutating func append(byteCount: Int, _ body: (UnsafeMutableRawPointer) -> Void) {
        guard byteCount > 0 else { return }
        makeUnique(reserving: storage.count + byteCount)
        body(storage.base! + storage.count)
        storage.count += byteCount
    }

    /// Lets `body` change the bytes already held.
    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        makeUnique(reserving: storage.count)
        return try body(UnsafeMutableRawBufferPointer(start: storage.base, count: storage.count))
    }

    private mutating func makeUnique(reserving needed: Int) {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = Storage(capacity: max(needed, storage.count))
            if storage.count > 0 { copy.base!.copyMemory(from: storage.base!, byteCount: storage.count) }
            copy.count = storage.count
            storage = copy
        }
        storage.reserve(needed)
    }

    static func == (lhs: GrowableBytes, rhs: GrowableBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        guard lhs.storage !== rhs.storage, lhs.count > 0 else { return true }
        return memcmp(lhs.storage.base!, rhs.storage.base!, lhs.count) == 0
    }
}
