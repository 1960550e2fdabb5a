import Synchronization

/// Orders a collection's writes against its repairs: any number of writes (loads, deletes) pass
/// together, a repair waits for them to finish and holds new ones back while it copies lists,
/// so no write can land between a list's copy being taken and being installed. Waiting repairs
/// go before new writes, so a steady load cannot starve them.
final class WriteGate: Sendable {
    private struct State {
        var writers = 0
        var exclusive = false
        var waitingExclusive: [CheckedContinuation<Void, Never>] = []
        var waitingShared: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func shared<Result, Failure: Error>(isolation: isolated (any Actor)? = #isolation,
                                        _ body: () async throws(Failure) -> Result) async throws(Failure) -> Result {
        await withCheckedContinuation { continuation in
            let granted = state.withLock { state -> Bool in
                if !state.exclusive && state.waitingExclusive.isEmpty {
                    state.writers += 1
                    return true
                }
                state.waitingShared.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
        defer { releaseShared() }
        return try await body()
    }

    func exclusive<Result, Failure: Error>(isolation: isolated (any Actor)? = #isolation,
                                           _ body: () async throws(Failure) -> Result) async throws(Failure) -> Result {
        await withCheckedContinuation { continuation in
            let granted = state.withLock { state -> Bool in
                if !state.exclusive && state.writers == 0 {
                    state.exclusive = true
                    return true
                }
                state.waitingExclusive.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
        defer { releaseExclusive() }
        return try await body()
    }

    private func releaseShared() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.writers -= 1
            guard state.writers == 0, !state.waitingExclusive.isEmpty else { return nil }
            state.exclusive = true
            return state.waitingExclusive.removeFirst()
        }
        next?.resume()
    }

    private func releaseExclusive() {
        let (exclusive, shared) = state.withLock { state -> (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) in
            if !state.waitingExclusive.isEmpty { return (state.waitingExclusive.removeFirst(), []) }
            state.exclusive = false
            state.writers += state.waitingShared.count
            defer { state.waitingShared = [] }
            return (nil, state.waitingShared)
        }
        exclusive?.resume()
        for waiter in shared { waiter.resume() }
    }
}

/// One gate per collection name, made on first use.
final class WriteGates: Sendable {
    private let gates = Mutex<[String: WriteGate]>([:])

    subscript(collection: String) -> WriteGate {
        gates.withLock { gates in
            if let gate = gates[collection] { return gate }
            let gate = WriteGate()
            gates[collection] = gate
            return gate
        }
    }
}
