import CarmaClient
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A throw-away PostgreSQL server for tests: the real binaries on a data directory of its own, a
/// socket directory inside it, and a free port on 127.0.0.1 only. Nothing is mocked.
///
/// PostgreSQL refuses to run as root, so when the tests run as root (as they do on the test
/// machines) every binary runs as the `postgres` user through `runuser`, and the directory is
/// handed to that user; otherwise they run as the test's own user.
///
/// The cluster is made for speed, not safety (`fsync=off`, no synchronous commit): a test that stops
/// it uses `stop()` (a clean fast shutdown), which loses nothing even so.
public final class PostgresServer: @unchecked Sendable {
    // @unchecked: `port` is only set inside `init`; the running and destroyed flags are behind a Mutex.
    /// The directory holding everything: `data/` (the cluster), `socket/`, `postgres.log`.
    public let directory: String
    /// The TCP port on 127.0.0.1; the same across `stop()` and `start()`.
    public private(set) var port: Int = 0
    /// The directory of `initdb`, `pg_ctl`, `postgres` and `psql`.
    public let binDirectory: String
    private let owner: (uid: uid_t, gid: gid_t)?
    private let state = Mutex(State())

    private struct State {
        var running = false
        var destroyed = false
    }

    /// The database the tests use.
    public static let databaseName = "carma"

    /// `postgresql://postgres@127.0.0.1:PORT/carma`.
    public var url: String { "postgresql://postgres@127.0.0.1:\(self.port)/\(Self.databaseName)" }

    /// The server's own log (start-up failures, and what it said while the test ran).
    public var log: String {
        (try? String(contentsOfFile: self.logPath, encoding: .utf8)) ?? ""
    }

    private var dataDirectory: String { "\(self.directory)/data" }
    private var socketDirectory: String { "\(self.directory)/socket" }
    private var logPath: String { "\(self.directory)/postgres.log" }

    /// Makes a fresh cluster, starts it, and creates the database `carma`.
    ///
    /// Throws a clear error when PostgreSQL is not installed, or when the tests run as root and
    /// there is no `postgres` user to run it as.
    public init() throws {
        self.binDirectory = try Self.findBinDirectory()
        if geteuid() == 0 {
            guard let account = getpwnam("postgres") else {
                throw ClientError("PostgreSQL refuses to run as root and there is no `postgres` user to run it as (apt-get install postgresql creates one)")
            }
            self.owner = (account.pointee.pw_uid, account.pointee.pw_gid)
        } else {
            self.owner = nil
        }
        // Under /tmp when root: the postgres user must be able to reach the directory, and a
        // TMPDIR under root's home would not let it.
        let base = geteuid() == 0 ? "/tmp" : (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp")
        var template = Array("\(base)/carma-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ClientError("mkdtemp under \(base): \(String(cString: strerror(errno)))")
        }
        self.directory = String(cString: made)
        do {
            try FileManager.default.createDirectory(atPath: self.socketDirectory, withIntermediateDirectories: false)
            try self.handOver(self.directory)
            try self.handOver(self.socketDirectory)
            try self.run("initdb", ["-D", self.dataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"])
            let postgresqlConf = "\(self.dataDirectory)/postgresql.conf"
            let conf = try String(contentsOfFile: postgresqlConf, encoding: .utf8)
            try (conf + "\ninclude 'carma-test.conf'\n").write(toFile: postgresqlConf, atomically: false, encoding: .utf8)
            // A port found free can be taken by someone else before the server binds it: try another.
            var attempt = 0
            while true {
                attempt += 1
                self.port = try Self.freePort()
                try self.writeSettings()
                do {
                    try self.start()
                    break
                } catch {
                    let log = self.log
                    guard attempt < 5, log.contains("could not bind") || log.contains("Address already in use") else { throw error }
                }
            }
            _ = try self.psql("CREATE DATABASE \(Self.databaseName)", database: "postgres")
        } catch {
            self.destroy()
            throw error
        }
    }

    deinit {
        self.destroy()
    }

    /// Starts the server (again) on the same data directory and port; returns once it accepts
    /// connections.
    public func start() throws {
        do {
            try self.run("pg_ctl", ["-D", self.dataDirectory, "-l", self.logPath, "-w", "-t", "120", "start"])
        } catch {
            throw ClientError("\(error)\nserver log:\n\(self.log.suffix(3000))")
        }
        self.state.withLock { $0.running = true }
    }

    /// Stops the server (`pg_ctl stop -m fast`: open connections are cut), for outage tests.
    public func stop() throws {
        try self.run("pg_ctl", ["-D", self.dataDirectory, "-m", "fast", "-w", "-t", "120", "stop"])
        self.state.withLock { $0.running = false }
    }

    /// Runs one SQL command with `psql` and returns what it printed (unaligned, tuples only,
    /// trimmed). Throws with psql's error output when the command fails.
    /// - Parameters:
    ///   - sql: One command (or several separated by `;`, run as one transaction).
    ///   - database: The database to connect to; `carma` unless told.
    @discardableResult
    public func psql(_ sql: String, database: String = PostgresServer.databaseName) throws -> String {
        let url = "postgresql://postgres@127.0.0.1:\(self.port)/\(database)"
        let output = try self.run("psql", ["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops the server at once if it runs and deletes its directory. Called by `deinit` too;
    /// a second call does nothing.
    public func destroy() {
        let (running, destroyed) = self.state.withLock { state in
            defer { state.destroyed = true }
            return (state.running, state.destroyed)
        }
        if destroyed { return }
        if running || FileManager.default.fileExists(atPath: "\(self.dataDirectory)/postmaster.pid") {
            _ = try? self.run("pg_ctl", ["-D", self.dataDirectory, "-m", "immediate", "-w", "-t", "60", "stop"])
        }
        self.state.withLock { $0.running = false }
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    private func writeSettings() throws {
        let settings = """
            # Written by the tests' PostgresServer: a throw-away cluster, fast rather than safe.
            listen_addresses = '127.0.0.1'
            port = \(self.port)
            unix_socket_directories = '\(self.socketDirectory)'
            max_connections = 200
            shared_buffers = 32MB
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            """
        let path = "\(self.dataDirectory)/carma-test.conf"
        try (settings + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        try self.handOver(path)
    }

    /// Gives a path to the postgres user when the tests run as root.
    private func handOver(_ path: String) throws {
        guard let owner = self.owner else { return }
        guard chown(path, owner.uid, owner.gid) == 0 else {
            throw ClientError("chown \(path) to postgres: \(String(cString: strerror(errno)))")
        }
    }

    /// Runs one of the PostgreSQL binaries to the end, as the postgres user when root.
    /// - Returns: Its standard output; throws with its standard error when it exits non-zero.
    @discardableResult
    private func run(_ tool: String, _ arguments: [String]) throws -> String {
        let executable = "\(self.binDirectory)/\(tool)"
        let command = (self.owner != nil ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []) + [executable] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PGCONNECT_TIMEOUT"] = "10"
        environment["LC_ALL"] = "C"
        for name in ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSERVICE", "PGOPTIONS", "PGDATA"] {
            environment[name] = nil
        }
        let outputPath = "\(NSTemporaryDirectory())/carma-pg-\(getpid())-\(UUID().uuidString).out"
        let errorPath = outputPath + ".err"
        defer {
            try? FileManager.default.removeItem(atPath: outputPath)
            try? FileManager.default.removeItem(atPath: errorPath)
        }
        let status = try Self.spawnAndWait(command, environment: environment, directory: self.directory, output: outputPath, errors: errorPath)
        let stdout = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw ClientError("\(tool) \(arguments.joined(separator: " ")) failed (\(status > 0 ? "status \(status)" : "signal \(-status)")): \(stderr)\(stdout)")
        }
        return stdout
    }

    /// Runs a command with its output in files and every other descriptor closed, and waits for it.
    ///
    /// Not Foundation's `Process`: it tells that a child ended by a socket the child inherits, and
    /// `pg_ctl start` leaves a server running that would inherit it too, so the wait would last as
    /// long as the server. Here a shell closes every descriptor above 2 before it execs the command,
    /// and the wait is `waitpid`. Output goes to files, not pipes, for the same reason.
    /// - Returns: The exit status, or minus the signal that ended it.
    private static func spawnAndWait(
        _ command: [String], environment: [String: String], directory: String, output: String, errors: String
    ) throws -> Int32 {
        let script = #"cd "$1" || exit 125; shift; for fd in $(ls /proc/$$/fd); do if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi; done 2>/dev/null; exec "$@""#
        let arguments = ["/bin/bash", "-c", script, "bash", directory] + command
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, "/bin/bash", &actions, nil, argv, envp)
        guard spawned == 0 else {
            throw ClientError("cannot run \(command.joined(separator: " ")): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw ClientError("waitpid: \(String(cString: strerror(errno)))") }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which are macros Swift cannot import.
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : -signal
    }

    /// The newest `/usr/lib/postgresql/<version>/bin` (Debian's layout), or `CARMA_TEST_POSTGRES_BIN`.
    static func findBinDirectory() throws -> String {
        if let configured = ProcessInfo.processInfo.environment["CARMA_TEST_POSTGRES_BIN"], !configured.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: "\(configured)/pg_ctl") else {
                throw ClientError("CARMA_TEST_POSTGRES_BIN=\(configured) holds no pg_ctl")
            }
            return configured
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { FileManager.default.isExecutableFile(atPath: "\(root)/\($0)/bin/pg_ctl") }
            .sorted { $0.compare($1, options: .numeric) == .orderedAscending }
        guard let newest = versions.last else {
            throw ClientError("PostgreSQL is not installed: no \(root)/*/bin/pg_ctl (apt-get install postgresql, or set CARMA_TEST_POSTGRES_BIN)")
        }
        return "\(root)/\(newest)/bin"
    }

    /// A port that was free on 127.0.0.1 a moment ago (bound to port 0, read back, closed).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw ClientError("bind 127.0.0.1:0: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
