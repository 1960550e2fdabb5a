import GRPCCore
import QuiverProtocol
import Synchronization
import Testing

/// `CallStream` over an in-memory stream: answers find their callers whatever the order, a late
/// answer becomes DEADLINE_EXCEEDED, and a failed stream fails its waiting calls and reopens.
@Suite struct CallStreamTests {
    typealias Request = Quiver_V1_SearchListsStreamRequest
    typealias Response = Quiver_V1_SearchListsStreamResponse

    /// Echoes each request's `k` back as the answer's `results.k`, holding every answer until
    /// `batch` requests have arrived and then answering them in reverse order.
    static func reversingStream(batch: Int, opened: Counter) -> CallStream<Request, Response> {
        CallStream(open: { requests, receive in
            opened.value.add(1, ordering: .relaxed)
            var held: [Request] = []
            for await request in requests {
                held.append(request)
                if held.count == batch {
                    for request in held.reversed() {
                        var response = Response()
                        response.requestID = request.requestID
                        response.result.results.k = request.search.k
                        receive(response)
                    }
                    held = []
                }
            }
        }, setID: { $0.requestID = $1 }, responseID: \.requestID)
    }

    static func request(k: UInt32) -> Request {
        var request = Request()
        request.search.k = k
        return request
    }

    @Test func answersReachTheirCallersInAnyOrder() async throws {
        let opened = Counter()
        let stream = Self.reversingStream(batch: 8, opened: opened)
        let answers = try await withThrowingTaskGroup(of: (UInt32, UInt32).self) { group in
            for k in 1 ... 8 as ClosedRange<UInt32> {
                group.addTask { (k, try await stream.call(Self.request(k: k), timeout: .seconds(10)).result.results.k) }
            }
            var answers: [(UInt32, UInt32)] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
        #expect(answers.count == 8)
        #expect(answers.allSatisfy { $0.0 == $0.1 })
        #expect(opened.value.load(ordering: .relaxed) == 1)
        stream.close()
    }

    @Test func aCallPastItsTimeLimitFailsWithDeadlineExceeded() async {
        let stream = Self.reversingStream(batch: 2, opened: Counter())
        do {
            _ = try await stream.call(Self.request(k: 1), timeout: .milliseconds(50))
            Issue.record("a call that is never answered returned")
        } catch {
            #expect((error as? RPCError)?.code == .deadlineExceeded)
        }
        stream.close()
    }

    @Test func aFailedStreamFailsItsCallsAndReopens() async throws {
        let opened = Counter()
        let stream = CallStream<Request, Response>(open: { requests, receive in
            let attempt = opened.value.add(1, ordering: .relaxed).newValue
            for await request in requests {
                if attempt == 1 { throw RPCError(code: .unavailable, message: "connection lost") }
                var response = Response()
                response.requestID = request.requestID
                receive(response)
            }
        }, setID: { $0.requestID = $1 }, responseID: \.requestID)
        do {
            _ = try await stream.call(Self.request(k: 1), timeout: .seconds(10))
            Issue.record("the call on the failed stream returned")
        } catch {
            #expect((error as? RPCError)?.code == .unavailable)
        }
        _ = try await stream.call(Self.request(k: 2), timeout: .seconds(10))
        #expect(opened.value.load(ordering: .relaxed) == 2)
        stream.close()
        await #expect(throws: RPCError.self) { _ = try await stream.call(Self.request(k: 3), timeout: .seconds(1)) }
    }
}

final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
