import Logging
import NIOCore
import PostgresNIO
import Synchronization
import TidingsStore

/// Listens on a connection of its own for the notifications nodes send after each commit
/// (`tidings_log`) and when applications insert into the outbox (`tidings_outbox`). A dropped
/// connection is opened again after a second; the log's listeners are then told the log may
/// have advanced, so whatever was committed meanwhile is read from the log: nothing is lost.
final class LogListener: Sendable {
    private let servers: PostgresServers
    private let context: PostgresContext
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(servers: PostgresServers, context: PostgresContext) {
        self.servers = servers
        self.context = context
    }

    func start(outboxChanged: @escaping @Sendable () -> Void) {
        let servers = servers
        let context = context
        let poll = Duration.milliseconds(context.options.outboxPollMilliseconds)
        task.withLock {
            $0 = Task {
                // The outbox is looked at every `poll` even when no notification came.
                let ticker = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: poll)
                        outboxChanged()
                    }
                }
                defer { ticker.cancel() }
                while !Task.isCancelled {
                    var server: Int?
                    do {
                        let (connection, index) = try await servers.connectDirectly()
                        server = index
                        defer { Task { try? await connection.close() } }
                        try await Self.listenUntilLost(connection, context: context, outboxChanged: outboxChanged)
                    } catch {
                        if Task.isCancelled { return }
                        context.logger.debug("LISTEN connection lost", metadata: ["error": "\(error)"])
                    }
                    if let server { servers.connectionLost(server: server) }
                    Self.logAdvanced(context)
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Listens until the connection fails, or until its server stops answering: a connection
    /// whose host was cut off would wait for notifications for ever, so a query now and then
    /// checks it, and the listener gives up on it without waiting for the driver to notice.
    private static func listenUntilLost(
        _ connection: PostgresConnection, context: PostgresContext, outboxChanged: @escaping @Sendable () -> Void
    ) async throws {
        let ended = Outcome<Void>()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                ended.start(continuation)
                let listening = Task {
                    do {
                        try await listen(connection, context: context, outboxChanged: outboxChanged)
                        ended.finish(.success(()))
                    } catch {
                        ended.finish(.failure(error))
                    }
                }
                let heartbeat = Task {
                    do {
                        while true {
                            try await Task.sleep(for: heartbeatInterval)
                            try await connection.answering(within: heartbeatTimeout) { connection in
                                try await connection.run("SELECT 1", logger: context.logger)
                            }
                        }
                    } catch {
                        ended.finish(.failure(error))
                    }
                }
                ended.onFinish {
                    listening.cancel()
                    heartbeat.cancel()
                }
            }
        } onCancel: {
            ended.finish(.failure(CancellationError()))
        }
    }

    private static func listen(
        _ connection: PostgresConnection, context: PostgresContext, outboxChanged: @escaping @Sendable () -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await connection.listen(on: "tidings_outbox") { notifications in
                    for try await _ in notifications { outboxChanged() }
                }
            }
            group.addTask {
                try await connection.listen(on: "tidings_log") { notifications in
                    // Listening from here: whatever was committed before is read once now.
                    logAdvanced(context)
                    for try await _ in notifications { logAdvanced(context) }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// How often the listening connection is asked a question, and how long its answer may take.
    static let heartbeatInterval: Duration = .seconds(10)
    static let heartbeatTimeout: Duration = .seconds(5)

    private static func logAdvanced(_ context: PostgresContext) {
        for listener in context.logAdvanced.withLock({ $0 }) { listener() }
    }

    func stop() {
        task.withLock {
            $0?.cancel()
            $0 = nil
        }
    }
}
