import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress of long CLI work: a bar redrawn in place on a terminal, plain lines (at most one
/// every few seconds) when output goes to a file or pipe, so logs stay readable.
struct ProgressLine {
    let label: String
    private let interactive = isatty(STDOUT_FILENO) != 0
    private var lastPrinted: ContinuousClock.Instant?
    private let interval: Duration

    init(_ label: String, plainInterval: Duration = .seconds(5)) {
        self.label = label
        interval = plainInterval
    }

    /// Shows `done` of `total` (0: unknown) with a rate and an ETA.
    mutating func update(done: UInt64, total: UInt64, rate: Double, eta: Double?, force: Bool = false) {
        let now = ContinuousClock.now
        if !interactive && !force, let lastPrinted, now - lastPrinted < interval { return }
        lastPrinted = now
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let counts = total > 0 ? "\(done)/\(total)" : "\(done)"
        let tail = String(format: " %@ rows  %.0f rows/s", counts, rate) + (eta.map { $0 >= 0 ? String(format: "  ETA %.0f s", $0) : "" } ?? "")
        if interactive {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardOutput.write(Data("\r\(label) \(bar) \(String(format: "%3.0f%%", fraction * 100))\(tail)\u{1B}[K".utf8))
        } else {
            print("\(label)\(total > 0 ? String(format: " %3.0f%%", fraction * 100) : "")\(tail)")
        }
    }

    /// Ends the line (on a terminal the bar stays, followed by a newline).
    func finish() {
        if interactive { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }
}
