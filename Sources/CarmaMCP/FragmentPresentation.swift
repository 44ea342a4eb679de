import CarmaJSON

/// How a fragment, a hit or a listing row is shown to a model: every one carries `status` and
/// `rebuild_needed`, a reconstruction its `confidence`, and the text says plainly when what follows
/// is not the stored words (a blank has no content at all).
enum FragmentPresentation {
    /// The object with the flags made explicit: `rebuild_needed` always, `exact` (only `ok` is the
    /// stored text byte for byte).
    static func flagged(_ object: JSONObject) -> JSONObject {
        var flagged = object
        let status = object["status"]?.stringValue ?? "ok"
        if flagged["status"] == nil { flagged["status"] = .string(status) }
        if flagged["rebuild_needed"] == nil { flagged["rebuild_needed"] = .bool(status == "blank") }
        flagged["exact"] = .bool(status == "ok")
        return flagged
    }

    /// One line naming the fragment and what its status means for the reader.
    static func headline(_ object: JSONObject) -> String {
        let id = object["id"]?.stringValue ?? "?"
        let version = object["version"]?.intValue.map { "version \($0)" } ?? "unknown version"
        switch object["status"]?.stringValue ?? "ok" {
        case "blank":
            let reason = object["reason"]?.stringValue ?? "missing"
            var line = "'\(id)' (\(version)): BLANK, rebuild_needed. Its content was lost (\(reason)); no content is available"
            let rebuild = object["rebuild"]
            if rebuild?["state"] == "failed" {
                let attempts = rebuild?["attempts"]?.intValue ?? 1
                line += ". \(attempts) repair attempt\(attempts == 1 ? "" : "s") failed"
                if let error = rebuild?["last_error"]?.stringValue { line += " (\(error))" }
            }
            if let eta = rebuild?["eta_seconds"]?.intValue {
                line += rebuild?["state"] == "failed" ? "; next attempt in about \(eta) s" : ". A repair is planned in about \(eta) s"
            } else {
                line += ". No repair attempt is planned"
            }
            return line + "."
        case "reconstructed":
            let confidence = object["confidence"]?.doubleValue.map { String(format: "%.2f", $0) } ?? "unknown"
            var line = "'\(id)' (\(version)): RECONSTRUCTED, approximate text rebuilt from related fragments (confidence \(confidence)), not the original words"
            if let sources = object["sources"]?.arrayValue?.compactMap(\.stringValue), !sources.isEmpty {
                line += "; sources: \(sources.joined(separator: ", "))"
            }
            return line + "."
        case let status:
            return "'\(id)' (\(version), \(status))."
        }
    }

    /// The whole fragment as text: headline, content (if any), links and tags.
    static func describe(_ object: JSONObject) -> String {
        var lines = [self.headline(object)]
        if let content = object["content"]?.stringValue {
            lines.append(content)
        }
        if let links = object["links"]?.arrayValue?.compactMap(\.stringValue), !links.isEmpty {
            lines.append("links: \(links.joined(separator: ", "))")
        }
        if let tags = object["tags"]?.arrayValue?.compactMap(\.stringValue), !tags.isEmpty {
            lines.append("tags: \(tags.joined(separator: ", "))")
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    /// The id made safe as one path segment: letters, digits, `-`, `_` and `~` as they are, every
    /// other byte percent-encoded (dots too, so that `.` and `..` never read as path steps), so that a bad id reaches carmad (which explains what is wrong with it)
    /// instead of changing the path.
    var pathSegment: String {
        var out = ""
        for byte in self.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    private func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - self.count)) + self
    }
}
