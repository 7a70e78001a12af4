import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization

/// A client of one Tidings server: streams (`stream(_:)`), the inbox calls, and publishing that
/// never appends twice. docs/CLIENTS.md says what it promises, docs/PROTOCOL.md what it speaks.
///
///     let client = TidingsClient(url: "https://tidings.example.com", getToken: { try await myToken() })
///     for try await item in client.stream(cursorStore: FileCursorStore(cursorFile)) {
///         if case .event(let event) = item { show(event.envelope, event.counts) }
///     }
public final class TidingsClient: Sendable {
    /// The server, `https://host:port`.
    public let url: String
    /// How long an HTTP request or a stream ack may take.
    public let timeout: Duration
    /// Tries of a publish after the first.
    public let retries: Int
    private let fixedToken: String?
    private let getToken: (@Sendable () async throws -> String)?
    private let cachedToken = Mutex<String?>(nil)

    /// A client with a fixed token.
    public init(url: String, token: String, timeout: Duration = .seconds(10), retries: Int = 6) {
        self.url = Self.trimmed(url)
        fixedToken = token
        getToken = nil
        self.timeout = timeout
        self.retries = retries
    }

    /// A client that asks `getToken` for a token when it has none, before the one it has
    /// expires, and when the server refuses it.
    public init(
        url: String, timeout: Duration = .seconds(10), retries: Int = 6,
        getToken: @escaping @Sendable () async throws -> String
    ) {
        self.url = Self.trimmed(url)
        fixedToken = nil
        self.getToken = getToken
        self.timeout = timeout
        self.retries = retries
    }

    private static func trimmed(_ url: String) -> String {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// The stream's address: `ws://` or `wss://` beside the HTTP one.
    var streamURL: String {
        (url.hasPrefix("https") ? "wss" + url.dropFirst(5) : "ws" + url.dropFirst(4)) + "/v1/stream"
    }

    var refreshesTokens: Bool { getToken != nil }

    /// The token to send: the fixed one, or `getToken`'s (asked again when `fresh`, or when the
    /// one it gave expires within 30 s).
    public func token(fresh: Bool = false) async throws -> String {
        if let fixedToken { return fixedToken }
        if !fresh, let cached = cachedToken.withLock({ $0 }),
            (tokenExpiry(cached).map { $0.timeIntervalSinceNow > 30 } ?? true)
        {
            return cached
        }
        let token = try await getToken!()
        cachedToken.withLock { $0 = token }
        return token
    }

    // MARK: Streams

    /// A stream of `GET /v1/stream` from the cursor in `cursorStore`, iterated with `for try await`.
    public func stream(
        cursorStore: any CursorStore, stream: TidingsStream.Kind = .user(nil),
        refreshBeforeExpiry: Duration = .seconds(30)
    ) -> TidingsStream {
        TidingsStream(client: self, cursorStore: cursorStore, kind: stream, refreshBeforeExpiry: refreshBeforeExpiry)
    }

    // MARK: The inbox

    /// `GET /v1/users/{user_id}/unread`.
    public func unread(userID: String, limit: Int? = nil) async throws -> UnreadAnswer {
        struct Answer: Decodable {
            var notifications: [Envelope]
            var cursor: String
        }
        let data = try await request("GET", Self.userPath(userID, "unread", ["limit": limit.map(String.init)]))
        let answer = try Self.decode(Answer.self, data)
        return UnreadAnswer(
            counts: try Self.decode(CountsFields.self, data).counts, notifications: answer.notifications,
            cursor: answer.cursor)
    }

    /// `GET /v1/users/{user_id}/notifications`: newest first, with their states.
    public func notifications(
        userID: String, before: String? = nil, state: String? = nil, kind: String? = nil, limit: Int? = nil
    ) async throws -> NotificationList {
        struct Answer: Decodable {
            var notifications: [ListedNotification]
            var cursor: String
            var nextBefore: String
            var hasMore: Bool

            enum CodingKeys: String, CodingKey {
                case notifications, cursor
                case nextBefore = "next_before"
                case hasMore = "has_more"
            }
        }
        let query = ["before": before, "state": state, "kind": kind, "limit": limit.map(String.init)]
        let data = try await request("GET", Self.userPath(userID, "notifications", query))
        let answer = try Self.decode(Answer.self, data)
        return NotificationList(
            notifications: answer.notifications, counts: try Self.decode(CountsFields.self, data).counts,
            cursor: answer.cursor, nextBefore: answer.nextBefore, hasMore: answer.hasMore)
    }

    /// `GET /v1/users/{user_id}/events`: a page of the user stream after `after`.
    public func userEvents(userID: String, after: String? = nil, limit: Int? = nil) async throws -> EventPage {
        let data = try await request(
            "GET", Self.userPath(userID, "events", ["after": after, "limit": limit.map(String.init)]))
        return try Self.decode(EventPage.self, data)
    }

    /// `POST /v1/users/{user_id}/mark`.
    public func mark(userID: String, _ change: StateChange) async throws -> MarkAnswer {
        struct Answer: Decodable {
            var changed: [String]
            var cursor: String
        }
        let data = try await request("POST", Self.userPath(userID, "mark", [:]), body: try JSONEncoder().encode(change))
        let answer = try Self.decode(Answer.self, data)
        return MarkAnswer(
            changed: answer.changed, counts: try Self.decode(CountsFields.self, data).counts, cursor: answer.cursor)
    }

    // MARK: Publishing

    /// Appends a batch (one result per event, in order). Events without an id get a UUID here,
    /// before the first try, so a retry after a lost answer is a `duplicate`. Retries, with
    /// back-off, on 503, timeouts and network failures only.
    public func publish(_ events: [NewEvent]) async throws -> [AppendResult] {
        struct Body: Encodable { var events: [NewEvent] }
        struct Answer: Decodable { var results: [AppendResult] }
        let identified = events.map { event in
            var event = event
            if event.id == nil { event.id = UUID().uuidString.lowercased() }
            return event
        }
        let body = try JSONEncoder().encode(Body(events: identified))
        var attempt = 0
        while true {
            do {
                return try Self.decode(Answer.self, try await request("POST", "/v1/events", body: body)).results
            } catch let error as TidingsError
                where (error.status == 503 || error.code == "network" || error.code == "timeout") && attempt < retries
            {
                try await Task.sleep(for: Backoff.delay(attempt))
                attempt += 1
            }
        }
    }

    /// Appends one event.
    public func publish(_ event: NewEvent) async throws -> AppendResult {
        try await publish([event])[0]
    }

    // MARK: HTTP

    /// Calls any route; returns the answer's body, or throws a TidingsError.
    public func request(_ method: String, _ path: String, body: Data? = nil) async throws -> Data {
        var request = HTTPClientRequest(url: url + path)
        request.method = .RAW(value: method)
        request.headers.add(name: "Authorization", value: "Bearer \(try await token())")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: body))
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw TidingsError("timeout", "no answer within \(timeout)")
        } catch {
            throw TidingsError("network", "the server cannot be reached (\(error))")
        }
        let data = Data(buffer: bytes)
        guard (200..<300).contains(Int(response.status.code)) else {
            struct ErrorBody: Decodable {
                struct Fields: Decodable {
                    var code: String
                    var message: String
                    var index: Int?
                }
                var error: Fields
            }
            let status = Int(response.status.code)
            if let body = try? JSONDecoder().decode(ErrorBody.self, from: data) {
                throw TidingsError(body.error.code, body.error.message, status: status, index: body.error.index)
            }
            throw TidingsError(status == 503 ? "unavailable" : "http", "the server answered \(status)", status: status)
        }
        return data
    }

    static func userPath(_ user: String, _ route: String, _ query: [String: String?]) -> String {
        let encoded = user.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? user
        let pairs = query.compactMap { key, value in
            value.map {
                "\(key)=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(["&", "=", "+"])) ?? $0)"
            }
        }.sorted()
        return "/v1/users/\(encoded)/\(route)" + (pairs.isEmpty ? "" : "?" + pairs.joined(separator: "&"))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw TidingsError("bad_answer", "the server's answer does not parse as \(type) (\(error))")
        }
    }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
