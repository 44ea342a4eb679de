import CarmaJSON
import FragmentCore
import Foundation
import Synchronization

/// The embedded store's namespace catalog: a journal of changes (namespace set, namespace removed,
/// token added, token revoked), one checksummed JSON line each, appended and synced before a change
/// returns. It is kept twice, in the data directory and next to the redundancy log, like the
/// fragments; at open the longer intact copy wins and the other is rewritten from it.
///
/// A torn last line (a crash during an append, never acknowledged) is cut. Damage before the end is
/// refused at open: skipping a line could bring a revoked token back.
final class NamespaceJournal: NamespaceCatalog {
    private struct State {
        var namespaces: [String: NamespaceEntry] = [:]
        var tokens: [String: NamespaceToken] = [:]
        var floors: [String: UInt64] = [:]
        var lines = 0
    }

    private let paths: [String]
    private let state = Mutex(State())
    /// Serialises appends (and the rewrite at open) across both copies.
    private let writer = Mutex<[Int32]>([])

    init(paths: [String]) throws(StoreError) {
        self.paths = paths
        var best: (lines: [[UInt8]], path: String)?
        var copies: [String: Int] = [:]
        var damage: StoreError?
        for path in paths where FileSystem.exists(path) {
            let lines: [[UInt8]]
            do {
                lines = try Self.intactLines(path)
            } catch {
                damage = error
                continue
            }
            copies[path] = lines.count
            if best == nil || lines.count > best!.lines.count { best = (lines, path) }
        }
        // Every change is synced to both copies before it returns: one intact copy holds them all.
        if best == nil, let damage { throw damage }
        var state = State()
        for line in best?.lines ?? [] {
            guard let change = try? JSONParser.parse(line, maxDepth: 8).objectValue else {
                throw StoreError(.io, "the namespace journal \(best!.path) holds a line that is not a change; restore it from a backup")
            }
            Self.apply(change, to: &state)
        }
        state.lines = best?.lines.count ?? 0
        self.state.withLock { $0 = state }
        // Both copies equal to the chosen one, and open for appends.
        let content = (best?.lines ?? []).flatMap { Self.frame($0) }
        var descriptors: [Int32] = []
        do throws(FileError) {
            for path in paths {
                if copies[path] != best?.lines.count || FileSystem.size(path) != Int64(content.count) {
                    try FileSystem.makeParents(of: path)
                    try FileSystem.writeDurably(path, content)
                }
                let fd = try FileSystem.openReadWrite(path, create: true)
                descriptors.append(fd)
            }
        } catch {
            descriptors.forEach(FileSystem.closeDescriptor)
            throw .from(error, doing: "open the namespace journal")
        }
        self.writer.withLock { $0 = descriptors }
    }

    deinit {
        self.writer.withLock { $0.forEach(FileSystem.closeDescriptor) }
    }

    // MARK: Reading

    func entry(_ name: String) -> NamespaceEntry? {
        if name == Namespace.default {
            return self.state.withLock { $0.namespaces[name] } ?? NamespaceEntry(name: name, createdAt: Timestamp(milliseconds: 0))
        }
        return self.state.withLock { $0.namespaces[name] }
    }

    func entries(after: String?, limit: Int) throws(StoreError) -> [NamespaceEntry] {
        let all = self.state.withLock { state in
            var all = state.namespaces
            if all[Namespace.default] == nil { all[Namespace.default] = NamespaceEntry(name: Namespace.default, createdAt: Timestamp(milliseconds: 0)) }
            return all
        }
        return all.values.filter { after == nil || $0.name > after! }.sorted { $0.name < $1.name }.prefix(limit).map { $0 }
    }

    func token(_ id: String) -> NamespaceToken? {
        self.state.withLock { $0.tokens[id] }
    }

    func tokens(of namespace: String) throws(StoreError) -> [NamespaceToken] {
        self.state.withLock { $0.tokens.values.filter { $0.namespace == namespace } }.sorted { $0.createdAt < $1.createdAt || $0.createdAt == $1.createdAt && $0.id < $1.id }
    }

    // MARK: Changes

    func create(_ name: String, quota: NamespaceQuota?) throws(StoreError) -> (entry: NamespaceEntry, created: Bool) {
        try self.writer.withLock { descriptors throws(StoreError) in
            // `default` always exists (entry(_:) makes it up until the journal has a line for it).
            let existing = self.entry(name)
            if let existing, quota == nil || quota == existing.quota { return (existing, false) }
            let entry = NamespaceEntry(name: name, quota: quota ?? existing?.quota ?? .none, createdAt: existing?.createdAt ?? .now)
            try self.append(Self.change(entry), descriptors)
            return (entry, existing == nil)
        }
    }

    func remove(_ name: String, floor: UInt64) throws(StoreError) {
        try self.writer.withLock { descriptors throws(StoreError) in
            guard self.state.withLock({ $0.namespaces[name] }) != nil else { return }
            try self.append(["op": "remove", "name": .string(name), "floor": .exact(floor), "at": .exact(Timestamp.now.milliseconds)], descriptors)
        }
    }

    func versionFloor(_ name: String) -> UInt64 {
        self.state.withLock { $0.floors[name] ?? 0 }
    }

    func addToken(_ token: NamespaceToken) throws(StoreError) {
        try self.writer.withLock { descriptors throws(StoreError) in
            try self.append(
                [
                    "op": "token", "id": .string(token.id), "namespace": .string(token.namespace), "scope": .string(token.scope.rawValue),
                    "hash": .string(Self.hex(token.hash)), "at": .exact(token.createdAt.milliseconds),
                ], descriptors)
        }
    }

    func revokeToken(_ id: String, of namespace: String) throws(StoreError) -> Bool {
        try self.writer.withLock { descriptors throws(StoreError) in
            guard self.state.withLock({ $0.tokens[id]?.namespace }) == namespace else { return false }
            try self.append(["op": "revoke", "id": .string(id)], descriptors)
            return true
        }
    }

    /// Appends one change to both copies, syncs them, then applies it (writer lock held).
    private func append(_ change: JSONObject, _ descriptors: [Int32]) throws(StoreError) {
        let line = Self.frame(JSONValue.object(change).bytes)
        do throws(FileError) {
            for (fd, path) in zip(descriptors, self.paths) {
                let end = UInt64(FileSystem.size(of: fd) ?? 0)
                try FileSystem.writeAll(fd, line, at: end, path: path)
                try FileSystem.syncData(fd, path: path)
            }
        } catch {
            throw .from(error, doing: "write the namespace journal")
        }
        self.state.withLock { state in
            Self.apply(change, to: &state)
            state.lines += 1
        }
    }

    // MARK: The format

    private static func change(_ entry: NamespaceEntry) -> JSONObject {
        ["op": "namespace", "name": .string(entry.name), "quota": entry.quota.json, "at": .exact(entry.createdAt.milliseconds)]
    }

    private static func apply(_ change: JSONObject, to state: inout State) {
        let at = change["at"]?.exactInteger.map { Timestamp(milliseconds: $0) } ?? Timestamp(milliseconds: 0)
        switch change["op"]?.stringValue {
        case "namespace":
            guard let name = change["name"]?.stringValue, Namespace.validate(name) == nil else { return }
            let quota = change["quota"]?.objectValue
            state.namespaces[name] = NamespaceEntry(
                name: name,
                quota: NamespaceQuota(fragments: quota?["fragments"]?.exactInteger.map { Int($0) }, bytes: quota?["bytes"]?.exactInteger),
                createdAt: at)
        case "remove":
            guard let name = change["name"]?.stringValue else { return }
            state.namespaces[name] = nil
            state.tokens = state.tokens.filter { $0.value.namespace != name }
            let floor = change["floor"]?.exactInteger.map { UInt64(max(0, $0)) } ?? 0
            state.floors[name] = max(state.floors[name] ?? 0, floor)
        case "token":
            guard let id = change["id"]?.stringValue, let namespace = change["namespace"]?.stringValue,
                let scope = change["scope"]?.stringValue.flatMap(TokenScope.init(rawValue:)),
                let hash = change["hash"]?.stringValue.flatMap(Self.bytes(hex:)), hash.count == 32
            else { return }
            state.tokens[id] = NamespaceToken(id: id, namespace: namespace, scope: scope, hash: hash, createdAt: at)
        case "revoke":
            if let id = change["id"]?.stringValue { state.tokens[id] = nil }
        default:
            return
        }
    }

    /// `<crc32c, 8 hex digits> <json>\n`.
    private static func frame(_ json: [UInt8]) -> [UInt8] {
        Array(Self.hex32(CRC32C.checksum(json)).utf8) + [UInt8(ascii: " ")] + json + [UInt8(ascii: "\n")]
    }

    /// The JSON of every line that checks out; a torn last line is left out, damage before it throws.
    private static func intactLines(_ path: String) throws(StoreError) -> [[UInt8]] {
        let bytes: [UInt8]
        do {
            bytes = try FileSystem.read(path)
        } catch {
            throw .from(error, doing: "read the namespace journal \(path)")
        }
        var lines: [[UInt8]] = []
        var start = 0
        while start < bytes.count {
            guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else { break }  // torn tail
            let line = bytes[start..<end]
            guard line.count > 9, line[line.startIndex + 8] == UInt8(ascii: " "),
                let checksum = UInt32(String(decoding: line.prefix(8), as: UTF8.self), radix: 16),
                CRC32C.checksum(Array(line.dropFirst(9))) == checksum
            else {
                throw StoreError(.io, "the namespace journal \(path) is damaged at byte \(start); restore it from a backup or from its other copy")
            }
            lines.append(Array(line.dropFirst(9)))
            start = end + 1
        }
        return lines
    }

    private static func hex32(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    static func bytes(hex: String) -> [UInt8]? {
        let utf8 = Array(hex.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for at in stride(from: 0, to: utf8.count, by: 2) {
            guard let byte = UInt8(String(decoding: utf8[at..<at + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
