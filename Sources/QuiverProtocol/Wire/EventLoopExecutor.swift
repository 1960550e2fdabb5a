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

/// Runs Swift tasks on the event loops of a group, each job on the loop whose thread enqueued
/// it: a task resumed by an answer read on one loop goes on there, with no hand-off back to
/// where it started; jobs enqueued from any other thread go to `home`. A client whose tasks
/// prefer it lets concurrent calls spread over the loops' connections (see
/// `FramedClientSettings.spillMargin`) and keeps each task with the connection it uses.
public final class LoopFollowingExecutor: TaskExecutor, @unchecked Sendable {
    /// Where jobs enqueued off the group's loops run.
    public let home: any EventLoop
    private let loops: [any EventLoop]

    public init(group: MultiThreadedEventLoopGroup = .singleton) {
        loops = Array(group.makeIterator())
        home = group.any()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let current = MultiThreadedEventLoopGroup.currentEventLoop
        let loop = current.flatMap { current in loops.first { $0 === current } } ?? home
        loop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
