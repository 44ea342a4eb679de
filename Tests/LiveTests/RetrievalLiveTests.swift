import CarmaClient
import CarmaJSON
import CarmaTesting
import Foundation
import Testing

/// The model directory the test command installs (scripts/test.sh sets it from the PyPI package).
let testEmbeddingModel = ProcessInfo.processInfo.environment["CARMA_TEST_EMBEDDING_MODEL"]

/// Fragments on unrelated subjects, worded so that some questions share no word with their answer.
private let topics: [(String, String)] = [
    ("gzip", "gzip reduces the size of the named files using Lempel-Ziv coding; each file is replaced by one with the extension .gz."),
    ("ssh", "ssh logs into a remote machine and executes commands there, with encrypted communication between two untrusted hosts."),
    ("cron", "The cron daemon executes scheduled commands at specified times, read from crontab files of each user."),
    ("passwd", "passwd changes a user's password; a normal user may only change the password for their own account."),
    ("ping", "ping sends ICMP ECHO_REQUEST packets to network hosts and reports whether replies came back and how long they took."),
    ("df", "df displays the amount of disk space available on the file system containing each file name argument."),
    ("kill", "kill sends a signal to a process; the default signal is TERM, which asks the program to terminate."),
    ("tar", "tar saves many files together into a single tape or disk archive, and can restore individual files from the archive."),
]

@Suite("Retrieval (live)")
struct RetrievalLiveTests {
    @Test("without a model: words only, said in /readyz and in every query; filters, modes and bad input")
    func wordsOnly() throws {
        let directory = TemporaryDirectory("retrieval")
        defer { directory.remove() }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly)
        let api = server.api()
        for (index, (id, text)) in topics.enumerated() {
            let metadata: JSONValue = ["team": .string(index % 2 == 0 ? "ops" : "dev"), "rank": .number(Double(index))]
            #expect(try api.put(id, ["content": .string(text), "tags": index < 4 ? ["first"] : ["second"], "metadata": metadata]).status == 201)
        }
        // A word far into a long fragment, where no sketch keeps it, is still found (whole-content BM25).
        let long = (0..<300).map { "line \($0) of a long manual page about nothing in particular" }.joined(separator: "\n") + "\nzanzibar"
        #expect(try api.put("long", ["content": .string(long)]).status == 201)

        let ready = try api.json("/readyz")["retrieval"]
        #expect(ready?["embedding_model"] == .null)
        #expect(ready?["signals"] == ["text", "client_vector"])

        let found = try query(api, ["text": "zanzibar"])
        #expect(ids(found).first == "long")
        #expect(found["signals"] == ["text"])
        #expect(found["notes"]?.arrayValue?.first?.stringValue?.contains("no embedding model") == true)

        let tagged = ids(try query(api, ["text": "files archive disk", "tags": ["second"]]))
        #expect(tagged.first == "tar" && Set(tagged).isSubset(of: ["ping", "df", "kill", "tar"]), "\(tagged)")
        #expect(Set(ids(try query(api, ["text": "files", "metadata": ["team": "ops"]]))).isSubset(of: ["gzip", "cron", "ping", "kill"]))
        #expect(ids(try query(api, ["text": "files", "metadata": ["rank": 7]])) == ["tar"])
        #expect(ids(try query(api, ["text": "files", "status": "blank"])).isEmpty)
        #expect(!ids(try query(api, ["text": "files", "status": ["ok", "reconstructed"]])).isEmpty)
        #expect(try query(api, ["text": "files", "mode": "text"])["signals"] == ["text"])

        for (body, field) in [
            (["text": "x", "mode": "vector"], "mode"), (["text": "x", "mode": "fuzzy"], "mode"), (["embedding": [1, 2], "mode": "text"], "text"),
            (["text": "x", "status": "lost"], "status"), (["text": "x", "metadata": ["a": ["nested": 1]]], "metadata"),
            (["text": "x", "fusion": "max"], "fusion"), (["text": "x", "status": []], "status"),
            (["text": "x", "status": ["ok", "ok", "ok", "ok"]], "status"),
        ] as [(JSONValue, String)] {
            let response = try api.request("POST", "/query", json: body)
            #expect(response.status == 400, "\(body)")
            #expect(try response.json()["field"]?.stringValue == field, "\(body): \(response.text)")
        }
        // A read right after the acknowledgement finds the write (the query waits for the indexer).
        for index in 0..<20 {
            let word = "quokka" + String(UnicodeScalar(UInt8(ascii: "a") + UInt8(index)))
            #expect(try api.put("fresh\(index)", ["content": .string("a note about \(word)")]).status == 201)
            #expect(ids(try query(api, ["text": .string(word), "k": 1])) == ["fresh\(index)"])
        }
        #expect(server.stop() == 0)
    }

    @Test("with the model: questions without shared words find their answer; meanings survive a restart", .enabled(if: testEmbeddingModel != nil))
    func meaning() throws {
        let directory = TemporaryDirectory("retrieval")
        defer { directory.remove() }
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly + ["--embedding-model", testEmbeddingModel!])
        var api = server.api()
        for (id, text) in topics {
            #expect(try api.put(id, ["content": .string(text), "links": id == "gzip" ? ["tar"] : []]).status == 201)
        }
        try waitForEmbeddings(api, count: topics.count)
        let ready = try api.json("/readyz")["retrieval"]
        #expect(ready?["signals"] == ["text", "meaning", "client_vector"])
        #expect(ready?["embedded"] == .number(Double(topics.count)))

        // No word in common with the answer: only meaning finds it.
        let questions = [("how can I make my files smaller", "gzip"), ("run a job every night at 3am", "cron"),
                         ("measure the latency to a server", "ping"),
                         ("stop a program that hangs", "kill"), ("change my login secret", "passwd"), ("how much free storage is left", "df")]
        for (question, answer) in questions {
            let vector = try query(api, ["text": JSONValue.string(question), "mode": "vector", "k": 3])
            #expect(ids(vector).first == answer, "\(question): \(ids(vector))")
            #expect(vector["signals"] == ["meaning"])
            let hybrid = try query(api, ["text": JSONValue.string(question), "k": 3])
            // Fused with BM25, whose common words can point elsewhere in eight fragments: among the first three.
            #expect(ids(hybrid).contains(answer), "\(question): \(ids(hybrid))")
            #expect(hybrid["signals"] == ["text", "meaning"])
            #expect(hybrid["fusion"] == "weighted")
            #expect(hybrid["notes"] == [])
        }
        let context = try api.json("/fragments/gzip/context?k=2")
        #expect(context["similar_by"] == "meaning")
        #expect(context["similar"]?.arrayValue?.count == 2)

        // Kept in the registry: after a restart nothing is embedded again.
        #expect(server.stop() == 0)
        server = try server.restarted()
        api = server.api()
        try waitForEmbeddings(api, count: topics.count)
        let metrics = try api.request("GET", "/metrics").text
        #expect(metrics.contains("carma_embeddings_computed_total 0"), "\(metrics.split(separator: "\n").filter { $0.contains("embed") })")
        #expect(ids(try query(api, ["text": "how can I make my files smaller", "mode": "vector", "k": 1])) == ["gzip"])

        // A new version is embedded again; until then the query says some fragments wait.
        #expect(try api.put("kill", ["content": "kill makes my files smaller by squeezing them"]).status == 200)
        // The new version reaches the embedder's queue just after the acknowledgement (the indexer
        // thread hands it over), so wait for the embedding itself, not for an empty queue.
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline, try !api.request("GET", "/metrics").text.contains("carma_embeddings_computed_total 1") {
            usleep(100_000)
        }
        try waitForEmbeddings(api, count: topics.count)
        let after = try api.request("GET", "/metrics").text
        #expect(after.contains("carma_embeddings_computed_total 1"))
        #expect(server.stop() == 0)
    }
}

func query(_ api: CarmaAPI, _ body: JSONValue) throws -> JSONValue {
    let response = try api.request("POST", "/query", json: body)
    guard response.status == 200 else { throw ClientError("POST /query \(body): \(response.status) \(response.text)") }
    return try response.json()
}

func ids(_ answer: JSONValue) -> [String] {
    answer["results"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
}

/// Waits until every fragment has its embedding (the background embedder's backlog is empty).
func waitForEmbeddings(_ api: CarmaAPI, count: Int, timeoutSeconds: Double = 300) throws {
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    while Date() < deadline {
        let retrieval = try api.json("/readyz")["retrieval"]
        if retrieval?["text_index_ready"] == true, retrieval?["embedding_backlog"] == 0, retrieval?["embedded"]?.intValue == count { return }
        usleep(100_000)
    }
    throw ClientError("embeddings not done after \(timeoutSeconds) s: \(try api.json("/readyz"))")
}
