import Foundation
import GRPCCore
import Testing

@testable import QuiverProtocol

@Suite struct GRPCTimeoutHeaderTests {
    @Test func wellFormedHeadersParse() {
        #expect(GRPCTimeoutHeader.parse("5S") == .seconds(5))
        #expect(GRPCTimeoutHeader.parse("250m") == .milliseconds(250))
        #expect(GRPCTimeoutHeader.parse("99999999H") == .seconds(99_999_999 * 3600))
        #expect(GRPCTimeoutHeader.parse("0n") == .zero)
        #expect(GRPCTimeoutHeader.problem("1M") == nil)
    }

    @Test func everythingElseIsRefused() {
        for value in ["-1S", "+1S", "1.5S", "999999999H", "9999999999999999H", "S", "5", "5X", "", " 5S", "5S ", "٣S"] {
            #expect(GRPCTimeoutHeader.parse(value) == nil, "\(value)")
            #expect(GRPCTimeoutHeader.problem(value) != nil, "\(value)")
        }
    }

    @Test func grpcMessagesArePercentEncoded() {
        #expect(RequestHeaderGuard.percentEncoded("50% off\n") == "50%25 off%0A")
    }
}

@Suite struct AccessTokensTests {
    @Test func tokensFileGrantsRoles() throws {
        let path = NSTemporaryDirectory() + "/quiver-tokens-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# role name token\nadmin ops aaaaaaaaaaaaaaaaaaaa\n\nwrite  loader\tbbbbbbbbbbbbbbbbbbbb  # the loader\nread web cccccccccccccccccccc\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let tokens = try AccessTokens.load(path: path)
        #expect(tokens.entry(forToken: "aaaaaaaaaaaaaaaaaaaa")?.role == .admin)
        #expect(tokens.entry(forToken: "bbbbbbbbbbbbbbbbbbbb")?.name == "loader")
        #expect(tokens.entry(forToken: "cccccccccccccccccccc")?.role == .read)
        #expect(tokens.entry(forToken: "cccccccccccccccccccd") == nil)
        #expect(tokens.entry(forToken: "") == nil)
        #expect(AccessRole.admin > .write && AccessRole.write > .read)
    }

    @Test func badTokenFilesAreRefusedWithTheLine() throws {
        let path = NSTemporaryDirectory() + "/quiver-tokens-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        for (text, expected) in [("root ops aaaaaaaaaaaaaaaaaaaa\n", "line 1"), ("read web short\n", "at least 16"),
                                 ("read a aaaaaaaaaaaaaaaaaaaa\nread b aaaaaaaaaaaaaaaaaaaa\n", "repeats"),
                                 ("read web\n", "three fields"), ("\n# nothing\n", "no tokens")] {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            #expect(throws: CredentialError.self) { try AccessTokens.load(path: path) }
            do {
                _ = try AccessTokens.load(path: path)
            } catch {
                #expect(error.description.contains(expected), "\(error.description)")
            }
        }
        #expect(throws: CredentialError.self) { try JoinToken("tiny") }
    }

    @Test func bearerTokensAreReadFromMetadata() {
        #expect(bearerToken(in: ["authorization": "Bearer abc"]) == "abc")
        #expect(bearerToken(in: ["authorization": "bearer   abc "]) == "abc")
        #expect(bearerToken(in: ["authorization": "Basic abc"]) == nil)
        #expect(bearerToken(in: [:]) == nil)
    }
}

@Suite struct LeaderEpochTests {
    @Test func workersRefuseCallsFromAnOlderLeadership() throws {
        let epochs = LeaderEpochInterceptor()
        try epochs.admit(5)
        try epochs.admit(5)
        #expect(throws: RPCError.self) { try epochs.admit(4) }
        try epochs.admit(9)
        let refused = #expect(throws: RPCError.self) { try epochs.admit(5) }
        #expect(refused?.code == .failedPrecondition && refused?.message.contains("epoch 9") == true)
        try epochs.admit(9)
    }
}
