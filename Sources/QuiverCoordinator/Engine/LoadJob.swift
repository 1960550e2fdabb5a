import QuiverProtocol
import Synchronization

/// What a server-side load job persists (`jobs/<id>.json`), so that it outlives a coordinator
/// restart: it resumes from the rows it had stored, or ends with an honest status.
struct LoadJobRecord: Codable, Sendable, Equatable {
    var id: String
    var collection: String
    var pathGlob: String
    var idPathGlob: String
    var format: Int
    var batchRows: Int
    var rowsTotal: Int
    var filesTotal: Int
    /// Every row before this one is stored (on its write quorum).
    var rowsDone: Int
    /// "pending", "training", "running", "succeeded" or "failed".
    var state: String
    var error: String
    var startedUnixMs: Int64
    var modelVersion: UInt64

    var isFinished: Bool { state == "succeeded" || state == "failed" }

    static func name(_ state: Quiver_V1_LoadState) -> String {
        switch state {
        case .training: "training"
        case .running: "running"
        case .succeeded: "succeeded"
        case .failed: "failed"
        default: "pending"
        }
    }

    var loadState: Quiver_V1_LoadState {
        switch state {
        case "training": .training
        case "running": .running
        case "succeeded": .succeeded
        case "failed": .failed
        default: .pending
        }
    }
}

/// Progress of one LoadFiles job, shared between the task running it and LoadStatus calls.
final class LoadJob: Sendable {
    struct Progress: Sendable {
        var state: Quiver_V1_LoadState = .pending
        var rowsDone: UInt64 = 0
        var rowsTotal: UInt64 = 0
        var filesDone: UInt32 = 0
        var filesTotal: UInt32 = 0
        var modelVersion: UInt64 = 0
        var startedUnixMs: Int64 = 0
        var error = ""
        var cancelled = false
        /// (time, rows done) samples of the last few seconds, for a recent rate.
        var samples: [(at: ContinuousClock.Instant, rows: UInt64)] = []
    }

    static let rateWindow: Duration = .seconds(10)

    let id: String
    let collection: String
    private let progress = Mutex(Progress())

    init(id: String, collection: String, rowsTotal: Int, filesTotal: Int) {
        self.id = id
        self.collection = collection
        progress.withLock {
            $0.rowsTotal = UInt64(rowsTotal)
            $0.filesTotal = UInt32(filesTotal)
        }
    }

    /// A job resumed after a restart, with what its record says.
    convenience init(resuming record: LoadJobRecord) {
        self.init(id: record.id, collection: record.collection, rowsTotal: record.rowsTotal, filesTotal: record.filesTotal)
        progress.withLock {
            $0.rowsDone = UInt64(record.rowsDone)
            $0.startedUnixMs = record.startedUnixMs
            $0.modelVersion = record.modelVersion
            $0.state = record.loadState
            $0.error = record.error
        }
    }

    var isCancelled: Bool { progress.withLock { $0.cancelled } }

    func cancel() {
        progress.withLock { $0.cancelled = true }
    }

    func start(state: Quiver_V1_LoadState, modelVersion: UInt64 = 0) {
        progress.withLock { progress in
            if progress.startedUnixMs == 0 { progress.startedUnixMs = unixMilliseconds() }
            progress.state = state
            progress.modelVersion = modelVersion
            if state == .running { progress.samples = [(ContinuousClock.now, progress.rowsDone)] }
        }
    }

    /// Sets the rows known stored (the contiguous prefix).
    func advance(to rowsDone: Int, filesDone: Int) {
        progress.withLock { progress in
            progress.rowsDone = UInt64(rowsDone)
            progress.filesDone = max(progress.filesDone, UInt32(filesDone))
            let now = ContinuousClock.now
            progress.samples.append((now, progress.rowsDone))
            // Keep the newest sample older than the window as the rate's base.
            while progress.samples.count > 2, now - progress.samples[1].at > Self.rateWindow {
                progress.samples.removeFirst()
            }
        }
    }

    func finish(error: String?) {
        progress.withLock { progress in
            if let error {
                progress.state = .failed
                progress.error = error
            } else {
                progress.state = .succeeded
                progress.filesDone = progress.filesTotal
            }
        }
    }

    var status: Quiver_V1_LoadStatusResponse {
        progress.withLock { progress in
            var status = Quiver_V1_LoadStatusResponse()
            status.loadJobID = id
            status.collection = collection
            status.state = progress.state
            status.rowsDone = progress.rowsDone
            status.rowsTotal = progress.rowsTotal
            status.filesDone = progress.filesDone
            status.filesTotal = progress.filesTotal
            status.modelVersion = progress.modelVersion
            status.startedUnixMs = progress.startedUnixMs
            status.error = progress.error
            var rate = 0.0
            if let first = progress.samples.first, let last = progress.samples.last, last.at > first.at {
                let seconds = Double((last.at - first.at).components.seconds)
                    + Double((last.at - first.at).components.attoseconds) * 1e-18
                rate = Double(last.rows - first.rows) / seconds
            }
            status.rowsPerSecond = rate
            let remaining = progress.rowsTotal > progress.rowsDone ? progress.rowsTotal - progress.rowsDone : 0
            switch progress.state {
            case .succeeded: status.etaSeconds = 0
            case .running where rate > 0: status.etaSeconds = Double(remaining) / rate
            default: status.etaSeconds = -1
            }
            return status
        }
    }
}
