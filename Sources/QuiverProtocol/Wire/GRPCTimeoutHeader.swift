/// The `grpc-timeout` request header: 1 to 8 ASCII digits and a unit (H, M, S, m, u, n), as the
/// gRPC HTTP/2 protocol defines it. Anything else is refused before gRPC Swift sees it (its own
/// decoder accepts a sign and then fails a precondition on a negative amount).
public enum GRPCTimeoutHeader {
    public static let name = "grpc-timeout"

    /// The duration a well-formed header names; nil for a malformed one.
    public static func parse(_ value: String) -> Duration? {
        let bytes = Array(value.utf8)
        guard (2 ... 9).contains(bytes.count), let unit = bytes.last else { return nil }
        var amount: Int64 = 0
        for digit in bytes.dropLast() {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(digit - UInt8(ascii: "0"))
        }
        // At most 99,999,999 of any unit: hours fit a Duration's seconds without overflow.
        switch unit {
        case UInt8(ascii: "H"): return .seconds(amount * 3600)
        case UInt8(ascii: "M"): return .seconds(amount * 60)
        case UInt8(ascii: "S"): return .seconds(amount)
        case UInt8(ascii: "m"): return .milliseconds(amount)
        case UInt8(ascii: "u"): return .microseconds(amount)
        case UInt8(ascii: "n"): return .nanoseconds(amount)
        default: return nil
        }
    }

    /// Why a header value is refused, naming what is expected; nil when it is well-formed.
    public static func problem(_ value: String) -> String? {
        guard parse(value) == nil else { return nil }
        let shown = String(value.unicodeScalars.prefix(24).map { $0.isASCII && $0.value >= 0x20 ? Character($0) : "?" })
        return "the grpc-timeout header must be 1 to 8 digits followed by a unit (H, M, S, m, u or n), got \"\(shown)\""
    }
}
