import Foundation

/// A `tidings serve` child process on a scratch store and a free port, for load tests: the
/// server runs in its own process, so its memory and CPU are its own.
public final class ServerProcess: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read afterwards.
    public let port: Int
    /// The store's directory, or for a node on PostgreSQL a scratch folder of its own.
    public let directory: String
    private let process: Process
    /// The JWT secret the server is started with (`TIDINGS_JWT_SECRET`): sign tokens for it with
    /// the server's `TokenSigner`.
    public static let secret = "bench-secret-bench-secret-bench-secret-0123"

    /// `fresh` starts from an empty store; otherwise the process joins whatever is there (several
    /// processes may serve one store).
    /// `port` 0 picks a free one; a restarted server passes its old one, so clients reconnect
    /// where they were.
    public convenience init(
        binary: String, directory: String, port: Int = 0, arguments: [String] = [], fresh: Bool = true
    ) throws {
        if fresh { try? FileManager.default.removeItem(atPath: directory) }
        try self.init(
            binary: binary, store: ["--data", directory], directory: directory, port: port, arguments: arguments)
    }

    /// A node of the store in the PostgreSQL database at `url` (any number may serve it).
    public convenience init(binary: String, postgres url: String, arguments: [String] = []) throws {
        let directory = NSTemporaryDirectory() + "tidings-node-" + UUID().uuidString
        try self.init(
            binary: binary, store: ["--postgres", url], directory: directory, port: 0, arguments: arguments)
    }

    private init(binary: String, store: [String], directory: String, port: Int, arguments: [String]) throws {
        self.directory = directory
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve"] + store + ["--port", String(port), "--log-level", "error"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["TIDINGS_JWT_SECRET"] = Self.secret
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        var line = ""
        let handle = output.fileHandleForReading
        while !line.hasSuffix("\n") {
            let byte = handle.readData(ofLength: 1)
            guard !byte.isEmpty else { throw HarnessError("the server exited before listening") }
            line += String(decoding: byte, as: UTF8.self)
        }
        guard
            let port = line.split(separator: ":").last.flatMap({
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            })
        else { throw HarnessError("unexpected first line from the server: \(line)") }
        self.port = port
    }

    public var pid: Int32 { process.processIdentifier }

    /// Resident memory of the server process.
    public var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        else { return 0 }
        return kilobytes * 1024
    }

    /// Graceful stop (SIGINT); removes the store unless `keepStore`.
    public func stop(keepStore: Bool = false) {
        process.interrupt()
        process.waitUntilExit()
        if !keepStore { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// SIGKILL: the process dies mid-whatever it was doing.
    public func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A process, socket or run of a test or benchmark harness that failed, in words.
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Raises the open-file limit to its hard maximum (10,000 WebSocket clients need as many
/// descriptors in the load generator, and as many in the server, which inherits the limit).
public enum FileDescriptorLimit {
    /// Raises the open-file limit to at least `minimum`, the hard limit too when the process
    /// may (root may, up to `fs.nr_open`); children started afterwards inherit it. Returns the
    /// limit now in force.
    @discardableResult
    public static func raise(atLeast minimum: Int) -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if Int(limit.rlim_max) < minimum {
            var wanted = limit
            wanted.rlim_max = rlim_t(minimum)
            wanted.rlim_cur = rlim_t(minimum)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &wanted)
        }
        return raise()
    }

    @discardableResult
    public static func raise() -> Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return Int(limit.rlim_cur)
    }
}
