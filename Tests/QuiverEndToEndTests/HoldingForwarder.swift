import Foundation
import QuiverClient
import QuiverProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A TCP forwarder on a loopback port of its own to `target`, for a server that stops
/// answering without closing anything: after `hold()` it still accepts connections but
/// forwards nothing either way (each direction holds the chunk it read, and reads no more), as
/// a frozen process or a host whose packets are dropped looks to a client. Each connection
/// takes two threads; `stop()` ends them all.
final class HoldingForwarder: Sendable {
    let address: HostAndPort
    private let target: HostAndPort
    private let listener: Int32
    private let holding = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let open = Mutex<Set<Int32>>([])

    init(to target: HostAndPort) throws {
        self.target = target
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 && listen(listener, 64) == 0
            }
        }
        guard listening else {
            close(listener)
            throw LocalClusterError("forwarder cannot listen: \(String(cString: strerror(errno)))")
        }
        self.listener = listener
        self.address = HostAndPort(host: "127.0.0.1", port: Int(UInt16(bigEndian: address.sin_port)))
        Thread { [self] in acceptLoop() }.start()
    }

    /// From now on nothing is forwarded (connections already open included).
    func hold() { holding.store(true, ordering: .relaxed) }

    /// Stops accepting and shuts every connection down; the threads end (the accepting one
    /// closes the listener, so that its descriptor is not reused while it may still be in use).
    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        open.withLock { descriptors in
            for descriptor in descriptors { shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
    }

    private func acceptLoop() {
        defer { close(listener) }
        while !stopped.load(ordering: .relaxed) {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            guard let upstream = try? connectIPv4(target) else {
                close(client)
                continue
            }
            let connection = Connection(client: client, upstream: upstream, forwarder: self)
            // Accepted while `stop()` ran: it may have missed these two.
            if stopped.load(ordering: .relaxed) {
                shutdown(client, Int32(SHUT_RDWR))
                shutdown(upstream, Int32(SHUT_RDWR))
            }
            Thread { [self] in pump(from: client, to: upstream, connection) }.start()
            Thread { [self] in pump(from: upstream, to: client, connection) }.start()
        }
    }

    /// Copies `from` to `to` until either ends, or holds what it reads while `hold()` is in force.
    private func pump(from: Int32, to: Int32, _ connection: Connection) {
        defer { connection.pumpEnded() }
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(from, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                shutdown(to, Int32(SHUT_WR))
                return
            }
            while holding.load(ordering: .relaxed) {
                if stopped.load(ordering: .relaxed) { return }
                usleep(20_000)
            }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes { send(to, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { return }
                sent += written
            }
        }
    }

    /// Both descriptors of one forwarded connection, closed when both pumps have ended (never
    /// while the other may still use them).
    private final class Connection: Sendable {
        private let client: Int32
        private let upstream: Int32
        private let forwarder: HoldingForwarder
        private let running = Atomic<Int>(2)

        init(client: Int32, upstream: Int32, forwarder: HoldingForwarder) {
            self.client = client
            self.upstream = upstream
            self.forwarder = forwarder
            forwarder.open.withLock { $0.formUnion([client, upstream]) }
        }

        func pumpEnded() {
            guard running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
            forwarder.open.withLock { $0.subtract([client, upstream]) }
            close(client)
            close(upstream)
        }
    }
}
