import Foundation
import QuiverClient
import QuiverProtocol

#if canImport(Glibc)
import Glibc
#endif

/// A blocking IPv4 TCP connection to `address`; its descriptor.
func connectIPv4(_ address: HostAndPort) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var target = sockaddr_in()
    target.sin_family = sa_family_t(AF_INET)
    target.sin_port = in_port_t(UInt16(address.port).bigEndian)
    inet_pton(AF_INET, address.host, &target.sin_addr)
    let connected = withUnsafePointer(to: &target) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        let reason = errno
        close(descriptor)
        throw LocalClusterError("cannot connect to \(address): errno \(reason)")
    }
    return descriptor
}

/// A blocking IPv4 TCP connection for sending bytes no well-behaved client would (to a framed
/// search port), and for seeing whether the server closes it.
final class RawSocket {
    private let descriptor: Int32

    init(_ address: HostAndPort) throws {
        descriptor = try connectIPv4(address)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends what it can; a server that already closed the connection makes this a no-op.
    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { return }
            offset += sent
        }
    }

    /// Reads until the server closes the connection (true) or 10 s pass without that (false).
    func closedByPeer() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count == 0 { return true }
            if count < 0 { return errno == ECONNRESET }
        }
    }

    deinit { close(descriptor) }
}

/// One frame of the framed search protocol (proto/quiver/v1/framing.proto), written by hand.
func rawFrame(kind: UInt8, body: [UInt8]) -> [UInt8] {
    let length = UInt32(body.count + 1)
    return [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), kind] + body
}
