import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` over `0..<count` in chunks on up to `threads` threads; each thread pulls the next
/// chunk from a shared counter, so uneven work balances itself.
/// `body` receives a chunk range and the worker index (0..<threads) for per-thread scratch space.
public func parallelFor(count: Int, threads: Int, chunk: Int = 1,
                        _ body: (_ range: Range<Int>, _ worker: Int) -> Void) {
    guard count > 0 else { return }
    let chunk = max(1, chunk)
    let chunks = (count + chunk - 1) / chunk
    let workers = max(1, min(threads, chunks))
    if workers == 1 {
        var start = 0
        while start < count {
            body(start ..< min(count, start + chunk), 0)
            start += chunk
        }
        return
    }
    let next = Atomic<Int>(0)
    withoutActuallyEscaping(body) { body in
        // The chunks are disjoint by construction; callers write only to their own ranges or to
        // per-worker scratch, which is what makes sharing the closure across threads sound.
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let body = shared.value
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if index >= chunks { break }
                let start = index * chunk
                body(start ..< min(count, start + chunk), worker)
            }
        }
    }
}

/// The number of CPU cores this process may use.
public var availableCores: Int {
    #if canImport(Glibc)
    return max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    #else
    return 1
    #endif
}

/// Carries a value into a concurrent closure where the caller guarantees exclusive use per thread.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
