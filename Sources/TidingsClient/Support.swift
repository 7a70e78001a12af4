public import Foundation
import Synchronization

/// The back-off every Tidings client uses between tries (docs/CLIENTS.md): full jitter, a
/// uniform draw from 0 to min(20 s, 0.5 s x 2^attempt).
public enum Backoff {
    public static let first: Duration = .milliseconds(500)
    public static let maximum: Duration = .seconds(20)

    /// The window the wait before try `attempt` (0 for the first retry) is drawn from.
    public static func window(_ attempt: Int) -> ClosedRange<Duration> {
        let ceiling = min(maximum, first * (1 << min(attempt, 16)))
        return .zero...ceiling
    }

    /// The wait before try `attempt`; `draw` gives a number in [0, 1].
    public static func delay(_ attempt: Int, draw: () -> Double = { Double.random(in: 0...1) }) -> Duration {
        window(attempt).upperBound * draw()
    }
}

/// A JWT's `exp`, read without checking its signature (the server checks it); nil when the
/// token has none or is not a JWT.
public func tokenExpiry(_ token: String) -> Date? {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3 else { return nil }
    var base64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
    guard let data = Data(base64Encoded: base64),
        let claims = try? JSONDecoder().decode([String: TidingsJSON].self, from: data),
        case .number(let expiry) = claims["exp"]
    else { return nil }
    return Date(timeIntervalSince1970: expiry)
}

/// Where a stream keeps the cursor of the last event the application processed.
public protocol CursorStore: Sendable {
    func load() throws -> String?
    func save(_ cursor: String) throws
}

/// Keeps the cursor in memory only: a new process starts from the stream's start (or `initial`).
public final class MemoryCursorStore: CursorStore {
    private let cursor: Mutex<String?>

    public init(_ initial: String? = nil) { cursor = Mutex(initial) }

    public func load() -> String? { cursor.withLock { $0 } }
    public func save(_ cursor: String) { self.cursor.withLock { $0 = cursor } }
}

/// Keeps the cursor in a file, replaced atomically, so a crash leaves the old cursor or the new
/// one, never half of one.
public struct FileCursorStore: CursorStore {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    public func load() throws -> String? {
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    public func save(_ cursor: String) throws {
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data((cursor + "\n").utf8).write(to: url, options: .atomic)
    }
}

/// A first-in first-out handoff between one producer and one consumer that holds at most
/// `capacity` items: `put` waits while it is full, so a slow consumer slows the reading of the
/// socket (and the server, seeing a slow reader, feeds it from the log), never memory.
final class BoundedQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var taker: CheckedContinuation<Element?, Never>?
        var putter: CheckedContinuation<Void, Never>?
        var finished = false
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    /// Adds `item`, waiting while the queue is full; drops it once the queue is finished.
    func put(_ item: Element) async {
        while true {
            let wait: Bool = state.withLock { state in
                if state.finished { return false }
                if let taker = state.taker {
                    state.taker = nil
                    taker.resume(returning: item)
                    return false
                }
                if state.items.count < capacity {
                    state.items.append(item)
                    return false
                }
                return true
            }
            guard wait else { return }
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.finished || state.items.count < capacity { return true }
                    state.putter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// The next item, waiting while there is none; nil once the queue is finished and empty.
    func take() async -> Element? {
        await withCheckedContinuation { continuation in
            let ready: (Element?, Bool, CheckedContinuation<Void, Never>?) = state.withLock { state in
                if !state.items.isEmpty {
                    let putter = state.putter
                    state.putter = nil
                    return (state.items.removeFirst(), true, putter)
                }
                if state.finished { return (nil, true, nil) }
                state.taker = continuation
                return (nil, false, nil)
            }
            ready.2?.resume()
            if ready.1 { continuation.resume(returning: ready.0) }
        }
    }

    /// Ends the queue: waiting calls return, later puts are dropped, takes drain what is left.
    func finish() {
        let waiting = state.withLock { state in
            state.finished = true
            defer {
                state.taker = nil
                state.putter = nil
            }
            return (state.taker, state.putter)
        }
        waiting.0?.resume(returning: nil)
        waiting.1?.resume()
    }
}
