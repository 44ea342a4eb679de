import CarmaJSON
import CarmaTesting
import FragmentCore
import Foundation
import Testing

/// Damage, blanks and the dream engine's repairs, run in process: the same damage (in each
/// backend's own terms) and the same outcomes on both backends.
@Suite("Damage and repair on both backends")
struct RepairBehaviourTests {
    @Test("damaged records read as blanks with their reason; one cycle brings all back byte-exact from the redundancy copies", arguments: Backend.allCases)
    func damageAndRecovery(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        var bodies: [String: [UInt8]] = [:]
        for index in 0..<30 {
            let id = "f\(index)"
            let written = try s.put(id, "Fragment \(id): " + String(repeating: "lorem ipsum \(index) ", count: 18), links: ["f\((index + 1) % 30)"], tags: ["seed"])
            bodies[id] = written.fragment.body
        }
        let corrupted = ["f1", "f2", "f3"], lost = ["f10", "f11", "f12", "f13"]
        try s.damage(corrupted, .corrupt)
        try s.damage(lost, .lose)

        for id in corrupted + lost {
            let blank = try #require(s.blank(id))
            let reason = backend.reason(for: corrupted.contains(id) ? .corrupt : .lose)
            #expect(blank.row.status == .blank)
            #expect(blank.row.blankReason == reason, "\(id)")
            #expect(blank.row.detectedBy == .read)
            #expect(blank.row.lostAt != nil)
            #expect(blank.row.links == ["f\((Int(id.dropFirst())! + 1) % 30)"], "the registry still knows its links")
            #expect(blank.row.tags == ["seed"])
            #expect(blank.queuedAt != nil, "\(id): its repair is queued")
            #expect(blank.progress.attempts == 0)
            // A second read answers the same blank; it is not found (nor queued) twice.
            #expect(s.blank(id)?.row.blankReason == reason)
        }
        #expect(Set(try s.listed(status: .blank)) == Set(corrupted + lost))
        #expect(s.queue().total == 7)
        let tickets = try s.tickets(dueBy: .now)
        #expect(Set(tickets.map(\.id)) == Set(corrupted + lost))
        #expect(tickets.allSatisfy { $0.priority == .servedBlank && $0.attempts == 0 })
        #expect(tickets.allSatisfy { $0.reason == "read: \(backend.reason(for: corrupted.contains($0.id) ? .corrupt : .lose).rawValue)" }, "\(tickets.map(\.reason))")
        #expect(s.store.stats().byStatus[.blank] == 7)

        let report = try s.dream()
        #expect(report["state"] == "finished")
        #expect(report["outcomes"]?["recovered"] == 7)
        #expect(report["repairs"]?["redundancy"]?["recovered"] == 7)
        for (id, body) in bodies {
            let served = try #require(s.served(id))
            #expect(served.fragment.status == .ok, "\(id)")
            #expect(served.fragment.body == body, "\(id) not byte-exact")
        }
        let events = try #require(try s.history("f10"))
        #expect(events.map(\.kind) == ["created", "lost", "queued", "recovered"])
        #expect(events[1].detail["reason"]?.stringValue == backend.reason(for: .lose).rawValue)
        #expect(events[1].detail["detected_by"] == "read")
        #expect(events[2].detail["priority"] == "served_blank")
        #expect(events[3].detail["tier"] == "redundancy")
        #expect(events[3].detail["was"] == "blank")
        #expect(try s.kinds("f1") == ["created", "lost", "queued", "recovered"])
        #expect(s.queue().total == 0)
        #expect(try s.listed(status: .blank) == [])
        #expect(s.store.stats().byStatus[.ok] == 30)
        #expect(s.store.blankCount == 0)
    }

    @Test("the scrub of a cycle finds damage nobody read, and the same cycle repairs it", arguments: Backend.allCases)
    func scrubFindsDamage(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        for index in 0..<10 { try s.put("s\(index)", "scrubbed note \(index) with a few words") }
        let original = try #require(s.served("s4")).fragment.body
        try s.damage(["s4"], .corrupt)
        let report = try s.dream()
        #expect(report["outcomes"]?["recovered"] == 1, "\(report)")
        #expect(report["scrubbed"] == 20, "both records of each of the ten fragments")
        #expect(report["detected"]?["checksum_mismatch"] == 1)
        #expect(s.served("s4")?.fragment.body == original)
        let events = try #require(try s.history("s4"))
        #expect(events.map(\.kind) == ["created", "lost", "queued", "recovered"])
        #expect(events[1].detail["detected_by"] == "scrub")
        #expect(events[2].detail["priority"] == "scrub")
    }

    @Test("a damaged redundancy copy is found by the scrub and written again from the intact record, which it can later replace", arguments: Backend.allCases)
    func redundancyRepaired(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        for index in 0..<5 { try s.put("c\(index)", "a note whose copy is damaged, number \(index)") }
        let original = try #require(s.served("c2")).fragment.body
        try s.damageRedundancy(["c2"])
        #expect(s.served("c2")?.fragment.body == original, "the served record is intact")

        let report = try s.dream()
        #expect(report["detected"]?["redundancy_corrupt"] == 1, "\(report)")
        let events = try #require(try s.history("c2"))
        #expect(events.map(\.kind) == ["created", "redundancy_repaired"])
        #expect(events.last?.detail["reason"] == "checksum_mismatch")
        #expect(events.last?.detail["detected_by"] == "scrub")
        #expect(s.store.stats().redundancyDamageDetected == 1)
        #expect(s.queue(dueBy: Timestamp.now.adding(milliseconds: 3_600_000)).total == 0)

        // The new copy is the one that brings the record back.
        try s.damage(["c2"], .lose)
        #expect(s.blank("c2") != nil)
        #expect(try s.dream()["repairs"]?["redundancy"]?["recovered"] == 1)
        #expect(s.served("c2")?.fragment.body == original)
        #expect(try s.kinds("c2") == ["created", "redundancy_repaired", "lost", "queued", "recovered"])
    }

    @Test("record and redundancy copy both gone: a long text is rebuilt from context, flagged reconstructed with its confidence, and waits in the queue for an exact source", arguments: Backend.allCases)
    func reconstruction(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        // Over the sketch's verbatim budget, so that only context can bring it back.
        let topic = "The tide pools north of the harbour hold anemones, crabs and small fish at low tide. "
            + "Volunteers from the marine station count them every month and publish the counts on the station's notice board. "
            + "Visitors are asked not to lift rocks, because the crabs that hide under them dry out in minutes. "
            + "The best time to visit is an hour before the lowest tide of the day, in calm weather."
        let original = try s.put("pools", topic, links: ["anemones", "crabs"], tags: ["coast"]).fragment
        try s.put("anemones", "Anemones in the tide pools close when the tide goes out.", links: ["pools"])
        try s.put("crabs", "Crabs hide under rocks in the tide pools of the harbour.", links: ["pools"])
        s.indexed(3)
        try s.damage(["pools"], .loseBoth)
        #expect(s.blank("pools")?.row.blankReason == backend.reason(for: .loseBoth))

        let report = try s.dream()
        #expect(report["outcomes"]?["reconstructed"] == 1, "\(report)")
        let rebuilt = try #require(s.served("pools"))
        #expect(rebuilt.fragment.status == .reconstructed)
        #expect(rebuilt.fragment.version == original.version, "a reconstruction keeps the version it stands in for")
        #expect(rebuilt.json["status"] == "reconstructed")
        let confidence = try #require(rebuilt.json["confidence"]?.doubleValue)
        #expect(confidence > 0 && confidence <= 1)
        #expect(rebuilt.json["content"]?.stringValue != topic)
        #expect(rebuilt.json["sources"]?.arrayValue?.isEmpty == false)
        #expect(rebuilt.json["method"]?.stringValue?.isEmpty == false)
        // Words no neighbour says come back from the sketch, as written.
        #expect(rebuilt.json["content"]?.stringValue?.contains("Volunteers") == true)
        #expect(rebuilt.json["links"] == ["anemones", "crabs"])
        #expect(rebuilt.json["tags"] == ["coast"])
        let row = try #require(s.store.row("pools"))
        #expect(row.status == .reconstructed)
        #expect(row.confidence == confidence)
        #expect(row.originalChecksum == original.checksum, "the original's checksum is kept, to verify an exact recovery later")
        #expect(try s.listed(status: .reconstructed) == ["pools"])
        #expect(s.store.stats().byStatus[.reconstructed] == 1)

        let events = try #require(try s.history("pools"))
        #expect(events.map(\.kind) == ["created", "lost", "queued", "reconstructed"])
        #expect(events.last?.detail["confidence"]?.doubleValue != nil)

        // Still queued, at background priority, for an exact source.
        #expect(s.queue(dueBy: Timestamp.now.adding(milliseconds: 3_600_000)).total == 1)
        let ticket = try #require(try s.tickets().first)
        #expect(ticket.id == "pools")
        #expect(ticket.priority == .background)
        #expect(ticket.attempts == 1)

        // A later cycle with still no exact source leaves it as it is, without a history line.
        s.eventually("the retry is due") { s.queue().ready == 1 }
        let again = try s.dream()
        #expect(again["outcomes"]?["still_reconstructed"] == 1, "\(again)")
        #expect(try s.kinds("pools") == ["created", "lost", "queued", "reconstructed"])
        #expect(s.served("pools")?.fragment.status == .reconstructed)

        // The copy comes back (a volume remounted): the next cycle recovers it exactly.
        try s.restoreRedundancy(["pools"])
        s.eventually("the retry is due") { s.queue().ready == 1 }
        let exact = try s.dream()
        #expect(exact["outcomes"]?["recovered"] == 1, "\(exact)")
        let recovered = try #require(s.served("pools"))
        #expect(recovered.fragment.status == .ok)
        #expect(recovered.json["content"]?.stringValue == topic)
        #expect(recovered.fragment.body == original.body)
        let final = try #require(try s.history("pools"))
        #expect(final.map(\.kind) == ["created", "lost", "queued", "reconstructed", "recovered"])
        #expect(final.last?.detail["was"] == "reconstructed")
        #expect(final.last?.detail["tier"] == "redundancy")
        #expect(s.queue(dueBy: Timestamp.now.adding(milliseconds: 3_600_000)).total == 0)
    }

    @Test("short notes lost in both copies come back exact from their sketch; a note with a client vector is flagged reconstructed", arguments: Backend.allCases)
    func sketchTier(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        var bodies: [String: [UInt8]] = [:]
        for (index, note) in AgentNotes.notes.enumerated() {
            bodies[note.id] = try s.put(note.id, note.content, links: note.links, tags: ["rosa", "memory"], metadata: AgentNotes.metadata(index)).fragment.body
        }
        // A client vector is more than a sketch holds: the record cannot be rebuilt byte for byte.
        let vectorText = "Rosa keeps her climbing gear in the blue locker at the Hisingen office."
        try s.put("rosa-vector", FragmentInput(content: vectorText, links: ["rosa-28"], embedding: (0..<8).map { Double($0) / 8 }))
        s.indexed(AgentNotes.notes.count + 1)
        let lost = ["rosa-03", "rosa-11", "rosa-17", "rosa-24", "rosa-30"]
        try s.damage(lost + ["rosa-vector"], .loseBoth)
        for id in lost { #expect(s.blank(id) != nil) }

        let report = try s.dream()
        #expect(report["repairs"]?["sketch"]?["recovered"] == 5, "\(report)")
        #expect(report["outcomes"]?["reconstructed"] == 1)
        for id in lost {
            let served = try #require(s.served(id))
            #expect(served.fragment.status == .ok, "\(id)")
            #expect(served.fragment.body == bodies[id], "\(id) not exact")
            let events = try #require(try s.history(id))
            #expect(events.map(\.kind) == ["created", "lost", "queued", "recovered"])
            #expect(events.last?.detail["tier"] == "sketch", "\(id)")
        }
        let withVector = try #require(s.served("rosa-vector"))
        #expect(withVector.fragment.status == .reconstructed)
        #expect(withVector.json["content"]?.stringValue == vectorText)
    }

    @Test("a blank nothing can rebuild stays blank and says how its repair stands: attempts, last error, next attempt, one history line per attempt", arguments: Backend.allCases)
    func failingRepair(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        // No words and no links: nothing usable survives of it.
        try s.put("wordless", String(repeating: "!!! ??? ", count: 60))
        try s.put("other", "An unrelated note about the weather.")
        s.indexed(2)
        try s.damage(["wordless"], .loseBoth)
        let fresh = try #require(s.blank("wordless"))
        #expect(fresh.progress == RepairProgress(attempts: 0, lastError: nil, notBefore: nil))
        // With cycles by hand only, the next attempt is the scheduled cycle's, far away.
        #expect(s.secondsUntilNextAttempt(fresh.progress) > 600)

        let before = Timestamp.now
        let report = try s.dream()
        #expect(report["outcomes"]?["failed"] == 1, "\(report)")
        let failed = try #require(s.blank("wordless"))
        #expect(failed.progress.attempts == 1)
        #expect(failed.progress.lastError?.isEmpty == false)
        let notBefore = try #require(failed.progress.notBefore)
        // The first retry waits `retryBase` (0.5 s here) after the failure.
        #expect(notBefore >= before.adding(milliseconds: 500))
        var events = try #require(try s.history("wordless"))
        #expect(events.map(\.kind) == ["created", "lost", "queued", "repair_failed"])
        #expect(events.last?.detail["attempt"] == 1)
        #expect(events.last?.detail["reason"]?.stringValue == failed.progress.lastError)
        #expect(events.last?.detail["next_try_at"]?.stringValue == notBefore.rfc3339)

        // Not retried before its time: a cycle now leaves it alone.
        if Timestamp.now < notBefore {
            let early = try s.dream()
            if Timestamp.now < notBefore {
                #expect((early["outcomes"]?["failed"]?.intValue ?? 0) == 0)
                #expect(s.blank("wordless")?.progress.attempts == 1)
            }
        }

        s.eventually("the retry is due") { Timestamp.now > notBefore && s.queue().ready == 1 }
        try s.dream()
        let twice = try #require(s.blank("wordless"))
        #expect(twice.progress.attempts == 2)
        #expect(try #require(twice.progress.notBefore) > notBefore)
        events = try #require(try s.history("wordless"))
        #expect(events.map(\.kind) == ["created", "lost", "queued", "repair_failed", "repair_failed"])
        #expect(events.suffix(2).map { $0.detail["attempt"] } == [1, 2])
        let ticket = try #require(try s.tickets().first)
        #expect(ticket.attempts == 2)
        #expect(ticket.lastError == twice.progress.lastError)
        #expect(s.store.stats().byStatus[.blank] == 1)
    }

    @Test("a blank written again by a client is served at once and its repair dropped; a blank deleted is never rebuilt", arguments: Backend.allCases)
    func blankRewrittenOrDeleted(_ backend: Backend) throws {
        let s = try BackendStore(backend)
        let first = try s.put("rewritten", "the first words of a note", tags: ["t"])
        try s.put("deleted", "a note deleted while it is blank")
        try s.put("kept", "an intact neighbour")
        try s.damage(["rewritten", "deleted"], .loseBoth)
        let blank = try #require(s.blank("rewritten"))
        #expect(s.blank("deleted") != nil)
        #expect(s.queue().total == 2)

        // Preconditions see the blank's version.
        let stale = storeError { try s.put("rewritten", "x", WritePrecondition(ifMatch: [first.fragment.version + 1])) }
        #expect(stale?.code == .preconditionFailed)
        #expect(stale?.currentVersion == blank.row.version)
        #expect(storeError { try s.put("rewritten", "x", WritePrecondition(ifNoneMatchAny: true)) }?.code == .preconditionFailed)
        let again = try s.put("rewritten", "the words written again", WritePrecondition(ifMatch: [blank.row.version]))
        #expect(!again.created)
        let served = try #require(s.served("rewritten"))
        #expect(served.fragment.status == .ok)
        #expect(served.json["content"] == "the words written again")
        #expect(s.store.row("rewritten")?.blankReason == nil)
        #expect(try s.kinds("rewritten") == ["created", "lost", "queued", "updated"])
        try s.delete("deleted")
        #expect(s.isGone("deleted"))
        #expect(s.queue(dueBy: Timestamp.now.adding(milliseconds: 3_600_000)).total == 0)

        let report = try s.dream()
        #expect((report["outcomes"]?["failed"]?.intValue ?? 0) == 0, "\(report)")
        #expect((report["outcomes"]?["reconstructed"]?.intValue ?? 0) == 0, "\(report)")
        #expect(s.served("rewritten")?.json["content"] == "the words written again")
        #expect(s.isGone("deleted"))
        #expect(s.store.stats().byStatus[.blank, default: 0] == 0)
        #expect(try s.listed() == ["kept", "rewritten"])
    }

    @Test("each cycle's report is kept, newest first, within the retention; cycle ids go on after a reopen", arguments: Backend.allCases)
    func cycleReports(_ backend: Backend) throws {
        let s = try BackendStore(backend, retention: Retention(cycleReports: 2))
        try s.put("a", "a note to scrub")
        var ids: [Int] = []
        for _ in 0..<3 { ids.append(try #require(try s.dream()["id"]?.intValue)) }
        #expect(ids == ids.sorted() && Set(ids).count == 3)
        #expect(s.store.lastCycleID() == Int64(ids[2]))
        let stored = try #require(s.store.cycleReport(Int64(ids[2])))
        #expect(stored["id"]?.intValue == ids[2])
        #expect(stored["state"] == "finished")
        #expect(stored["trigger"] == "manual")
        #expect(stored["finished_at"]?.stringValue != nil)
        #expect(stored["scrubbed"]?.intValue == 2, "the fragment's record and its redundancy copy")
        #expect(s.store.recentCycleReports(limit: 10).compactMap { $0["id"]?.intValue } == [ids[2], ids[1]])
        #expect(s.store.recentCycleReports(limit: 1).compactMap { $0["id"]?.intValue } == [ids[2]])
        #expect(s.store.cycleReport(Int64(ids[0])) == nil)
        #expect(s.store.unfinishedCycleReports().isEmpty)
        try s.reopen()
        #expect(try #require(try s.dream()["id"]?.intValue) > ids[2])
    }
}
