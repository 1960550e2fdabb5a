/// The numpy `.npy` format: magic, version, a Python dict literal describing the array, then
/// the raw values. See numpy/lib/format.py; versions 2.0 and 3.0 only widen the header length
/// field, and 3.0 makes the header UTF-8.
enum NpyFormat {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    static let supportedDescrs: [String: VectorElementType] = [
        "<f4": .float32, "<f2": .float16, "|u1": .uint8, "<u1": .uint8, "|i1": .int8,
        "<i1": .int8, "<i4": .int32, "<i8": .int64,
    ]

    static func layout(of mapping: MappedFile) throws(DatasetError) -> MatrixLayout {
        let path = mapping.path
        let bytes = mapping.bytes
        guard bytes.count >= magic.count, bytes.prefix(magic.count).elementsEqual(magic) else {
            throw .badMagic(path: path, found: Array(bytes.prefix(magic.count)))
        }
        guard bytes.count >= 8 else {
            throw .unparseableHeader(path: path, reason: "file ends before the version bytes")
        }
        let major = bytes[6]
        let minor = bytes[7]
        let lengthFieldSize: Int
        switch (major, minor) {
        case (1, 0): lengthFieldSize = 2
        case (2, 0), (3, 0): lengthFieldSize = 4
        default: throw .unsupportedNpyVersion(path: path, major: major, minor: minor)
        }
        let headerStart = 8 + lengthFieldSize
        guard bytes.count >= headerStart else {
            throw .unparseableHeader(path: path, reason: "file ends before the header length")
        }
        let headerLength =
            lengthFieldSize == 2
            ? Int(bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
            : Int(bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let dataOffset = headerStart + headerLength
        guard dataOffset <= bytes.count else {
            throw .unparseableHeader(
                path: path,
                reason: "header claims \(headerLength) bytes but the file has only "
                    + "\(bytes.count - headerStart) after the length field")
        }

        let header = UnsafeRawBufferPointer(rebasing: bytes[headerStart..<dataOffset])
        let dict: [String: PyLiteral]
        do {
            dict = try PyLiteralParser.parseDict(Array(header), utf8: major == 3)
        } catch {
            throw .unparseableHeader(path: path, reason: error.reason)
        }

        guard case .string(let descr)? = dict["descr"] else {
            throw .unparseableHeader(path: path, reason: "missing string key 'descr'")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else {
            throw .unparseableHeader(path: path, reason: "missing boolean key 'fortran_order'")
        }
        guard case .tuple(let shapeItems)? = dict["shape"] else {
            throw .unparseableHeader(path: path, reason: "missing tuple key 'shape'")
        }
        var shape: [Int] = []
        for item in shapeItems {
            guard case .int(let extent) = item, extent >= 0 else {
                throw .unparseableHeader(path: path, reason: "shape must hold non-negative integers")
            }
            shape.append(extent)
        }

        guard let elementType = supportedDescrs[descr] else {
            throw .unsupportedElementType(
                path: path, found: "'\(descr)'",
                supported: VectorElementType.vectorDescriptions
                    + VectorElementType.integerDescriptions.map { $0 + " for integer matrices" })
        }
        if fortran && shape.count > 1 && shape.filter({ $0 > 1 }).count > 1 {
            throw .fortranOrder(path: path)
        }
        guard shape.count == 2 else { throw .notTwoDimensional(path: path, shape: shape) }
        let (rows, columns) = (shape[0], shape[1])
        guard columns > 0 else { throw .nonPositiveDimension(path: path, row: nil, found: columns) }

        let (rowBytes, overflow1) = columns.multipliedReportingOverflow(by: elementType.byteWidth)
        let (dataBytes, overflow2) = rows.multipliedReportingOverflow(by: rowBytes)
        let (expectedSize, overflow3) = dataOffset.addingReportingOverflow(dataBytes)
        guard !overflow1, !overflow2, !overflow3 else {
            throw .unparseableHeader(path: path, reason: "shape \(shape) is too large")
        }
        if bytes.count < expectedSize {
            throw .truncated(
                path: path, row: (bytes.count - dataOffset) / rowBytes,
                expectedBytes: expectedSize, actualBytes: bytes.count)
        }
        if bytes.count > expectedSize {
            throw .trailingBytes(path: path, expectedBytes: expectedSize, actualBytes: bytes.count)
        }
        return MatrixLayout(
            format: .npy, elementType: elementType, rows: rows, columns: columns,
            dataOffset: dataOffset, rowStride: rowBytes)
    }

    /// The magic, version, length field and padded header dict for a C-order 2-D array.
    /// Version 1.0 unless the header does not fit its 16-bit length, as numpy does.
    static func header(
        elementType: VectorElementType, rows: Int, columns: Int, version: UInt8? = nil
    ) -> [UInt8] {
        let dict = "{'descr': '\(elementType.npyDescr)', 'fortran_order': False, "
            + "'shape': (\(rows), \(columns)), }"
        var text = Array(dict.utf8)
        let chosen = version ?? (text.count + 11 > Int(UInt16.max) ? 2 : 1)
        let prefix = 8 + (chosen == 1 ? 2 : 4)
        // numpy pads with spaces so the data starts on a 64-byte boundary, ending in '\n'.
        let total = (prefix + text.count + 1 + 63) / 64 * 64
        text += [UInt8](repeating: 0x20, count: total - prefix - text.count - 1) + [0x0A]
        var out = magic + [chosen, 0]
        if chosen == 1 {
            out += withUnsafeBytes(of: UInt16(text.count).littleEndian, Array.init)
        } else {
            out += withUnsafeBytes(of: UInt32(text.count).littleEndian, Array.init)
        }
        return out + text
    }
}

/// The subset of Python literals numpy writes in .npy headers.
enum PyLiteral: Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case none
    case tuple([PyLiteral])
    case list([PyLiteral])
    case dict([String: PyLiteral])
}

struct PyLiteralError: Error {
    let reason: String
}

/// A small recursive-descent parser, enough for `{'descr': '<f4', 'fortran_order': False,
/// 'shape': (3, 4), }` and older variants such as `(3L, 4L)`. Structured dtypes (lists in
/// 'descr') parse, then fail as unsupported types.
struct PyLiteralParser {
    private let text: [UInt8]
    private let utf8: Bool
    private var position = 0

    static func parseDict(_ text: [UInt8], utf8: Bool) throws(PyLiteralError) -> [String: PyLiteral] {
        var parser = PyLiteralParser(text: text, utf8: utf8)
        let value = try parser.parseValue()
        parser.skipSpace()
        guard parser.position == text.count else {
            throw parser.fail("unexpected text after the dictionary")
        }
        guard case .dict(let dict) = value else { throw PyLiteralError(reason: "header is not a dict") }
        return dict
    }

    private init(text: [UInt8], utf8: Bool) {
        self.text = text
        self.utf8 = utf8
    }

    private func fail(_ message: String) -> PyLiteralError {
        let shown = String(decoding: text.prefix(120), as: UTF8.self)
            .trimmingTrailingWhitespace()
        return PyLiteralError(reason: "\(message) at byte \(position) of header \(shown)")
    }

    private mutating func skipSpace() {
        while position < text.count, [0x20, 0x09, 0x0A, 0x0D].contains(text[position]) {
            position += 1
        }
    }

    private mutating func peek() -> UInt8? {
        skipSpace()
        return position < text.count ? text[position] : nil
    }

    private mutating func parseValue() throws(PyLiteralError) -> PyLiteral {
        guard let c = peek() else { throw fail("unexpected end") }
        switch c {
        case UInt8(ascii: "{"):
            position += 1
            var dict: [String: PyLiteral] = [:]
            while true {
                if peek() == UInt8(ascii: "}") { position += 1; return .dict(dict) }
                guard case .string(let key) = try parseValue() else { throw fail("dict key is not a string") }
                guard peek() == UInt8(ascii: ":") else { throw fail("expected ':'") }
                position += 1
                dict[key] = try parseValue()
                switch peek() {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"): continue
                default: throw fail("expected ',' or '}'")
                }
            }
        case UInt8(ascii: "("), UInt8(ascii: "["):
            let close = c == UInt8(ascii: "(") ? UInt8(ascii: ")") : UInt8(ascii: "]")
            position += 1
            var items: [PyLiteral] = []
            while true {
                if peek() == close {
                    position += 1
                    return c == UInt8(ascii: "(") ? .tuple(items) : .list(items)
                }
                items.append(try parseValue())
                switch peek() {
                case UInt8(ascii: ","): position += 1
                case close: continue
                default: throw fail("expected ',' or closing bracket")
                }
            }
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            position += 1
            let start = position
            while position < text.count, text[position] != c {
                if text[position] == UInt8(ascii: "\\") { position += 1 }
                position += 1
            }
            guard position < text.count else { throw fail("unterminated string") }
            let raw = text[start..<position]
            position += 1
            // Versions 1 and 2 are latin-1; every byte is its own code point.
            let string =
                utf8
                ? String(decoding: raw, as: UTF8.self)
                : String(String.UnicodeScalarView(raw.map { Unicode.Scalar($0) }))
            return .string(string)
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
            let start = position
            position += 1
            while position < text.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[position]) {
                position += 1
            }
            guard let value = Int(String(decoding: text[start..<position], as: UTF8.self)) else {
                throw fail("bad integer")
            }
            // Python 2 wrote longs as 3L.
            if position < text.count, text[position] == UInt8(ascii: "L") { position += 1 }
            return .int(value)
        default:
            for (word, value) in [("True", PyLiteral.bool(true)), ("False", .bool(false)), ("None", .none)]
            where text[position...].starts(with: word.utf8) {
                position += word.utf8.count
                return value
            }
            throw fail("unexpected character '\(Unicode.Scalar(c))'")
        }
    }
}

extension String {
    fileprivate func trimmingTrailingWhitespace() -> String {
        var result = self
        while let last = result.last, last.isWhitespace { result.removeLast() }
        return result
    }
}
