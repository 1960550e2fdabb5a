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

extension CallStreamTests {
    @Test func aCancelledCallSendsACancelMessage() async throws {
        let sent = Mutex<[Request]>([])
        let stream = CallStream<Request, Response>(open: { requests, _ in
            for await request in requests { sent.withLock { $0.append(request) } }
        }, setID: { $0.requestID = $1 }, responseID: \.requestID, cancelMessage: { id in
            var cancel = Request()
            cancel.requestID = id
            cancel.cancel = true
            return cancel
        })
        let call = Task { try await stream.call(Self.request(k: 1), timeout: nil) }
        while sent.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(1)) }
        call.cancel()
        await #expect(throws: CancellationError.self) { _ = try await call.value }
        while sent.withLock({ $0.count < 2 }) { try await Task.sleep(for: .milliseconds(1)) }
        let messages = sent.withLock { $0 }
        #expect(messages[1].cancel && messages[1].requestID == messages[0].requestID)
        stream.close()
    }

    /// Requests 1 (never finishes on its own), a cancel of 1, then 2: both are answered, 1 as
    /// cancelled (k 0), 2 normally.
    @Test func servingCancelsTheTaskAnsweringACancelledID() async throws {
        var slow = Self.request(k: 1)
        slow.requestID = 1
        var cancel = Request()
        cancel.requestID = 1
        cancel.cancel = true
        var quick = Self.request(k: 2)
        quick.requestID = 2
        let (requests, feed) = AsyncThrowingStream.makeStream(of: Request.self)
        let written = Collector()
        feed.yield(slow)
        let serving = Task {
            try await CallStream<Request, Response>.serve(
                RPCAsyncSequence(wrapping: requests), writer: RPCWriter(wrapping: written),
                requestID: \.requestID, cancelledID: { $0.cancel ? $0.requestID : nil }
            ) { request in
                var response = Response()
                response.requestID = request.requestID
                if request.search.k == 1 { try? await Task.sleep(for: .seconds(60)) }
                response.result.results.k = Task.isCancelled ? 0 : request.search.k
                return response
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        feed.yield(cancel)
        feed.yield(quick)
        feed.finish()
        try await serving.value
        let answers = Dictionary(uniqueKeysWithValues: written.responses.withLock { $0 }.map { ($0.requestID, $0.result.results.k) })
        #expect(answers == [1: 0, 2: 2])
    }
}

extension CallStreamTests {
    /// With room for 2 calls, a third is not even read until one of the first two is answered
    /// and written: a flood of requests waits in the transport, not in the server's memory.
    @Test func servingHoldsAtMostMaxInFlightCalls() async throws {
        let (requests, feed) = AsyncThrowingStream.makeStream(of: Request.self)
        let written = Collector()
        let started = Counter()
        let release = Counter()
        for id in 1 ... 5 {
            var request = Self.request(k: 1)
            request.requestID = UInt64(id)
            feed.yield(request)
        }
        feed.finish()
        let serving = Task {
            try await CallStream<Request, Response>.serve(
                RPCAsyncSequence(wrapping: requests), writer: RPCWriter(wrapping: written), maxInFlight: 2,
                requestID: \.requestID, cancelledID: { $0.cancel ? $0.requestID : nil }
            ) { request in
                started.value.add(1, ordering: .relaxed)
                while release.value.load(ordering: .relaxed) < Int(request.requestID) { try? await Task.sleep(for: .milliseconds(1)) }
                var response = Response()
                response.requestID = request.requestID
                return response
            }
        }
        // Two start (however slow the machine); a third must not, however long we wait.
        for _ in 0 ..< 1000 where started.value.load(ordering: .relaxed) < 2 { try await Task.sleep(for: .milliseconds(10)) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(started.value.load(ordering: .relaxed) == 2)
        release.value.store(5, ordering: .relaxed)
        try await serving.value
        #expect(started.value.load(ordering: .relaxed) == 5)
        #expect(written.responses.withLock { $0.count } == 5)
    }
}

final class Collector: RPCWriterProtocol {
    let responses = Mutex<[Quiver_V1_SearchListsStreamResponse]>([])
    func write(_ element: Quiver_V1_SearchListsStreamResponse) async throws { responses.withLock { $0.append(element) } }
    func write(contentsOf elements: some Sequence<Quiver_V1_SearchListsStreamResponse>) async throws {
        responses.withLock { $0.append(contentsOf: elements) }
    }
}

final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
