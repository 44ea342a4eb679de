import CarmaClient
import Foundation
import Synchronization
/// Paths in the repository, and running the project's own scripts from tests.
public enum Repository {
    /// The repository root, found from this file's location.
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Runs a command, feeding `input` to its standard input; returns (status, stdout, stderr).
    public static func run(_ executable: String, _ arguments: [String], input: [UInt8] = [], environment: [String: String] = [:]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let group = DispatchGroup()
        let errorData = Mutex(Data())
        group.enter()
        Thread {
            stdin.fileHandleForWriting.write(Data(input))
            try? stdin.fileHandleForWriting.close()
            group.leave()
        }.start()
        group.enter()
        Thread {
            let data = stderr.fileHandleForReading.readDataToEndOfFile()
            errorData.withLock { $0 = data }
            group.leave()
        }.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        group.wait()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errorData.withLock { $0 }, as: UTF8.self))
    }

    /// Runs `python3` with arguments from the repository root.
    public static func python(_ arguments: [String], input: [UInt8] = []) throws -> (status: Int32, output: String, error: String) {
        try run("/usr/bin/env", ["python3"] + arguments, input: input)
    }
}
