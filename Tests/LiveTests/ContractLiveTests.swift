import CarmaTesting
import Foundation
import Testing

/// openapi.yaml is the contract: valid OpenAPI 3.1, and the live server honours it.
@Suite("Contract (live)", .serialized)
struct ContractLiveTests {
    @Test("openapi.yaml is a valid OpenAPI 3.1 document")
    func specificationIsValid() throws {
        let result = try Repository.python(["-m", "openapi_spec_validator", "openapi.yaml"])
        #expect(result.status == 0, "openapi-spec-validator: \(result.output) \(result.error)")
    }

    @Test("schemathesis finds no failure in any operation, with every check, on either backend", .timeLimit(.minutes(8)), arguments: TestBackend.allCases)
    func schemathesis(_ backend: TestBackend) throws {
        let node = try TestNode(backend, arguments: ["--cache-bytes", "0"] + manualDreamOnly)
        defer { node.remove() }
        let server = node.server
        let url = "http://127.0.0.1:\(server.port)"
        let seed = try Repository.run("/bin/bash", ["Tests/Contract/seed.sh", url, node.database?.url ?? node.directory.path])
        #expect(seed.status == 0, "seed.sh: \(seed.output) \(seed.error)")
        let run = try Repository.run("/bin/bash", ["Tests/Contract/run.sh", url])
        print(run.output.split(separator: "\n").suffix(12).joined(separator: "\n"))
        #expect(run.status == 0, "schemathesis failed:\n\(run.output.suffix(4000))\n\(run.error.suffix(2000))")
        #expect(run.output.contains("0 failed"))
        #expect(server.process.isRunning, "the server survived the fuzzing")
    }
}
