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
    @OptionGroup var scope: NamespaceOption
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
        let response = try connection.stream(self.scope.namespace.path("/export"), headers: headers) { bytes throws(ClientError) in
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
            let namespace = self.scope.given == nil ? "" : " of namespace \(self.scope.namespace)"
            FileHandle.standardError.write(Data("exported \(lines.fragments) fragments\(namespace) to \(out)\n".utf8))
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

/// Loads an export into a store in batches (`POST /import`, or `/namespaces/NS/import` for the
/// API's namespace: the route decides the namespace, a line's `namespace` member is ignored). Every fragment is written at its own
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
        // The whole file is checked before anything is written: a line that is not JSON, an unknown
        // export line, or a closing count that disagrees with the lines read changes nothing.
        let plan = try Self.check(self.path)
        var totals = Totals()
        var batch: [UInt8] = []
        /// The file line of each line in `batch`, to name it when carmad refuses one.
        var batchLines: [Int] = []
        var written = 0
        let progress = Progress("import", total: plan.fragments)
        func send() throws {
            guard !batchLines.isEmpty else { return }
            let result = try self.post(batch, fileLines: batchLines, written: written)
            totals.imported += result["imported"]?.intValue ?? 0
            totals.unchanged += result["unchanged"]?.intValue ?? 0
            totals.superseded += result["superseded"]?.intValue ?? 0
            written += batchLines.count
            progress.advance(by: batchLines.count)
            batch.removeAll(keepingCapacity: true)
            batchLines.removeAll(keepingCapacity: true)
        }
        let reader = try LineReader(opening: self.path)
        var lineNumber = 0
        while let line = try reader.next() {
            lineNumber += 1
            if Self.isBlank(line) || line.starts(with: Array("{\"carma_export\":".utf8)) { continue }
            if !batchLines.isEmpty, batch.count + line.count + 1 > Self.batchBytes || batchLines.count >= Self.batchLines {
                try send()
            }
            batch.append(contentsOf: line)
            batch.append(UInt8(ascii: "\n"))
            batchLines.append(lineNumber)
        }
        try send()
        progress.finish()
        if !plan.closed {
            FileHandle.standardError.write(Data("warning: \(self.path) has no closing line: the export may be incomplete\n".utf8))
        }
        return totals
    }

    /// What a check of the whole file found.
    struct Plan {
        var fragments = 0
        var closed = false
    }

    static func isBlank(_ line: [UInt8]) -> Bool {
        line.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }
    }

    /// Reads the whole file once, writing nothing; throws naming the file line of the first problem.
    static func check(_ path: String) throws -> Plan {
        let reader = try LineReader(opening: path)
        var plan = Plan()
        var closingCount: Int?
        var lineNumber = 0
        func fail(_ message: String) -> ValidationError {
            ValidationError("\(path):\(lineNumber): \(message); nothing was imported")
        }
        while let line = try reader.next() {
            lineNumber += 1
            if Self.isBlank(line) { continue }
            let value: JSONValue
            do {
                value = try JSONParser.parse(line, maxDepth: 32)
            } catch {
                throw fail("not JSON: \(error)")
            }
            guard let object = value.objectValue else { throw fail("a line is a JSON object") }
            if let kind = object["carma_export"] {
                switch kind.stringValue {
                case "header"?:
                    guard lineNumber == 1 || plan.fragments == 0 else { throw fail("a header line after fragment lines") }
                case "end"?:
                    guard closingCount == nil else { throw fail("a second closing line") }
                    guard let count = object["fragments"]?.exactInteger, count >= 0 else { throw fail("the closing line has no fragment count") }
                    closingCount = Int(count)
                    plan.closed = true
                default:
                    throw fail("unknown export line \(kind.serialized.prefix(64)): an export has only 'header' and 'end' lines")
                }
                continue
            }
            guard closingCount == nil else { throw fail("a fragment line after the closing line") }
            guard object["id"]?.stringValue != nil else { throw fail("a fragment line needs a string id") }
            guard let version = object["version"]?.exactInteger, version >= 1 else {
                throw fail("version is a positive integer, written without a fraction or an exponent")
            }
            plan.fragments += 1
        }
        if let closingCount, closingCount != plan.fragments {
            throw ValidationError(
                "\(path): the closing line counts \(closingCount) fragments but the file has \(plan.fragments): it was cut or altered; nothing was imported")
        }
        return plan
    }

    /// One batch, retried while carmad answers 503 with Retry-After (at most a minute in all).
    /// - Parameters:
    ///   - fileLines: The file line of each line of `body`, to report a refused line by its place in the file.
    ///   - written: Fragment lines sent (and written) before this batch.
    private func post(_ body: [UInt8], fileLines: [Int], written: Int) throws -> JSONValue {
        var waited = 0.0
        while true {
            var headers: [(String, String)] = [("Content-Type", "application/x-ndjson")]
            if let token = self.api.token { headers.append(("Authorization", "Bearer \(token)")) }
            let response = try self.api.raw("POST", self.api.scoped("/import"), body: body, headers: headers)
            if response.status == 200 { return try response.json() }
            if response.status == 503, waited < 60 {
                let delay = Double(response.header("Retry-After").flatMap(Int.init) ?? 1)
                Thread.sleep(forTimeInterval: delay)
                waited += delay
                continue
            }
            var message = "import failed: HTTP \(response.status) \(response.text.prefix(500))"
            // carmad numbers the lines of the batch it was sent: name the file's line instead.
            if let problem = try? response.json(), let line = problem["line"]?.intValue, (1...fileLines.count).contains(line) {
                var detail = problem["detail"]?.stringValue ?? problem["title"]?.stringValue ?? ""
                if let range = detail.range(of: "line \(line): "), range.lowerBound == detail.startIndex { detail.removeSubrange(range) }
                message = "import failed at \(self.path):\(fileLines[line - 1]): \(detail) (HTTP \(response.status))"
            }
            if written > 0 {
                message += "\n\(written) fragment lines before it (up to line \(fileLines[0] - 1)) were written; fix the line and run the import again: a re-run resumes, leaving what is already there unchanged"
            } else {
                message += "\nnothing was imported"
            }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            throw ExitCode(1)
        }
    }

    /// Whether the file is an export (its first line is an export header), not a corpus.
    static func isExport(_ path: String) throws -> Bool {
        guard let first = try LineReader(opening: path).next() else { return false }
        return (try? JSONParser.parse(first))?["carma_export"] == "header"
    }
}

/// Lines of a file, read a block at a time; a directory or an unreadable file is an error, not a crash.
final class LineReader {
    private let handle: FileHandle
    private let path: String
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false

    init(opening path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw ValidationError("\(path): no such file") }
        guard !isDirectory.boolValue else { throw ValidationError("\(path) is a directory: give the export or corpus file") }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationError("cannot read \(path)") }
        self.handle = handle
        self.path = path
    }

    deinit {
        try? self.handle.close()
    }

    func next() throws -> [UInt8]? {
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
            // read(upToCount:) throws where readData(ofLength:) trapped (a directory: EISDIR).
            let data: Data?
            do {
                data = try self.handle.read(upToCount: 1 << 20)
            } catch {
                throw ValidationError("cannot read \(self.path): \(error.localizedDescription)")
            }
            if let data, !data.isEmpty { self.buffer.append(contentsOf: data) } else { self.atEnd = true }
        }
    }
}
