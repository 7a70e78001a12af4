internal import CHiredis
import Foundation

/// A reply from Redis, copied out of hiredis's `redisReply` (which is freed at once).
public indirect enum RedisReply: Equatable, Sendable {
    case string([UInt8])
    case status(String)
    case error(String)
    case integer(Int64)
    case null
    case array([RedisReply])

    /// Copies a hiredis reply tree. Unknown types become `.error`.
    init(_ reply: UnsafePointer<redisReply>) {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            self = .string(Self.bytes(value))
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: Self.bytes(value), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: Self.bytes(value), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            self = .integer(value.integer)
        case REDIS_REPLY_NIL:
            self = .null
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(Int(value.elements))
            for index in 0..<Int(value.elements) {
                if let element = value.element?[index] {
                    items.append(RedisReply(element))
                } else {
                    items.append(.null)
                }
            }
            self = .array(items)
        default:
            self = .error("unknown reply type \(value.type)")
        }
    }

    private static func bytes(_ value: redisReply) -> [UInt8] {
        guard let pointer = value.str, value.len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: Int(value.len)))
    }
}

/// A failure talking to Redis, with hiredis's text.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let message: String
    public var description: String { "redis \(operation): \(message)" }
}

/// One connection to Redis through hiredis's synchronous API. Owns its `redisContext` (freed
/// on deinit) and frees every reply as soon as it is copied. Not thread-safe: one thread uses
/// a connection. Commands go through `redisCommandArgv`/`redisAppendCommandArgv`, which are
/// binary-safe (no format strings).
public final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>

    public init(host: String, port: Int, timeout: Duration) throws {
        let (seconds, attoseconds) = timeout.components
        let interval = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        guard let context = redisConnectWithTimeout(host, Int32(port), interval) else {
            throw RedisError(operation: "connect \(host):\(port)", message: "cannot allocate a connection")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisError(operation: "connect \(host):\(port)", message: message)
        }
        self.context = context
    }

    deinit {
        redisFree(context)
    }

    /// The socket, for `poll`.
    public var fileDescriptor: Int32 { context.pointee.fd }

    /// Sends one command and waits for its reply.
    public func command(_ arguments: [String]) throws -> RedisReply {
        try command(arguments.map { Array($0.utf8) })
    }

    public func command(_ arguments: [[UInt8]]) throws -> RedisReply {
        let raw = withArgv(arguments) { count, argv, lengths in
            redisCommandArgv(context, count, argv, lengths)
        }
        guard let raw else { throw RedisError(operation: "command", message: Self.errorText(context)) }
        defer { freeReplyObject(raw) }
        let reply = RedisReply(raw.assumingMemoryBound(to: redisReply.self))
        if case .error(let message) = reply {
            throw RedisError(operation: String(decoding: arguments.first ?? [], as: UTF8.self), message: message)
        }
        return reply
    }

    /// Queues a command in the output buffer (pipelining); `flush` sends it.
    public func append(_ arguments: [[UInt8]]) throws {
        let status = withArgv(arguments) { count, argv, lengths in
            redisAppendCommandArgv(context, count, argv, lengths)
        }
        guard status == REDIS_OK else { throw RedisError(operation: "append", message: Self.errorText(context)) }
    }

    /// Writes everything queued.
    public func flush() throws {
        var done: Int32 = 0
        while done == 0 {
            guard redisBufferWrite(context, &done) == REDIS_OK else {
                throw RedisError(operation: "write", message: Self.errorText(context))
            }
        }
    }

    /// Waits for and returns the next reply (blocking, within the connection's timeout).
    public func nextReply() throws -> RedisReply {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
            throw RedisError(operation: "read", message: Self.errorText(context))
        }
        defer { freeReplyObject(raw) }
        return RedisReply(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Reads what the socket has (call when `poll` says it is readable) and returns every
    /// complete reply. Throws when the connection is closed or broken.
    public func readAvailable() throws -> [RedisReply] {
        guard redisBufferRead(context) == REDIS_OK else {
            throw RedisError(operation: "read", message: Self.errorText(context))
        }
        var replies: [RedisReply] = []
        while true {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReplyFromReader(context, &raw) == REDIS_OK else {
                throw RedisError(operation: "parse", message: Self.errorText(context))
            }
            guard let raw else { return replies }
            replies.append(RedisReply(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
    }

    private func withArgv<T>(
        _ arguments: [[UInt8]],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T
    ) -> T {
        let buffers = arguments.map { argument -> UnsafeMutablePointer<CChar> in
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(argument.count, 1))
            argument.withUnsafeBytes { bytes in
                if let base = bytes.baseAddress {
                    buffer.update(from: base.assumingMemoryBound(to: CChar.self), count: argument.count)
                }
            }
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        var pointers = buffers.map { UnsafePointer<CChar>?($0) }
        let lengths = arguments.map(\.count)
        return pointers.withUnsafeMutableBufferPointer { argv in
            lengths.withUnsafeBufferPointer { lengths in
                body(Int32(arguments.count), argv.baseAddress!, lengths.baseAddress!)
            }
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            let text = bytes.prefix { $0 != 0 }
            return text.isEmpty ? "connection error \(context.pointee.err)" : String(decoding: text, as: UTF8.self)
        }
    }
}

/// `redis://host:port/db`.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int
    public let database: Int

    public init?(_ text: String) {
        guard let url = URL(string: text), url.scheme == "redis", let host = url.host, !host.isEmpty else { return nil }
        self.host = host
        port = url.port ?? 6379
        let path = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard path.isEmpty || Int(path) != nil else { return nil }
        database = Int(path) ?? 0
        guard (1...65_535).contains(port), database >= 0 else { return nil }
    }

    public var description: String { "redis://\(host):\(port)/\(database)" }
}
