import CarmaClient
import CarmaJSON
import CarmaTesting
import CarmaText
import Foundation
import Testing

/// The resilience protocol (`carma experiment`) on the small man-page sample, end to end.
@Suite("Experiment harness (live)")
struct ExperimentLiveTests {
    @Test("a run has zero errors and every figure in its report matches what can be observed", .timeLimit(.minutes(10)))
    func experiment() throws {
        let directory = TemporaryDirectory("live")
        let output = TemporaryDirectory("experiment")
        defer {
            directory.remove()
            output.remove()
        }
        let server = try ServerProcess(dataDirectory: directory.path, extraArguments: ["--cache-bytes", "0"] + manualDreamOnly)
        let corpusPath = Repository.root + "/Tests/Fixtures/corpus-sample.jsonl"
        let run = try Repository.run(ServerProcess.carmaPath, [
            "experiment", "--server", "http://127.0.0.1:\(server.port)", "--corpus", corpusPath, "--data-dir", directory.path,
            "--out", output.path, "--queries", "3000", "--concurrency", "8", "--lose-redundancy", "0.5", "--seed", "7",
        ])
        #expect(run.status == 0, "carma experiment failed: \(run.error.suffix(2000))")
        let report = try JSONParser.parse(try String(contentsOfFile: output.path + "/report.json", encoding: .utf8), maxDepth: 64)

        // No answer was wrong, during the run or in the final check.
        #expect(report["queries"]?["errors"] == 0)
        #expect(report["integrity"]?["final_check_errors"] == 0)
        #expect(report["integrity"]?["undamaged_exact"] == report["integrity"]?["undamaged"])

        // The damage is what was asked for, and every damaged fragment is accounted for.
        let fragments = try #require(report["fragments"]?.arrayValue)
        let deleted = try #require(report["damage"]?["deleted"]?.intValue)
        let corrupted = try #require(report["damage"]?["corrupted"]?.intValue)
        #expect(deleted == 16 && corrupted == 3, "5% and 1% of 312")
        #expect(fragments.count == deleted + corrupted)
        #expect(fragments.filter { $0["damage"] == "deleted" }.count == deleted)
        let byOutcome = Dictionary(grouping: fragments, by: { $0["outcome"]?.stringValue ?? "" }).mapValues(\.count)
        #expect(report["recovery"]?["exact"]?.intValue == byOutcome["exact", default: 0])
        #expect(report["recovery"]?["reconstructed"]?.intValue == byOutcome["reconstructed", default: 0])
        #expect(report["recovery"]?["still_blank"]?.intValue == byOutcome["blank", default: 0])
        #expect(byOutcome["exact", default: 0] + byOutcome["reconstructed", default: 0] + byOutcome["blank", default: 0] == fragments.count)
        // Fragments whose redundancy copy survived came back exactly.
        for fragment in fragments where fragment["redundancy_lost"] == false {
            #expect(fragment["outcome"] == "exact", "\(fragment["id"]?.stringValue ?? "?")")
        }

        // The server agrees: its cycle report and the fragments as they read now.
        let api = server.api()
        let cycleID = try #require(report["cycle"]?["id"]?.intValue)
        let cycle = try api.json("/dream/\(cycleID)")
        #expect(cycle["outcomes"]?["recovered"]?.intValue ?? 0 == byOutcome["exact", default: 0])
        #expect(cycle["outcomes"]?["reconstructed"]?.intValue ?? 0 == byOutcome["reconstructed", default: 0])
        let corpus = try String(contentsOfFile: corpusPath, encoding: .utf8).split(separator: "\n").map { try JSONParser.parse(String($0)) }
        let originals = Dictionary(uniqueKeysWithValues: corpus.map { ($0["id"]!.stringValue!, $0["content"]!.stringValue!) })
        for fragment in fragments {
            let id = try #require(fragment["id"]?.stringValue)
            let response = try api.get(id)
            let json = try response.json()
            switch fragment["outcome"]?.stringValue {
            case "exact"?:
                #expect(json["content"]?.stringValue == originals[id])
            case "reconstructed"?:
                let content = try #require(json["content"]?.stringValue)
                let f1 = TextSimilarity.tokenF1(content, originals[id]!)
                #expect(abs(f1 - (fragment["token_f1"]?.doubleValue ?? -1)) < 0.001, "token F1 of \(id) recomputes")
                #expect(json["confidence"] == fragment["confidence"])
            default:
                #expect(response.header("X-Fragment-Status") == "blank")
            }
        }

        // Query counts add up across phases, and every phase saw traffic.
        let phases = try #require(report["queries"]?["by_phase"]?.objectValue)
        var total = 0
        for (name, phase) in phases {
            let queries = phase["queries"]?.intValue ?? 0
            #expect(queries > 0, "phase \(name) had queries")
            total += queries
        }
        #expect(total == report["queries"]?["total"]?.intValue)
        #expect(phases["before_damage"]?["blank_stubs"] == 0, "nothing is blank before the damage")
        #expect((report["queries"]?["blank_stubs_served"]?.intValue ?? 0) > 0, "reads met the damage")
        for picture in ["latency.svg", "topology-before.svg", "topology-damaged.svg", "topology-after.svg"] {
            #expect(FileManager.default.fileExists(atPath: "\(output.path)/\(picture)"), "\(picture)")
        }
        #expect(try String(contentsOfFile: output.path + "/report.md", encoding: .utf8).contains("| errors | 0 during the run, 0 in the final check |"))
    }
}
