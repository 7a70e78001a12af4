import Foundation

/// A real `redis-server` on a free loopback port, for tests and the benchmark's peer; stopped
/// by whoever starts it (or when released).
public final class RedisProcess: @unchecked Sendable {
    // @unchecked: the process handle is replaced only by `start` and `kill`, which the owner
    // calls from one task at a time.
    public let port: Int
    public let directory: String
    private var process: Process?
    private let extraArguments: [String]

    /// `arguments` are added to redis-server's (for example `--appendonly yes`).
    public init(arguments: [String] = []) throws {
        extraArguments = arguments
        port = try FreePort.find()
        directory = NSTemporaryDirectory() + "tidings-redis-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try start()
    }

    public var url: String { "redis://127.0.0.1:\(port)/0" }

    public func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        process.arguments =
            [
                "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory,
                "--logfile", directory + "/redis.log",
            ]
            + extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        // Ready when it accepts connections.
        for _ in 0..<200 {
            if FreePort.accepts(port) { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw HarnessError("redis-server did not start on port \(port) (is redis-server installed?)")
    }

    public var pid: Int32 { process?.processIdentifier ?? 0 }

    public func kill() {
        guard let process else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

public enum FreePort {
    /// A port nothing listens on now (the kernel picks it).
    public static func find() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else { throw HarnessError("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    public static func accepts(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
