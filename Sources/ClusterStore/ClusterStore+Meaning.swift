import CarmaEmbedding
import CarmaText
import Foundation
import FragmentCore
import Synchronization

// The built-in model in cluster mode: the nodes share the embedding work by claiming fragments
// (a claim expires, so a node that dies leaves nothing stuck), store each meaning in
// `carma_meanings` as int8 with the model's identity (name and weights' fingerprint), and announce
// it on the change feed, from which every node's index takes it. Meanings of another model are
// neither loaded nor kept: they are claimed and computed again, a batch at a time, while queries
// go on by words and by the meanings already made.

extension ClusterStore {
    /// The tags of the meanings this node reads: its model's identity, and its name alone, as a
    /// carmad before model identities tagged them ("" without a model: none match). It writes the
    /// identity.
    var modelTags: [String] { self.configuration.encoder.map { [$0.identity, $0.name] } ?? [""] }

    static let claimEmbedding = PGStatement(
        "carma_claim_embedding",
        """
        WITH todo AS (
            SELECT f.id FROM carma_fragments f
            LEFT JOIN carma_meanings m ON m.id = f.id
            LEFT JOIN carma_embed_claims k ON k.id = f.id
            WHERE f.status <> 'blank' AND (m.id IS NULL OR m.version <> f.version OR m.model <> ALL($1::text[])) AND (k.id IS NULL OR k.until < $2)
            ORDER BY f.updated_at DESC LIMIT $3)
        INSERT INTO carma_embed_claims (id, owner, until) SELECT id, $4, $5 FROM todo
        ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, until = excluded.until WHERE carma_embed_claims.until < $2
        RETURNING id
        """)
    static let claimedTexts = PGStatement(
        "carma_claimed_texts",
        "SELECT f.id, f.version, f.checksum, p.record FROM carma_fragments f JOIN carma_payloads p ON p.id = f.id AND p.version = f.version WHERE f.id = ANY($1::text[])")
    static let saveMeaning = PGStatement(
        "carma_save_meaning",
        """
        WITH f AS (SELECT id FROM carma_fragments WHERE id = $1 AND version = $2),
        m AS (INSERT INTO carma_meanings (id, version, model, vector) SELECT id, $2::bigint, $3::text, $4::bytea FROM f
              ON CONFLICT (id) DO UPDATE SET version = excluded.version, model = excluded.model, vector = excluded.vector),
        c AS (INSERT INTO carma_changes (id, at) SELECT id, $5::bigint FROM f),
        k AS (DELETE FROM carma_embed_claims WHERE id = $1)
        SELECT count(*) FROM f
        """)
    static let releaseClaims = PGStatement("carma_release_claims", "DELETE FROM carma_embed_claims WHERE id = ANY($1::text[]) AND owner = $2")

    /// Claims up to `limit` fragments whose meaning is missing or stale, embeds them and stores the
    /// meanings; returns how many it embedded (0: nothing to do, or the database is away).
    func embedBatch(limit: Int) -> Int {
        guard let encoder = self.configuration.encoder else { return 0 }
        let now = Timestamp.now
        let node = self.configuration.nodeName
        // Long enough for a batch at the model's slowest (about 10 fragments/s on one core in fp32).
        let until = now.adding(milliseconds: Int64(limit) * 2_000 + 30_000)
        guard
            let claimed = try? self.pool.with({ connection, deadline throws(PGError) in
                try connection.run(
                    Self.claimEmbedding, [.texts(self.modelTags), .int(now.milliseconds), .int(limit), .text(node), .int(until.milliseconds)], deadline: deadline)
            }).all.compactMap({ $0.string(0) }), !claimed.isEmpty,
            let texts = try? self.pool.with({ connection, deadline throws(PGError) in
                try connection.run(Self.claimedTexts, [.texts(claimed)], deadline: deadline)
            })
        else { return 0 }
        var pending: [(id: String, version: Int64, content: String)] = []
        for r in texts.all {
            // A record that does not verify is left to the read path (it turns blank there).
            guard let id = r.string(0), let version = r.int(1), let checksum = r.int(2), let bytes = r.bytes(3),
                UInt32(truncatingIfNeeded: checksum) == CRC32C.checksum(bytes), let record = FragmentRecord.decode(bytes)
            else { continue }
            pending.append((id, version, record.content))
        }
        var done = 0
        for (item, meaning) in zip(pending, encoder.embed(batch: pending.map(\.content))) {
            let vector = TextIndex.quantize(meaning)
            let saved = try? self.pool.with { connection, deadline throws(PGError) in
                try connection.run(
                    Self.saveMeaning,
                    [.text(item.id), .int(item.version), .text(encoder.identity), .bytes(vector.map { UInt8(bitPattern: $0) }), .int(Timestamp.now.milliseconds)],
                    deadline: deadline)
            }
            if saved != nil {
                done += 1
                self.embedder.computed.add(1, ordering: .relaxed)
            }
        }
        _ = try? self.pool.with { connection, deadline throws(PGError) in
            try connection.run(Self.releaseClaims, [.texts(claimed), .text(node)], deadline: deadline)
        }
        if done > 0 { self.follower.poke() }
        return done
    }

    public var meaningStatus: MeaningStatus {
        let size = self.text.size
        let (count, dimensions, embedded) = (size.fragments, self.configuration.encoder?.dimensions ?? 0, size.meanings)
        return MeaningStatus(
            model: self.configuration.encoder?.name, dimensions: dimensions, embedded: embedded,
            backlog: self.configuration.encoder == nil ? 0 : max(0, count - embedded), computed: self.embedder.computed.load(ordering: .relaxed))
    }

    public func meaning(of id: String) -> [Float]? { self.text.meaning(of: id) }

    public func nearestByMeaning(to vector: [Float], k: Int, in namespace: String, excluding excluded: Set<String>) -> [(id: String, score: Double)] {
        self.text.namespace(namespace).nearestByMeaning(to: vector, k: k, excluding: excluded)
    }

    public func embed(_ text: String) -> [Float]? { self.configuration.encoder?.embed(text) }

    public func embed(batch texts: [String]) -> [[Float]]? { self.configuration.encoder?.embed(batch: texts) }
}

/// The threads that work off the shared embedding backlog: a batch at a time while there is work,
/// a look every two seconds (or when this node writes) when there is none. The first thread runs at
/// normal priority, the others (`SentenceEncoder.backgroundThreads` in all) at low priority, on the
/// cores the foreground leaves idle; claims keep them from embedding the same fragment.
final class ClusterEmbedder: Sendable {
    let computed = Atomic<Int>(0)
    private let team = WorkerTeam(name: "embedder", interval: 2)

    /// The embedding workers, once started.
    var workers: [Worker] { self.team.workers }

    func start(store: ClusterStore) {
        self.team.start(count: store.configuration.encoder?.backgroundThreads ?? 1) {
            store.embedBatch(limit: 16) == 0 ? .idle : .worked
        }
    }

    /// Asks for a look now (this node just wrote).
    func poke() {
        self.team.wake()
    }

    func stop() {
        self.team.stop()
    }
}
