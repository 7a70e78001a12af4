import Foundation
import Synchronization

/// A throwaway PostgreSQL for tests and benchmarks. With `TIDINGS_TEST_POSTGRES_URL` set (as
/// `tools/test` does, pointing at a cluster it started) databases are made there; otherwise one
/// cluster per test process is made with `initdb` in a temporary folder and run as the
/// `postgres` user (PostgreSQL refuses to run as root), stopped when the process exits.
public final class PostgresCluster: Sendable {
    /// A URL of the cluster's `postgres` database, as its superuser.
    public let adminURL: String
    /// The cluster's folder when this process started it.
    public let directory: String?
    public let port: Int

    public static let binaries = "/usr/lib/postgresql/15/bin"
    public static let environmentVariable = "TIDINGS_TEST_POSTGRES_URL"

    private static let sharedCluster = Mutex<PostgresCluster?>(nil)

    /// The cluster of this test process.
    public static func shared() throws -> PostgresCluster {
        try sharedCluster.withLock { shared in
            if let shared { return shared }
            let cluster: PostgresCluster
            if let url = ProcessInfo.processInfo.environment[environmentVariable], !url.isEmpty {
                cluster = PostgresCluster(adminURL: url)
            } else {
                cluster = try PostgresCluster.start()
                let directory = cluster.directory!
                Self.stopAtExit(directory)
            }
            shared = cluster
            return cluster
        }
    }

    /// A cluster that runs elsewhere (its admin URL given), which this process will not stop.
    public init(adminURL: String) {
        self.adminURL = adminURL
        directory = nil
        port = URLComponents(string: adminURL)?.port ?? 5432
    }

    private init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
        adminURL = "postgres://postgres@127.0.0.1:\(port)/postgres?sslmode=disable"
    }

    /// Starts a new cluster on a free loopback port. Settings favour test speed except where
    /// durability is what a test measures: `fsync` stays on for benchmarks (`durable`).
    public static func start(durable: Bool = false) throws -> PostgresCluster {
        let directory = NSTemporaryDirectory() + "tidings-postgres-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        try run("/bin/chown", ["-R", "postgres:postgres", directory])
        try asPostgres(
            "initdb", ["-D", directory + "/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        let port = try FreePort.find()
        var settings = [
            "-c", "listen_addresses=127.0.0.1", "-p", "\(port)", "-k", directory, "-c", "max_connections=200",
            "-c", "shared_buffers=256MB",
        ]
        if !durable { settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"] }
        try asPostgres(
            "pg_ctl",
            [
                "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60", "-o",
                settings.joined(separator: " "), "start",
            ])
        return PostgresCluster(directory: directory, port: port)
    }

    /// Stops a cluster this process started (immediately: tests keep nothing).
    public func stop() {
        guard let directory else { return }
        Self.stop(directory)
    }

    private static func stop(_ directory: String) {
        _ = try? asPostgres("pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    nonisolated(unsafe) private static var stopping: [String] = []

    private static func stopAtExit(_ directory: String) {
        stopping.append(directory)
        atexit {
            for directory in PostgresCluster.stopping { PostgresCluster.stop(directory) }
        }
    }

    /// A new, empty database; returns its URL.
    public func makeDatabase(prefix: String = "tidings_test") throws -> String {
        let name = prefix + "_" + UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "")
        try psql("CREATE DATABASE \(name)")
        return databaseURL(name)
    }

    /// Drops the database of `url` (made by `makeDatabase`), closing its connections.
    public func dropDatabase(_ url: String) {
        guard let name = URLComponents(string: url)?.path.dropFirst(), !name.isEmpty else { return }
        _ = try? psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// Makes `copy` as a copy of the database `name`, as it is now. A node that stopped a moment
    /// ago may still be closing its connections, which a copy must wait for: tried again for up
    /// to 10 seconds while the source is in use.
    public func copyDatabase(_ name: String, to copy: String) throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                try psql("CREATE DATABASE \(copy) TEMPLATE \(name)")
                return
            } catch let error as HarnessError
                where error.description.contains("is being accessed by other users") && ContinuousClock.now < deadline
            {
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
    }

    public func databaseURL(_ name: String) -> String {
        var url = URLComponents(string: adminURL)!
        url.path = "/" + name
        return url.string!
    }

    /// Runs SQL through psql against the admin database (or `database`); returns its output.
    @discardableResult
    public func psql(_ sql: String, database: String? = nil) throws -> String {
        let url = database.map(databaseURL) ?? adminURL
        return try Self.run("/usr/bin/psql", [url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
    }

    /// Runs each statement in turn, each in its own transaction, in one psql session (one
    /// process and one connection for all of them: quick enough to swap databases under a node).
    @discardableResult
    public func psql(each statements: [String]) throws -> String {
        try Self.run("/usr/bin/psql", [adminURL, "-v", "ON_ERROR_STOP=1", "-At"] + statements.flatMap { ["-c", $0] })
    }

    @discardableResult
    static func asPostgres(_ tool: String, _ arguments: [String]) throws -> String {
        try run("/usr/sbin/runuser", ["-u", "postgres", "--", binaries + "/" + tool] + arguments)
    }

    /// Runs a program to its end with output to a file (a pipe would stay open in a server the
    /// program leaves running); throws with its output when it fails. posix_spawn and waitpid
    /// rather than Foundation's Process, whose waitUntilExit was seen never to return here for a
    /// child that had exited (left a zombie) when called before the process ran anything else.
    @discardableResult
    static func run(_ path: String, _ arguments: [String]) throws -> String {
        let output = NSTemporaryDirectory() + "tidings-run-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard spawned == 0 else { throw HarnessError("cannot start \(path): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw HarnessError("waitpid for \(path) failed: errno \(errno)") }
        }
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        // Exited normally with status 0 (WIFEXITED and WEXITSTATUS, which are macros in C).
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            throw HarnessError("\(path) \(arguments.joined(separator: " ")) failed (status \(status)): \(text)")
        }
        return text
    }
}

/// The call deadline the in-process PostgreSQL stores of the tests use, above the 10 s
/// default: the whole suite runs its tests at once on two cores beside one cluster, where a
/// call can wait out that default on a busy machine without anything being wrong. Tests of a
/// server that stops answering run `tidings serve`, which keeps the default.
public let testPostgresCallDeadline: Duration = .seconds(60)
