#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Several vector files read as one: rows are numbered consecutively across the files in
/// order, and every file must have the same dimension (element types may differ; everything
/// is read as Float).
public struct VectorDataset: Sendable {
    public let files: [VectorFile]
    /// Global row number of each file's first row, plus the total at the end.
    private let starts: [Int]

    public var count: Int { starts[starts.count - 1] }
    public var dimension: Int { files[0].dimension }

    public init(paths: [String]) throws(DatasetError) {
        guard let first = paths.first else { throw .noFilesMatch(pattern: "") }
        var files: [VectorFile] = []
        for path in paths {
            let file = try VectorFile.open(path)
            if let firstFile = files.first, file.dimension != firstFile.dimension {
                throw .dimensionMismatch(
                    path: path, found: file.dimension, expected: firstFile.dimension,
                    firstPath: first)
            }
            files.append(file)
        }
        var starts = [0]
        for file in files { starts.append(starts[starts.count - 1] + file.count) }
        self.files = files
        self.starts = starts
    }

    /// Expands a shell pattern such as `dir/base.*.npy`. Matches are ordered with numbers
    /// compared by value (`base.2` before `base.10`), since shards are usually numbered
    /// without zero padding and a plain string sort would silently reorder their rows.
    /// A pattern without wildcards names a single file.
    public init(pattern: String) throws(DatasetError) {
        try self.init(paths: try Self.expand(pattern))
    }

    public init(path: String) throws(DatasetError) {
        try self.init(paths: [path])
    }

    static func expand(_ pattern: String) throws(DatasetError) -> [String] {
        guard pattern.contains(where: { "*?[".contains($0) }) else { return [pattern] }
        var matches = glob_t()
        defer { globfree(&matches) }
        let status = glob(pattern, 0, nil, &matches)
        guard status == 0, matches.gl_pathc > 0 else { throw .noFilesMatch(pattern: pattern) }
        var paths: [String] = []
        for i in 0..<Int(matches.gl_pathc) {
            if let cString = matches.gl_pathv[i] { paths.append(String(cString: cString)) }
        }
        return paths.sorted(by: naturalOrder)
    }

    public func readRows(_ range: Range<Int>) throws(DatasetError) -> [Float] {
        try checkRange(range)
        return try filledFloats(count: range.count * dimension) { buffer throws(DatasetError) in
            try readRows(range, into: buffer)
        }
    }

    /// Converts rows `range` (global numbering) into `destination`, which must hold
    /// `range.count * dimension` values; the range may span files.
    public func readRows(
        _ range: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>
    ) throws(DatasetError) {
        try checkRange(range)
        precondition(destination.count >= range.count * dimension, "destination too small")
        var row = range.lowerBound
        var fileIndex = fileContaining(row)
        var written = 0
        while row < range.upperBound {
            let file = files[fileIndex]
            let local = row - starts[fileIndex]
            let take = min(range.upperBound, starts[fileIndex + 1]) - row
            if take > 0 {
                let slice = UnsafeMutableBufferPointer(
                    rebasing: destination[written..<(written + take * dimension)])
                try file.readRows(local..<(local + take), into: slice)
                row += take
                written += take * dimension
            }
            fileIndex += 1
        }
    }

    /// Streams the whole dataset in batches of `rows` rows (the last may be shorter), each
    /// converted to Float in one reused row-major buffer; batches run across file boundaries.
    /// `values` is only valid during the call. Memory stays at one batch however big the files.
    public func forEachBatch(
        rows batchRows: Int,
        _ body: (_ firstRow: Int, _ values: UnsafeBufferPointer<Float>, _ rowCount: Int) throws -> Void
    ) throws {
        precondition(batchRows > 0, "batch size must be positive")
        for file in files { file.matrix.mapping.adviseSequential() }
        let capacity = min(batchRows, max(count, 1)) * dimension
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: capacity)
        defer { buffer.deallocate() }
        var first = 0
        while first < count {
            let rowCount = min(batchRows, count - first)
            let filled = UnsafeMutableBufferPointer(rebasing: buffer[0..<(rowCount * dimension)])
            try readRows(first..<(first + rowCount), into: filled)
            try body(first, UnsafeBufferPointer(filled), rowCount)
            first += rowCount
        }
    }

    public func readAll() throws(DatasetError) -> [Float] {
        try readRows(0..<count)
    }

    /// Index of the file holding global `row` (binary search over the file starts).
    private func fileContaining(_ row: Int) -> Int {
        var low = 0
        var high = files.count - 1
        while low < high {
            let mid = (low + high + 1) / 2
            if starts[mid] <= row { low = mid } else { high = mid - 1 }
        }
        return low
    }

    private func checkRange(_ range: Range<Int>) throws(DatasetError) {
        if range.lowerBound < 0 || range.upperBound > count {
            throw .rowRangeOutOfBounds(requested: range, count: count)
        }
    }
}

/// String order in which runs of digits compare by numeric value.
func naturalOrder(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    var i = 0
    var j = 0
    func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    while i < x.count && j < y.count {
        if isDigit(x[i]) && isDigit(y[j]) {
            var iEnd = i
            var jEnd = j
            while iEnd < x.count && isDigit(x[iEnd]) { iEnd += 1 }
            while jEnd < y.count && isDigit(y[jEnd]) { jEnd += 1 }
            // Compare by value without parsing: strip leading zeros, then longer is larger.
            var iStart = i
            var jStart = j
            while iStart < iEnd - 1 && x[iStart] == UInt8(ascii: "0") { iStart += 1 }
            while jStart < jEnd - 1 && y[jStart] == UInt8(ascii: "0") { jStart += 1 }
            let xDigits = x[iStart..<iEnd]
            let yDigits = y[jStart..<jEnd]
            if xDigits.count != yDigits.count { return xDigits.count < yDigits.count }
            if !xDigits.elementsEqual(yDigits) { return xDigits.lexicographicallyPrecedes(yDigits) }
            i = iEnd
            j = jEnd
        } else {
            if x[i] != y[j] { return x[i] < y[j] }
            i += 1
            j += 1
        }
    }
    if x.count - i != y.count - j { return x.count - i < y.count - j }
    return a.utf8.lexicographicallyPrecedes(b.utf8)
}
