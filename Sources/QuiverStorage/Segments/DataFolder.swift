import Foundation

/// A worker data folder's identity and quarantine. The identity of a worker's data folder: a random id written when the folder is first used.
/// The coordinator remembers it per worker; a worker that comes back with another id lost (or
/// replaced) its data, and every list it held is refilled from replicas.
public enum DataFolder {
    static let fileName = "FOLDER-ID"

    public static func identity(dataDirectory: String) throws(CollectionStoreError) -> String {
        try FileSystem.makeDirectories(dataDirectory)
        let path = dataDirectory + "/" + fileName
        if let data = FileManager.default.contents(atPath: path),
           let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty {
            return text
        }
        let id = (0 ..< 4).map { _ in String(format: "%08x", UInt32.random(in: 0 ... .max)) }.joined()
        let file = try AtomicFileWriter(path: path) { CollectionStoreError.ioFailed(path: path, operation: "writing the folder id", reason: $0) }
        try file.append(Array((id + "\n").utf8))
        try file.commit()
        return id
    }

    /// Moves a collection folder that cannot be opened to `<data-dir>/damaged/`, out of the way of
    /// a fresh copy; returns where it went.
    public static func setAside(collection name: String, dataDirectory: String) throws(CollectionStoreError) -> String {
        let folder = CollectionStore.collectionsFolder(dataDirectory: dataDirectory) + "/" + name
        let damaged = dataDirectory + "/damaged"
        try FileSystem.makeDirectories(damaged)
        let target = damaged + "/\(name)-\(Int(Date().timeIntervalSince1970))-\(UInt16.random(in: 0 ... .max))"
        try FileSystem.move(folder, to: target)
        try FileSystem.syncDirectory(CollectionStore.collectionsFolder(dataDirectory: dataDirectory))
        return target
    }
}
