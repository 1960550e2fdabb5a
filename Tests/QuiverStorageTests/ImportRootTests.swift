import Foundation
import Testing

@testable import QuiverStorage

@Suite struct ImportRootTests {
    private func tree() throws -> (TemporaryDirectory, ImportRoot) {
        let dir = try TemporaryDirectory()
        for name in ["a/base.1.npy", "a/base.2.npy", "a/base.10.npy", "a/ids.npy", "b/c/deep.fvecs", "notes.txt"] {
            try FileManager.default.createDirectory(atPath: dir.file("root/" + (name as NSString).deletingLastPathComponent),
                                                    withIntermediateDirectories: true)
            try dir.write("root/" + name, [1])
        }
        try dir.write("outside.npy", [1])
        return (dir, try ImportRoot(dir.file("root")))
    }

    @Test func globsExpandInsideTheRootInNaturalOrder() throws {
        let (dir, root) = try tree()
        let files = try root.files(matching: "a/base.*.npy", extensions: ["npy"])
        #expect(files.map { root.relative($0) } == ["a/base.1.npy", "a/base.2.npy", "a/base.10.npy"])
        // An absolute path under the root, as configured, names the same files.
        #expect(try root.files(matching: dir.file("root/a/base.*.npy"), extensions: ["npy"]) == files)
        #expect(try root.files(matching: "*/*/*.fvecs", extensions: ["fvecs"]).map { root.relative($0) } == ["b/c/deep.fvecs"])
    }

    @Test func nothingOutsideTheRootIsReachable() throws {
        let (dir, root) = try tree()
        #expect(symlink(dir.file("outside.npy"), dir.file("root/a/link.npy")) == 0)
        #expect(symlink(dir.path, dir.file("root/up")) == 0)
        for pattern in ["../outside.npy", "a/../../outside.npy", dir.file("outside.npy"), "/etc/passwd", "/*/*.npy"] {
            #expect(throws: ImportError.self, "\(pattern)") { try root.files(matching: pattern, extensions: ["npy"]) }
        }
        #expect(throws: ImportError.outsideRoot(pattern: "a/link.npy", match: "a/link.npy")) {
            try root.files(matching: "a/link.npy", extensions: ["npy"])
        }
        // A glob that meets the link refuses the whole pattern rather than silently skipping it.
        #expect(throws: ImportError.self) { try root.files(matching: "a/*.npy", extensions: ["npy"]) }
        // A symlinked folder leading out is not listed.
        #expect(throws: ImportError.noFilesMatch(pattern: "up/*.npy")) { try root.files(matching: "up/*.npy", extensions: ["npy"]) }
    }

    @Test func onlyRegularFilesWithAllowedExtensions() throws {
        let (dir, root) = try tree()
        #expect(mkfifo(dir.file("root/a/pipe.npy"), 0o644) == 0)
        #expect(throws: ImportError.notRegularFile(path: "a/pipe.npy")) { try root.files(matching: "a/pipe.npy", extensions: ["npy"]) }
        #expect(throws: ImportError.extensionNotAllowed(path: "notes.txt", allowed: ["npy"])) {
            try root.files(matching: "notes.txt", extensions: ["npy"])
        }
        #expect(throws: ImportError.noFilesMatch(pattern: "missing.npy")) { try root.files(matching: "missing.npy", extensions: ["npy"]) }
        #expect(throws: ImportError.emptyPattern) { try root.files(matching: "", extensions: ["npy"]) }
    }

    @Test func broadPatternsStopAtTheLimits() throws {
        let (dir, _) = try tree()
        var limits = ImportRoot.Limits()
        limits.maxEntriesVisited = 5
        let tight = try ImportRoot(dir.file("root"), limits: limits)
        #expect(throws: ImportError.patternTooBroad(pattern: "*/*/*", limit: 5)) { try tight.files(matching: "*/*/*", extensions: ["npy"]) }
        limits = ImportRoot.Limits()
        limits.maxMatches = 2
        let few = try ImportRoot(dir.file("root"), limits: limits)
        #expect(throws: ImportError.tooManyMatches(pattern: "a/*.npy", limit: 2)) { try few.files(matching: "a/*.npy", extensions: ["npy"]) }
        #expect(throws: ImportError.self) { try ImportRoot(dir.file("missing")) }
        #expect(throws: ImportError.self) { try ImportRoot(dir.file("notes.txt")) }
    }

    @Test func opensOfSpecialFilesFailAtOnce() throws {
        let dir = try TemporaryDirectory()
        #expect(mkfifo(dir.file("pipe.npy"), 0o644) == 0)
        // Without O_NONBLOCK this open would wait for a writer forever.
        #expect(throws: DatasetError.self) { try VectorDataset(path: dir.file("pipe.npy")) }
        let bad = try dir.write("bad.npy", Array("SECRET-BYTES-HERE".utf8))
        do {
            _ = try VectorDataset(path: bad)
            Issue.record("a file without the .npy magic was opened")
        } catch {
            #expect(!error.descriptionWithoutContents.contains("53 45"))
            #expect(!error.descriptionWithoutContents.contains("SECRET"))
        }
    }
}
