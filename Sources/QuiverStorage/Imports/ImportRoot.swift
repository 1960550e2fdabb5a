#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one folder a server reads import files from (`--import-root`): every path or glob a
/// request names is resolved inside it, and nothing outside it is ever opened, listed or named.
///
/// - Patterns are relative to the root, or absolute paths that start with it; `..` is refused.
/// - Globs (`*`, `?`, `[…]` per path component) are expanded by a bounded walk, not by glob(3):
///   at most `limits.maxEntriesVisited` directory entries are looked at and `limits.maxMatches` files returned,
///   so `/*/*/*/*/*.npy` costs a bounded amount of work instead of a walk of the whole disk.
/// - Every match is resolved with realpath(3) and must stay inside the root (a symlink may point
///   elsewhere in the root, not out of it), must be a regular file (not a FIFO, device or
///   folder) and must carry an allowed extension — checked before the file is opened.
/// - Errors name the pattern and paths relative to the root, never other files or contents.
public struct ImportRoot: Sendable, Equatable {
    /// How much one pattern may make the server do.
    public struct Limits: Sendable, Equatable {
        public var maxEntriesVisited = 100_000
        public var maxMatches = 10_000
        public var maxComponents = 32
        public init() {}
    }

    /// The root's canonical path (symlinks resolved).
    public let path: String
    /// The root as configured, also accepted as the prefix of absolute patterns.
    public let configuredPath: String
    public let limits: Limits

    public init(_ path: String, limits: Limits = Limits()) throws(ImportError) {
        self.limits = limits
        guard let real = Self.realPath(path) else { throw .rootUnusable(path: path, reason: "it does not exist") }
        var info = stat()
        guard stat(real, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw .rootUnusable(path: path, reason: "it is not a folder")
        }
        self.path = real
        configuredPath = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    /// The regular files `pattern` names inside the root, each with one of `extensions`
    /// (lower-case, without the dot), in natural order (`base.2` before `base.10`).
    public func files(matching pattern: String, extensions: [String]) throws(ImportError) -> [String] {
        let components = try relativeComponents(of: pattern)
        var visited = 0
        var candidates: [String] = [path]
        for (position, component) in components.enumerated() {
            let last = position == components.count - 1
            var next: [String] = []
            for folder in candidates {
                if !Self.hasWildcard(component) {
                    next.append(folder + "/" + component)
                    continue
                }
                // Only list folders that are really inside the root (a symlinked folder may not be).
                guard let realFolder = Self.realPath(folder), contains(realFolder) else { continue }
                for name in try entries(of: realFolder, pattern: pattern, visited: &visited) {
                    guard Self.matches(component, name) else { continue }
                    next.append(folder + "/" + name)
                    if last && next.count > limits.maxMatches { throw .tooManyMatches(pattern: pattern, limit: limits.maxMatches) }
                }
            }
            candidates = next
            if candidates.isEmpty { break }
        }
        var files: [String] = []
        for candidate in candidates {
            guard let real = Self.realPath(candidate) else { continue }
            guard contains(real) else {
                throw .outsideRoot(pattern: pattern, match: relative(candidate))
            }
            var info = stat()
            guard stat(real, &info) == 0 else { continue }
            guard (info.st_mode & S_IFMT) == S_IFREG else {
                if Self.hasWildcard(pattern) && (info.st_mode & S_IFMT) == S_IFDIR { continue }
                throw .notRegularFile(path: relative(candidate))
            }
            let lowered = real.lowercased()
            guard extensions.contains(where: { lowered.hasSuffix("." + $0) }) else {
                throw .extensionNotAllowed(path: relative(candidate), allowed: extensions)
            }
            files.append(real)
        }
        guard !files.isEmpty else { throw .noFilesMatch(pattern: pattern) }
        return files.sorted(by: naturalOrder)
    }

    /// `path` relative to the root, for messages.
    public func relative(_ path: String) -> String {
        for prefix in [self.path, configuredPath] where path.hasPrefix(prefix + "/") {
            return String(path.dropFirst(prefix.count + 1))
        }
        return path
    }

    private func contains(_ realPath: String) -> Bool {
        realPath == path || realPath.hasPrefix(path == "/" ? "/" : path + "/")
    }

    private func relativeComponents(of pattern: String) throws(ImportError) -> [String] {
        guard !pattern.isEmpty else { throw .emptyPattern }
        guard !pattern.utf8.contains(0) else { throw .outsideRoot(pattern: "(a path with a NUL byte)", match: nil) }
        var rest = pattern
        if pattern.hasPrefix("/") {
            guard let prefix = [path, configuredPath].first(where: { pattern.hasPrefix($0 == "/" ? "/" : $0 + "/") }) else {
                throw .outsideRoot(pattern: pattern, match: nil)
            }
            rest = String(pattern.dropFirst(prefix == "/" ? 1 : prefix.count + 1))
        }
        let components = rest.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
        guard !components.isEmpty else { throw .noFilesMatch(pattern: pattern) }
        guard !components.contains("..") else { throw .outsideRoot(pattern: pattern, match: nil) }
        guard components.count <= limits.maxComponents else { throw .tooDeep(pattern: pattern, limit: limits.maxComponents) }
        return components
    }

    private static func hasWildcard(_ text: String) -> Bool { text.contains(where: { "*?[".contains($0) }) }

    private static func matches(_ component: String, _ name: String) -> Bool {
        fnmatch(component, name, FNM_PERIOD) == 0
    }

    private func entries(of folder: String, pattern: String, visited: inout Int) throws(ImportError) -> [String] {
        guard let directory = opendir(folder) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            visited += 1
            if visited > limits.maxEntriesVisited { throw .patternTooBroad(pattern: pattern, limit: limits.maxEntriesVisited) }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// Why an import path was refused. Paths are shown relative to the import root.
public enum ImportError: Error, CustomStringConvertible, Sendable, Equatable {
    case disabled
    case rootUnusable(path: String, reason: String)
    case emptyPattern
    case outsideRoot(pattern: String, match: String?)
    case tooDeep(pattern: String, limit: Int)
    case patternTooBroad(pattern: String, limit: Int)
    case tooManyMatches(pattern: String, limit: Int)
    case noFilesMatch(pattern: String)
    case notRegularFile(path: String)
    case extensionNotAllowed(path: String, allowed: [String])

    public var description: String {
        switch self {
        case .disabled:
            "server-side file imports are off on this coordinator; start it with --import-root DIR to allow files below DIR, or stream the data from the client"
        case .rootUnusable(let path, let reason):
            "the import root \(path) cannot be used: \(reason)"
        case .emptyPattern:
            "no path given; name a file or glob below the coordinator's import root"
        case .outsideRoot(let pattern, let match):
            if let match {
                "\(pattern): \(match) resolves outside the import root; imports read only files below it"
            } else {
                "\(pattern) is outside the import root; give a path below it (relative to it, or absolute under it, without '..')"
            }
        case .tooDeep(let pattern, let limit):
            "\(pattern) has more than \(limit) path components"
        case .patternTooBroad(let pattern, let limit):
            "\(pattern) would look at more than \(limit) folder entries; narrow the pattern"
        case .tooManyMatches(let pattern, let limit):
            "\(pattern) matches more than \(limit) files; narrow the pattern"
        case .noFilesMatch(let pattern):
            "no files below the import root match \(pattern)"
        case .notRegularFile(let path):
            "\(path) is not a regular file"
        case .extensionNotAllowed(let path, let allowed):
            "\(path) does not end in " + allowed.map { "." + $0 }.joined(separator: ", ") + "; only those can be imported here"
        }
    }
}
