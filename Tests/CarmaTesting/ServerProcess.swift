import CarmaClient
import CarmaJSON
import Foundation

/// A real `carmad` process on a real port, for live tests.
///
/// It runs the binary built next to the test bundle, with JSON logs so that the port it picked can be
/// read back from its start-up line.
public final class ServerProcess: @unchecked Sendable {
    // @unchecked: the fields are set in init and by `stop`/`kill`, which a test calls from one task.
    public let process: Process
    public private(set) var port: Int = 0
    public let dataDirectory: String
    public let arguments: [String]
    private let logPath: String

    /// Where the built products live (`.build/debug` or `.build/release`).
    public static var productsDirectory: String {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("carmad").path) { return url.path }
            url.deleteLastPathComponent()
        }
        // swift test on Linux runs `<products>/<package>PackageTests.xctest`.
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    }

    public static var carmadPath: String { "\(productsDirectory)/carmad" }
    public static var carmaPath: String { "\(productsDirectory)/carma" }

    /// Starts carmad on a free port and waits until it is listening.
    /// - Parameters:
    ///   - dataDirectory: Passed as `--data-dir`.
    ///   - extraArguments: More flags.
    ///   - environment: Added to the inherited environment.
    public init(dataDirectory: String, extraArguments: [String] = [], environment: [String: String] = [:], port: Int = 0) throws {
        self.dataDirectory = dataDirectory
        // Logs live apart from the data, so that a test that fills the data disk can still read them.
        let logDirectory = NSTemporaryDirectory() + "carma-test-logs"
        try? FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        self.logPath = "\(logDirectory)/carmad-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        _ = FileManager.default.createFile(atPath: self.logPath, contents: nil)
        self.arguments = ["--data-dir", dataDirectory, "--port", String(port), "--log-format", "json"] + extraArguments
        self.process = Process()
        self.process.executableURL = URL(fileURLWithPath: Self.carmadPath)
        self.process.arguments = self.arguments
        var env = ProcessInfo.processInfo.environment
        // A model in the developer's environment would make every test server embed in the
        // background; tests that want one pass --embedding-model.
        env["CARMA_EMBEDDING_MODEL"] = nil
        for (key, value) in environment { env[key] = value }
        self.process.environment = env
        let log = FileHandle(forWritingAtPath: self.logPath)!
        self.process.standardError = log
        self.process.standardOutput = log
        try self.process.run()
        try self.waitUntilListening()
    }

    private func waitUntilListening() throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let port = self.listeningPort() {
                self.port = port
                return
            }
            if !self.process.isRunning {
                throw ClientError("carmad exited with \(self.process.terminationStatus) before listening:\n\(self.log)")
            }
            usleep(20_000)
        }
        throw ClientError("carmad did not start listening:\n\(self.log)")
    }

    private func listeningPort() -> Int? {
        for line in self.log.split(separator: "\n") where line.contains("carmad listening") {
            if let value = try? JSONParser.parse(String(line)), let port = value["http.port"]?.stringValue.flatMap(Int.init) {
                return port
            }
        }
        return nil
    }

    /// Everything the process logged so far.
    public var log: String {
        (try? String(contentsOfFile: self.logPath, encoding: .utf8)) ?? ""
    }

    public func api(token: String? = nil) -> CarmaAPI {
        CarmaAPI(port: self.port, token: token)
    }

    public func connection(timeoutSeconds: Int = 30, sourceAddress: String? = nil) throws -> HTTPConnection {
        try HTTPConnection(port: self.port, timeoutSeconds: timeoutSeconds, sourceAddress: sourceAddress)
    }

    /// Sends a signal and waits for the exit; returns the exit status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, timeoutSeconds: Double = 30) -> Int32 {
        if self.process.isRunning {
            Foundation.kill(self.process.processIdentifier, signal)
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while self.process.isRunning, Date() < deadline {
            usleep(10_000)
        }
        if self.process.isRunning {
            Foundation.kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
        }
        return self.process.terminationStatus
    }

    /// kill -9: no chance to flush anything.
    public func crash() {
        self.stop(signal: SIGKILL)
    }

    /// Starts the same server again on the same data directory (and the same port if it is free).
    public func restarted(extraArguments: [String]? = nil) throws -> ServerProcess {
        try ServerProcess(dataDirectory: self.dataDirectory, extraArguments: extraArguments ?? Array(self.arguments.dropFirst(6)))
    }

    deinit {
        if self.process.isRunning {
            Foundation.kill(self.process.processIdentifier, SIGKILL)
        }
        try? FileManager.default.removeItem(atPath: self.logPath)
    }
}

extension ServerProcess {
    /// Runs a carmad subcommand (`faults`, `migrate`, `reindex`) to the end.
    /// - Returns: Its exit status and everything it printed.
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try self.runToEnd(carmadPath, arguments)
    }

    /// Runs the `carma` CLI to the end.
    public static func runCarma(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try self.runToEnd(carmaPath, arguments)
    }

    private static func runToEnd(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
