import GRPCCore
import QuiverStorage

extension RPCError {
    static func invalidArgument(_ message: String) -> RPCError { RPCError(code: .invalidArgument, message: message) }
    static func notFound(_ message: String) -> RPCError { RPCError(code: .notFound, message: message) }
    static func failedPrecondition(_ message: String) -> RPCError { RPCError(code: .failedPrecondition, message: message) }
    static func resourceExhausted(_ message: String) -> RPCError { RPCError(code: .resourceExhausted, message: message) }

    /// The status a caller should see for a storage failure: its own fault, a state to fix
    /// first, or the worker's (disk, damaged data).
    init(_ error: CollectionStoreError) {
        let code: RPCError.Code = switch error {
        case .invalidName: .invalidArgument
        case .alreadyExists: .alreadyExists
        case .modelNotReplaceable: .failedPrecondition
        case .unusableAfterFailedWrite: .unavailable
        case .manifestMissing, .manifestCorrupt, .invalidModel, .segmentMissing, .corruptRecord,
             .segmentShorterThanCommitted: .dataLoss
        case .ioFailed: .internalError
        }
        self.init(code: code, message: error.description)
    }
}
