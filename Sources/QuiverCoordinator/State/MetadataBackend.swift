import Foundation
import QuiverStorage

#if canImport(Glibc)
import Glibc
#endif

/// Where the coordinator keeps its durable state: named byte strings under slash-separated
/// keys ("collections/docs/collection.json"). A folder on local disk for one coordinator, or
/// etcd for several (one leads, the others stand by; every write is fenced by the leadership).
///
/// Each write replaces one key atomically; `removeTree` removes a key prefix in one step.
public protocol MetadataBackend: Sendable {
    /// Names a key in messages ("/data/collections/docs/collection.json", "etcd key …").
    func describe(_ key: String) -> String
    func read(_ key: String) throws(CoordinatorError) -> [UInt8]?
    func write(_ key: String, _ bytes: [UInt8]) throws(CoordinatorError)
    func remove(_ key: String) throws(CoordinatorError)
    /// Removes every key below `prefix` (which ends in "/").
    func removeTree(_ prefix: String) throws(CoordinatorError)
    /// The names directly below `prefix` (which ends in "/"), sorted: keys and sub-prefixes.
    func children(_ prefix: String) throws(CoordinatorError) -> [String]
}

/// The state in a folder: a key is a path below it, written with `AtomicFile`.
public struct FileMetadata: MetadataBackend {
    public let root: String

    public init(root: String) throws(CoordinatorError) {
        self.root = root
        do {
            try FileManager.default.createDirectory(atPath: root + "/collections", withIntermediateDirectories: true)
        } catch {
            throw .internalError("cannot create the data directory \(root): \(error.localizedDescription)")
        }
    }

    public func describe(_ key: String) -> String { root + "/" + key }

    public func read(_ key: String) throws(CoordinatorError) -> [UInt8]? {
        let path = describe(key)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { throw .internalError("cannot read \(path)") }
        return [UInt8](data)
    }

    public func write(_ key: String, _ bytes: [UInt8]) throws(CoordinatorError) {
        let path = describe(key)
        let folder = (path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw .internalError("cannot create \(folder): \(error.localizedDescription)")
        }
        do {
            try AtomicFile.write(bytes, to: path)
        } catch {
            throw .internalError(error.description)
        }
    }

    public func remove(_ key: String) throws(CoordinatorError) {
        let path = describe(key)
        guard unlink(path) == 0 || errno == ENOENT else {
            throw .internalError("cannot remove \(path): \(String(cString: strerror(errno)))")
        }
    }

    public func removeTree(_ prefix: String) throws(CoordinatorError) {
        let directory = describe(String(prefix.dropLast()))
        // Rename first: one atomic step decides the removal, the recursive delete may be
        // interrupted (what is left under the dot name is cleared by the next listing).
        let parent = (directory as NSString).deletingLastPathComponent
        let doomed = parent + "/.dropped-\((directory as NSString).lastPathComponent)-\(UInt32.random(in: 0 ... .max))"
        guard rename(directory, doomed) == 0 || errno == ENOENT else {
            throw .internalError("cannot remove \(directory): \(String(cString: strerror(errno)))")
        }
        try? FileManager.default.removeItem(atPath: doomed)
    }

    public func children(_ prefix: String) throws(CoordinatorError) -> [String] {
        let directory = describe(String(prefix.dropLast()))
        var names: [String] = []
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
            if name.hasPrefix(".dropped-") {
                try? FileManager.default.removeItem(atPath: directory + "/" + name)
            } else if !name.hasPrefix(".") {
                names.append(name)
            }
        }
        return names
    }
}
