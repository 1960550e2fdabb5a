import QuiverIndex
import QuiverProtocol
import QuiverStorage

/// The coordinator's access to files on its own host (Train from a file, LoadFiles): only below
/// the import root, and every call blocks on the disk, so callers run them with `offload`, never
/// on the coordinator's actor. Errors name files relative to the root and never echo contents.
struct ServerFiles: Sendable {
    /// nil: server-side imports are off (the default).
    let root: ImportRoot?

    static let vectorExtensions = ["npy", "fvecs", "bvecs"]
    static let idExtensions = ["npy", "ivecs"]

    /// The vector files a pattern names, opened (headers checked) as one dataset.
    func openDataset(_ pattern: String, format: Quiver_V1_VectorFileFormat, dimension: Int) throws(CoordinatorError) -> VectorDataset {
        let paths = try resolve(pattern, extensions: format.fileExtension.map { [$0] } ?? Self.vectorExtensions)
        let dataset: VectorDataset
        do {
            dataset = try VectorDataset(paths: paths)
        } catch {
            throw self.error(error)
        }
        guard dataset.dimension == dimension else {
            throw .invalidArgument("\(shown(dataset.files[0].path)) holds \(dataset.dimension)-dimensional vectors, the collection expects \(dimension)")
        }
        guard dataset.count > 0 else { throw .invalidArgument("\(pattern) holds no vectors") }
        return dataset
    }

    private func resolve(_ pattern: String, extensions: [String]) throws(CoordinatorError) -> [String] {
        guard let root else { throw .failedPrecondition(ImportError.disabled.description) }
        do {
            return try root.files(matching: pattern, extensions: extensions)
        } catch {
            switch error {
            case .noFilesMatch: throw .notFound(error.description)
            case .patternTooBroad, .tooManyMatches: throw .resourceExhausted(error.description)
            case .outsideRoot: throw .permissionDenied(error.description)
            default: throw .invalidArgument(error.description)
            }
        }
    }

    /// A path as a remote caller may see it: relative to the import root.
    func shown(_ path: String) -> String { root?.relative(path) ?? path }

    /// A dataset error as the remote caller sees it: paths relative to the root, no file contents.
    func error(_ error: DatasetError) -> CoordinatorError {
        var message = error.descriptionWithoutContents
        if let root {
            for prefix in Set([root.path, root.configuredPath]) { message = message.replacingAll(prefix + "/", with: "") }
        }
        switch error {
        case .fileNotFound, .noFilesMatch: return .notFound(message)
        default: return .invalidArgument(message)
        }
    }

    /// `count` rows drawn uniformly without replacement (all when there are fewer), read by
    /// random access in runs of consecutive rows; non-finite values are refused with their row.
    func uniformRows(of dataset: VectorDataset, count: Int, seed: UInt64) throws(CoordinatorError) -> Matrix {
        var generator = SeededGenerator(seed: seed &+ 0x7A1)
        let rows = uniformSample(population: dataset.count, sampleSize: min(count, dataset.count), generator: &generator)
        let dimension = dataset.dimension
        var values = [Float](repeating: 0, count: rows.count * dimension)
        var failure: CoordinatorError?
        values.withUnsafeMutableBufferPointer { out in
            var index = 0
            while index < rows.count, failure == nil {
                var end = index + 1
                while end < rows.count && rows[end] == rows[end - 1] + 1 { end += 1 }
                let target = UnsafeMutableBufferPointer(rebasing: out[index * dimension ..< end * dimension])
                do throws(DatasetError) {
                    try dataset.readRows(rows[index] ..< rows[end - 1] + 1, into: target)
                } catch {
                    failure = self.error(error)
                }
                index = end
            }
        }
        if let failure { throw failure }
        if let bad = Kernels.firstNonFinite(values) {
            throw .invalidArgument("row \(rows[bad / dimension]) of the file set has a non-finite value \(values[bad]) at component \(bad % dimension)")
        }
        return Matrix(rows: rows.count, dimension: dimension, values: values)
    }

    /// Reads rows of the file set, refusing non-finite values with the file and row they are in.
    func readBatch(_ dataset: VectorDataset, _ range: Range<Int>) throws(CoordinatorError) -> Matrix {
        let values: [Float]
        do {
            values = try dataset.readRows(range)
        } catch {
            throw self.error(error)
        }
        let dimension = dataset.dimension
        if let bad = Kernels.firstNonFinite(values) {
            var row = range.lowerBound + bad / dimension
            var path = ""
            for file in dataset.files {
                if row < file.count {
                    path = file.path
                    break
                }
                row -= file.count
            }
            throw .invalidArgument("\(shown(path)) row \(row) has a non-finite value \(values[bad]) at component \(bad % dimension); nothing after it was loaded")
        }
        return Matrix(rows: range.count, dimension: dimension, values: values)
    }

    /// The leading `rows` rows of a file set, as a file set (whole files, then a cut).
    func prefix(of dataset: VectorDataset, rows: Int) throws(CoordinatorError) -> VectorDataset {
        var paths: [String] = []
        var covered = 0
        for file in dataset.files where covered < rows {
            paths.append(file.path)
            covered += file.count
        }
        do {
            return try VectorDataset(paths: paths)
        } catch {
            throw self.error(error)
        }
    }

    /// Ids from files paired with the vector files in order, row-aligned with them.
    func readIDs(_ pattern: String, for dataset: VectorDataset, rows: Int) throws(CoordinatorError) -> [Int64] {
        let paths = try resolve(pattern, extensions: Self.idExtensions)
        guard paths.count == dataset.files.count else {
            throw .invalidArgument("\(pattern) matches \(paths.count) id files, but the vectors are in \(dataset.files.count) files; they pair up in order")
        }
        var ids: [Int64] = []
        for (path, file) in zip(paths, dataset.files) {
            let matrix: IntegerMatrix
            do {
                matrix = try readIntegerMatrix(path: path)
            } catch {
                throw self.error(error)
            }
            guard matrix.columns == 1 || matrix.rows == 1 else {
                throw .invalidArgument("\(shown(path)) has shape \(matrix.rows)×\(matrix.columns); id files hold one id per row")
            }
            guard matrix.values.count == file.count else {
                throw .invalidArgument("\(shown(path)) holds \(matrix.values.count) ids, but \(shown(file.path)) holds \(file.count) vectors")
            }
            ids.append(contentsOf: matrix.values)
            if ids.count >= rows { break }
        }
        ids = Array(ids.prefix(rows))
        if let bad = ids.firstIndex(where: { $0 < 0 }) {
            throw .invalidArgument("id of row \(bad) is \(ids[bad]); ids must be non-negative")
        }
        return ids
    }
}

extension Quiver_V1_VectorFileFormat {
    /// The extension a format implies; nil when the request leaves it to the extension.
    var fileExtension: String? {
        switch self {
        case .npy: "npy"
        case .fvecs: "fvecs"
        case .bvecs: "bvecs"
        case .ivecs: "ivecs"
        case .unspecified, .UNRECOGNIZED: nil
        }
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            out += rest[..<range.lowerBound]
            out += replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
