import Dispatch

/// Runs CPU-heavy work (training, assignment of large batches, coarse probing) on a GCD thread.
/// The index kernels block their calling thread while they fan out with `concurrentPerform`;
/// doing that on Swift's cooperative pool (one thread per core) would stall every RPC.
func offload<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(with: Result { try work() })
        }
    }
}

/// Runs blocking I/O (opening, sampling, reading server-side datasets; etcd calls) on a GCD
/// thread, so that a slow disk, a huge file set or a slow etcd never stalls the coordinator's
/// actor or the cooperative pool.
func readingFiles<Value: Sendable>(_ work: @escaping @Sendable () throws(CoordinatorError) -> Value) async throws(CoordinatorError) -> Value {
    let outcome: Result<Value, CoordinatorError> = await withCheckedContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(returning: Result { () throws(CoordinatorError) in try work() })
        }
    }
    return try outcome.get()
}

/// Milliseconds since the Unix epoch, the unit every timestamp on the wire uses.
func unixMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
