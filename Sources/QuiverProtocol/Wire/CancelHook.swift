import Synchronization

/// A cancellation that may come before or after the action it should run is registered: the
/// action runs exactly once, when the later of the two happens.
public final class CancelHook: Sendable {
    private let state = Mutex<(fired: Bool, action: (@Sendable () -> Void)?)>((false, nil))

    public init() {}

    public var isFired: Bool { state.withLock { $0.fired } }

    /// Runs `action` when the hook fires (at once if it already has). A later registration
    /// replaces an earlier one that has not run.
    public func register(_ action: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { state in
            if state.fired { return true }
            state.action = action
            return false
        }
        if runNow { action() }
    }

    /// Fires the hook (once; later calls do nothing).
    public func fire() {
        let action = state.withLock { state -> (@Sendable () -> Void)? in
            guard !state.fired else { return nil }
            state.fired = true
            defer { state.action = nil }
            return state.action
        }
        action?()
    }
}
