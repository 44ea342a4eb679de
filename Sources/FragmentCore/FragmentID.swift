/// Rules for fragment ids: 1 to 200 characters of `[A-Za-z0-9._~-]`, not starting with `.`.
///
/// The alphabet is RFC 3986's unreserved set, so an id never needs percent-encoding in a URL, and
/// the leading-dot rule keeps `.` and `..` (and hidden-file look-alikes) out.
public enum FragmentID {
    public static let maxLength = 200

    /// Whether `id` is acceptable; `reason` says why not.
    public static func validate(_ id: String) -> String? {
        let utf8 = id.utf8
        if utf8.isEmpty { return "an id must not be empty" }
        if utf8.count > maxLength { return "an id may have at most \(maxLength) characters" }
        if utf8.first == UInt8(ascii: ".") { return "an id must not start with '.'" }
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"), UInt8(ascii: "-"):
                continue
            default:
                return "an id may contain only letters, digits and . _ ~ -"
            }
        }
        return nil
    }

    public static func isValid(_ id: String) -> Bool {
        validate(id) == nil
    }
}
