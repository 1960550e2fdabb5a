import NIOCore
import NIOPosix

/// Runs Swift tasks on a NIO event loop thread. A gRPC server or client whose tasks prefer this
/// executor handles a request on the thread that read it, instead of handing it to the
/// cooperative pool and back: on small machines each such hand-off is a thread wake-up that
/// costs more than the work of a short RPC.
public final class EventLoopExecutor: TaskExecutor, @unchecked Sendable {
    /// The loop its jobs run on.
    public let loop: any EventLoop

    public init(_ loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()) {
        self.loop = loop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
