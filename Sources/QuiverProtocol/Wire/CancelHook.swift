import Synchronization

/// A cancellation that may come before or after the action it should run is registered: the
/// action runs exactly once, when the later of the two happens.
public final class CancelHook: Sendable {
    private struct State {
        var fired = false
        /// The work it guards is over: nothing is kept or run any more.
        var done = false
        var action: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    public init() {}

    public var isFired: Bool { state.withLock { $0.fired } }

    /// Runs `action` when the hook fires (at once if it already has). A later registration
    /// replaces an earlier one that has not run. After `finish`, it is dropped.
    public func register(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state in
            if state.done { return false }
            if state.fired { return true }
            state.action = action
            return false
        }
        if runNow { action() }
    }

    /// Fires the hook (once; later calls, and calls after `finish`, do nothing).
    public func fire() {
        let action = state.withLock { state -> (@Sendable () -> Void)? in
            guard !state.fired, !state.done else { return nil }
            state.fired = true
            defer { state.action = nil }
            return state.action
        }
        action?()
    }

    /// The work is over without a cancellation: the registered action is released unrun
    /// (it may hold, directly or not, what holds this hook) and later ones are not kept.
    public func finish() {
        let action = state.withLock { state -> (@Sendable () -> Void)? in
            state.done = true
            defer { state.action = nil }
            return state.action
        }
        // Released here, outside the lock: its captures may end in deinitializers.
        _ = action
    }
}
