import ArgumentParser
import CarmaClient
import CarmaJSON
import Foundation

/// `carma export`: every fragment of one snapshot of the store, as NDJSON.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write every fragment (a consistent snapshot) as NDJSON, for `carma import`.",
        discussion: """
            The file starts with a header line and ends with a closing line that counts the fragments; \
            an export that was cut short is refused and, with --out, never left under that name.
            """)

    @OptionGroup var server: ServerOption
    @Option(help: "Write here instead of standard output (written to FILE.partial, renamed when complete).")
    var out: String?

    func run() throws {
        let (host, port) = try self.server.endpoint
        var headers: [(String, String)] = []
        if let token = try self.server.bearerToken { headers.append(("Authorization", "Bearer \(token)")) }
        let connection = try HTTPConnection(host: host, port: port, timeoutSeconds: 300)
        defer { connection.close() }
        let partial = self.out.map { $0 + ".partial" }
        let output: FileHandle
        if let partial {
            guard FileManager.default.createFile(atPath: partial, contents: nil), let handle = FileHandle(forWritingAtPath: partial) else {
                throw ValidationError("cannot write \(partial)")
            }
            output = handle
        } else {
            output = FileHandle.standardOutput
        }
        var lines = ExportLines()
        var progress: Progress?
        let response = try connection.stream("/export", headers: headers) { bytes throws(ClientError) in
            if progress == nil {
                progress = Progress("export", total: nil)
            }
            let complete = lines.take(bytes)
            progress?.advance(by: complete)
            output.write(Data(bytes))
        }
        progress?.finish()
        if partial != nil { try? output.close() }
        guard (200..<300).contains(response.status) else {
            if let partial { try? FileManager.default.removeItem(atPath: partial) }
            FileHandle.standardError.write(Data("export failed: HTTP \(response.status) \(response.text.prefix(300))\n".utf8))
            throw ExitCode(1)
        }
        guard let counted = lines.closingCount, counted == lines.fragments else {
            if let partial { try? FileManager.default.removeItem(atPath: partial) }
            FileHandle.standardError.write(Data("export incomplete: the stream ended without its closing line\n".utf8))
            throw ExitCode(1)
        }
        if let out = self.out, let partial {
            try? FileManager.default.removeItem(atPath: out)
            try FileManager.default.moveItem(atPath: partial, toPath: out)
            FileHandle.standardError.write(Data("exported \(lines.fragments) fragments to \(out)\n".utf8))
        }
    }
}

/// Counts an export's lines as its bytes go by, and reads its closing line.
struct ExportLines {
    private var partial: [UInt8] = []
    private(set) var fragments = 0
    private(set) var closingCount: Int?

    /// Takes the next bytes; returns how many fragment lines they completed.
    mutating func take(_ bytes: [UInt8]) -> Int {
        var completed = 0
        var start = 0
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            let line: [UInt8]
            if self.partial.isEmpty {
                line = Array(bytes[start..<index])
            } else {
                line = self.partial + bytes[start..<index]
                self.partial.removeAll(keepingCapacity: true)
            }
            start = index + 1
            if line.starts(with: Array("{\"carma_export\":".utf8)) {
                if let value = try? JSONParser.parse(line), value["carma_export"] == "end" { self.closingCount = value["fragments"]?.intValue }
            } else if !line.isEmpty {
                self.fragments += 1
                completed += 1
            }
        }
        self.partial.append(contentsOf: bytes[start...])
        return completed
    }
}

/// Loads an export into a store in batches (`POST /import`). Every fragment is written at its own
/// version only where the store's is lower, so a second run changes nothing and a run after an
/// interruption picks up what is missing.
struct ExportImport {
    let api: CarmaAPI
    let path: String
    /// Bytes of NDJSON per request at most (under carmad's default --max-body-bytes of 1 MiB).
    static let batchBytes = 512 * 1024
    static let batchLines = 500

    struct Totals {
        var imported = 0
        var unchanged = 0
        var superseded = 0
    }

    func run() throws -> Totals {
        guard let reader = LineReader(path: self.path) else { throw ValidationError("cannot read \(self.path)") }
        var total: Int?
        var totals = Totals()
        var batch: [UInt8] = []
        var lines = 0
        var closed = false
        var progress: Progress?
        func send() throws {
            guard lines > 0 else { return }
            let result = try self.post(batch)
            totals.imported += result["imported"]?.intValue ?? 0
            totals.unchanged += result["unchanged"]?.intValue ?? 0
            totals.superseded += result["superseded"]?.intValue ?? 0
            progress?.advance(by: lines)
            batch.removeAll(keepingCapacity: true)
            lines = 0
        }
        while let line = reader.next() {
            if line.isEmpty { continue }
            if line.starts(with: Array("{\"carma_export\":".utf8)) {
                let value = try? JSONParser.parse(line)
                if value?["carma_export"] == "header" { total = value?["fragments"]?.intValue; progress = Progress("import", total: total) }
                if value?["carma_export"] == "end" { closed = true }
                continue
            }
            if lines > 0, batch.count + line.count + 1 > Self.batchBytes || lines >= Self.batchLines {
                try send()
            }
            batch.append(contentsOf: line)
            batch.append(UInt8(ascii: "\n"))
            lines += 1
        }
        try send()
        progress?.finish()
        if !closed {
            FileHandle.standardError.write(Data("warning: \(self.path) has no closing line: the export may be incomplete\n".utf8))
        }
        return totals
    }

    /// One batch, retried while carmad answers 503 with Retry-After (at most a minute in all).
    private func post(_ body: [UInt8]) throws -> JSONValue {
        var waited = 0.0
        while true {
            var headers: [(String, String)] = [("Content-Type", "application/x-ndjson")]
            if let token = self.api.token { headers.append(("Authorization", "Bearer \(token)")) }
            let response = try self.api.raw("POST", "/import", body: body, headers: headers)
            if response.status == 200 { return try response.json() }
            if response.status == 503, waited < 60 {
                let delay = Double(response.header("Retry-After").flatMap(Int.init) ?? 1)
                Thread.sleep(forTimeInterval: delay)
                waited += delay
                continue
            }
            FileHandle.standardError.write(Data("import failed: HTTP \(response.status) \(response.text.prefix(500))\n".utf8))
            throw ExitCode(1)
        }
    }

    /// Whether the file is an export (its first line is an export header), not a corpus.
    static func isExport(_ path: String) -> Bool {
        guard let reader = LineReader(path: path), let first = reader.next() else { return false }
        return (try? JSONParser.parse(first))?["carma_export"] == "header"
    }
}

/// Lines of a file, read a block at a time.
final class LineReader {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false

    init?(path: String) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        self.handle = handle
    }

    deinit {
        try? self.handle.close()
    }

    func next() -> [UInt8]? {
        while true {
            if let newline = self.buffer[self.start...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(self.buffer[self.start..<newline])
                self.start = newline + 1
                return line
            }
            if self.atEnd {
                guard self.start < self.buffer.count else { return nil }
                let line = Array(self.buffer[self.start...])
                self.start = self.buffer.count
                return line
            }
            self.buffer.removeFirst(self.start)
            self.start = 0
            let data = self.handle.readData(ofLength: 1 << 20)
            if data.isEmpty { self.atEnd = true } else { self.buffer.append(contentsOf: data) }
        }
    }
}
