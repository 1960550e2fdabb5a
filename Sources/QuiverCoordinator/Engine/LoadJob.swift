import QuiverProtocol
import Synchronization

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

    func advance(rows: Int, filesDone: Int) {
        progress.withLock { progress in
            progress.rowsDone += UInt64(rows)
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
