import AsyncHTTPClient
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization
import Testing
import TidingsPostgres
import TidingsTestSupport

@testable import TidingsSQLite
@testable import TidingsServer
@testable import TidingsStore

/// A real `NotificationServer` on a free loopback port over a temporary store of either engine
/// (a folder, or a new database of the test cluster), with clients.
final class ServerHarness: Sendable {
    static let secret = Array("test-secret-that-is-at-least-32-bytes-long".utf8)

    let engine: Engine
    let directory: String
    /// The store's database when the engine is PostgreSQL.
    let databaseURL: String?
    let configuration: ServerConfiguration
    let storeOptions: StoreOptions
    private let secretFile: String
    private let state = Mutex<(server: NotificationServer?, task: Task<Void, any Error>?, port: Int)>((nil, nil, 0))

    /// When set, every line the server logs, at every level, is kept here.
    let logs: LogCapture?

    init(
        engine: Engine = .sqlite, directory: String? = nil, logs: LogCapture? = nil,
        tune: (inout ServerConfiguration) -> Void = { _ in }, tuneStore: (inout StoreOptions) -> Void = { _ in }
    ) async throws {
        self.engine = engine
        databaseURL = engine == .postgres ? try PostgresCluster.shared().makeDatabase() : nil
        self.logs = logs
        let directory = directory ?? NSTemporaryDirectory() + "tidings-server-" + UUID().uuidString
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        secretFile = directory + ".secret"
        _ = FileManager.default.createFile(atPath: secretFile, contents: Data(Self.secret))
        var configuration = ServerConfiguration()
        configuration.port = 0
        tune(&configuration)
        self.configuration = configuration
        var storeOptions = StoreOptions()
        storeOptions.durability = .normal
        tuneStore(&storeOptions)
        self.storeOptions = storeOptions
        try await start()
    }

    /// Starts (or restarts) the server on the same store.
    func start() async throws {
        var logger =
            logs.map { capture in Logger(label: "test-server") { _ in capture.handler() } }
            ?? Logger(label: "test-server")
        // TIDINGS_TEST_LOG=debug shows the server's log while a test runs.
        logger.logLevel =
            ProcessInfo.processInfo.environment["TIDINGS_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .error
        if logs != nil { logger.logLevel = .trace }
        let store: any EventStore
        if let databaseURL {
            var options = PostgresOptions()
            options.connectionsMax = 8
            options.callDeadline = testPostgresCallDeadline
            store = try await PostgresStore.open(try PostgresLocation(databaseURL), options: options)
        } else {
            store = try await SQLiteStore.open(directory: directory, options: storeOptions)
        }
        let secret = try JWTSecret.load(generatedIn: directory, secretFile: secretFile)
        let server = NotificationServer(store: store, secret: secret, configuration: configuration, logger: logger)
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task { try await server.run { port in continuation.yield(port) } }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        state.withLock { $0 = (server, task, port) }
    }

    /// Graceful shutdown, as SIGTERM.
    func stop() async {
        let (server, task) = state.withLock { ($0.server, $0.task) }
        await server?.shutDown()
        _ = try? await task?.value
        state.withLock { $0 = (nil, nil, 0) }
    }

    var port: Int { state.withLock { $0.port } }
    var baseURL: String { "http://127.0.0.1:\(port)" }
    var store: any EventStore { state.withLock { $0.server!.store } }
    /// The embedded store, for the tests of what only it has.
    var sqliteStore: SQLiteStore { store as! SQLiteStore }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
        try? FileManager.default.removeItem(atPath: directory + ".secret")
    }

    // MARK: Tokens

    static func token(_ role: Role, _ subject: String, expiresIn seconds: Int64 = 3600) -> String {
        TokenSigner(secret: secret).token(
            subject: subject, role: role, expiresAt: Int64(Date().timeIntervalSince1970) + seconds)
    }

    static let admin = token(.admin, "ops")
    static let publisher = token(.publisher, "backend")
    static let auditor = token(.auditor, "audit")
    static func user(_ id: String) -> String { token(.user, id) }

    // MARK: HTTP

    struct Reply {
        let status: Int
        let headers: HTTPHeaders
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: JSONValue { (try? JSONValue.parse(body)) ?? .null }
    }

    func request(
        _ method: HTTPMethod, _ path: String, token: String? = nil, body: String? = nil,
        contentType: String? = "application/json", headers extra: [(String, String)] = []
    ) async throws -> Reply {
        try await request(
            method, path, token: token, bytes: body.map { Array($0.utf8) }, contentType: contentType, headers: extra)
    }

    func request(
        _ method: HTTPMethod, _ path: String, token: String? = nil, bytes: [UInt8]?,
        contentType: String? = "application/json", headers extra: [(String, String)] = []
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let bytes {
            request.body = .bytes(ByteBuffer(bytes: bytes))
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: Array(body.readableBytesView))
    }

    /// Appends through HTTP as the publisher; returns the envelopes.
    @discardableResult
    func append(_ events: [String]) async throws -> [JSONValue] {
        let reply = try await request(
            .POST, "/v1/events", token: Self.publisher, body: #"{"events":[\#(events.joined(separator: ","))]}"#)
        #expect(reply.status == 201 || reply.status == 200, "\(reply.text)")
        return reply.json["results"]?.arrayValue?.compactMap { $0["event"] } ?? []
    }

    static func created(_ user: String, _ notification: String, title: String = "Hello") -> String {
        #"{"type":"notification.created","user_id":"\#(user)","data":{"notification_id":"\#(notification)","title":"\#(title)"}}"#
    }

    // MARK: WebSocket

    /// A WebSocket client that collects what the server sends.
    final class StreamClient: Sendable {
        let messages = Mutex<[JSONValue]>([])
        let closeCode = Mutex<Int?>(nil)
        private let outbound = Mutex<WebSocketOutboundWriter?>(nil)
        private let finished = Mutex<CheckedContinuation<Void, Never>?>(nil)
        private let done = Mutex(false)
        let pauseReading = Mutex(false)

        func received() -> [JSONValue] { messages.withLock { $0 } }

        func send(_ text: String) async throws {
            guard let outbound = outbound.withLock({ $0 }) else { return }
            try await outbound.write(.text(text))
        }

        func close() async throws {
            try await outbound.withLock { $0 }?.close(.normalClosure, reason: nil)
        }

        /// Waits until `condition` holds for the messages so far (or the timeout passes).
        @discardableResult
        func wait(timeout: Duration = .seconds(10), until condition: ([JSONValue]) -> Bool) async -> [JSONValue] {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let current = received()
                if condition(current) { return current }
                if done.withLock({ $0 }) { return received() }
                try? await Task.sleep(for: .milliseconds(10))
            }
            return received()
        }

        func waitForClose(timeout: Duration = .seconds(15)) async -> Int? {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline && !done.withLock({ $0 }) {
                try? await Task.sleep(for: .milliseconds(20))
            }
            return closeCode.withLock { $0 }
        }

        func attach(_ writer: WebSocketOutboundWriter) { outbound.withLock { $0 = writer } }
        func record(_ value: JSONValue) { messages.withLock { $0.append(value) } }
        func end(code: Int?) {
            closeCode.withLock { $0 = code }
            done.withLock { $0 = true }
        }
    }

    /// Opens `/v1/stream`, sends `hello` (if given) and collects messages in the background.
    func stream(hello: String?, headers: [(String, String)] = [], query: String = "") async -> StreamClient {
        await Self.stream(port: port, hello: hello, headers: headers, query: query)
    }

    static func stream(
        port: Int, hello: String?, headers: [(String, String)] = [], query: String = ""
    ) async -> StreamClient {
        let client = StreamClient()
        var configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 20)
        for (name, value) in headers { configuration.additionalHeaders[.init(name)!] = value }
        let url = "ws://127.0.0.1:\(port)/v1/stream" + query
        var logger = Logger(label: "test-client")
        logger.logLevel = .critical
        let ready = AsyncStream<Void>.makeStream()
        Task {
            do {
                let frame = try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) {
                    inbound, outbound, _ in
                    client.attach(outbound)
                    ready.continuation.yield()
                    if let hello { try await outbound.write(.text(hello)) }
                    for try await message in inbound.messages(maxSize: 1 << 24) {
                        while client.pauseReading.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
                        if case .text(let text) = message { client.record((try? JSONValue.parse(text)) ?? .null) }
                    }
                }
                client.end(code: frame.map { Int(UInt16(webSocketErrorCode: $0.closeCode)) })
            } catch {
                client.end(code: nil)
            }
            ready.continuation.yield()
        }
        var iterator = ready.stream.makeAsyncIterator()
        _ = await iterator.next()
        return client
    }

    static func hello(token: String?, stream: String? = nil, user: String? = nil, cursor: String? = nil) -> String {
        var fields = [#""type":"hello""#]
        if let token { fields.append(#""token":"\#(token)""#) }
        if let stream { fields.append(#""stream":"\#(stream)""#) }
        if let user { fields.append(#""user_id":"\#(user)""#) }
        if let cursor { fields.append(#""cursor":"\#(cursor)""#) }
        return "{" + fields.joined(separator: ",") + "}"
    }
}

extension JSONValue {
    var type: String? { self["type"]?.stringValue }
    var seq: Int64? { self["event"]?["seq"]?.integerValue ?? self["seq"]?.integerValue }
}

/// Keeps every log line, message and metadata, as one string each.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }

    func handler() -> Handler { Handler(capture: self) }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            let line = "\(event.level) \(event.message) \(merged.map { "\($0)=\($1)" }.sorted().joined(separator: " "))"
            capture.lines.withLock { $0.append(line) }
        }
    }
}
