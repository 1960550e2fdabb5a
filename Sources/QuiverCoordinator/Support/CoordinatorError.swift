import GRPCCore

/// Everything the coordinator refuses or fails at, each case carrying what a user needs to fix
/// the request. The gRPC shell turns these into statuses; nothing else decides a status code.
public enum CoordinatorError: Error, CustomStringConvertible, Sendable {
    /// Malformed or out-of-range input (wrong dimension, NaN, k ≤ 0, nprobe > nlist, …).
    case invalidArgument(String)
    case notFound(String)
    case alreadyExists(String)
    /// The collection is not in a state that allows the call (not trained, training, …).
    case failedPrecondition(String)
    /// Too big to take at once: split it.
    case resourceExhausted(String)
    /// Workers needed for the call did not answer.
    case unavailable(String)
    case deadlineExceeded(String)
    /// The caller cancelled the call.
    case cancelled(String)
    /// A fault of the coordinator or a worker that the caller cannot fix.
    case internalError(String)
    /// The caller is known but may not do this (wrong role, a path outside the import root).
    case permissionDenied(String)

    public var description: String {
        switch self {
        case .invalidArgument(let message), .notFound(let message), .alreadyExists(let message),
             .failedPrecondition(let message), .resourceExhausted(let message), .unavailable(let message),
             .deadlineExceeded(let message), .cancelled(let message), .internalError(let message),
             .permissionDenied(let message):
            message
        }
    }

    /// The same error with more said.
    func appending(_ detail: String) -> CoordinatorError {
        switch self {
        case .invalidArgument(let m): .invalidArgument(m + detail)
        case .notFound(let m): .notFound(m + detail)
        case .alreadyExists(let m): .alreadyExists(m + detail)
        case .failedPrecondition(let m): .failedPrecondition(m + detail)
        case .resourceExhausted(let m): .resourceExhausted(m + detail)
        case .unavailable(let m): .unavailable(m + detail)
        case .deadlineExceeded(let m): .deadlineExceeded(m + detail)
        case .cancelled(let m): .cancelled(m + detail)
        case .internalError(let m): .internalError(m + detail)
        case .permissionDenied(let m): .permissionDenied(m + detail)
        }
    }

    /// The request itself is at fault (the same request fails on any replica).
    var isRequestFault: Bool {
        switch self {
        case .invalidArgument, .resourceExhausted, .alreadyExists: true
        default: false
        }
    }

    public var rpcError: RPCError {
        switch self {
        case .invalidArgument(let message): RPCError(code: .invalidArgument, message: message)
        case .notFound(let message): RPCError(code: .notFound, message: message)
        case .alreadyExists(let message): RPCError(code: .alreadyExists, message: message)
        case .failedPrecondition(let message): RPCError(code: .failedPrecondition, message: message)
        case .resourceExhausted(let message): RPCError(code: .resourceExhausted, message: message)
        case .unavailable(let message): RPCError(code: .unavailable, message: message)
        case .deadlineExceeded(let message): RPCError(code: .deadlineExceeded, message: message)
        case .cancelled(let message): RPCError(code: .cancelled, message: message)
        case .internalError(let message): RPCError(code: .internalError, message: message)
        case .permissionDenied(let message): RPCError(code: .permissionDenied, message: message)
        }
    }

    /// Wraps any error: coordinator errors keep their meaning, RPC errors from workers keep their
    /// code with the worker named, anything else is internal.
    static func wrapping(_ error: any Error, context: String) -> CoordinatorError {
        switch error {
        case let error as CoordinatorError:
            return error
        case let error as RPCError:
            let message = "\(context): \(error.message)"
            switch error.code {
            case .invalidArgument: return .invalidArgument(message)
            case .notFound: return .notFound(message)
            case .failedPrecondition: return .failedPrecondition(message)
            case .resourceExhausted: return .resourceExhausted(message)
            case .deadlineExceeded: return .deadlineExceeded(message)
            case .permissionDenied, .unauthenticated: return .internalError(message + " (the coordinator's credentials for this worker are wrong)")
            case .unavailable, .cancelled, .aborted: return .unavailable(message)
            default: return .internalError(message)
            }
        default:
            return .internalError("\(context): \(error)")
        }
    }
}
