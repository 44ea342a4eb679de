#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time in milliseconds since the Unix epoch, as the registry stores it.
public struct Timestamp: Sendable, Hashable, Comparable, Codable {
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    public static var now: Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(milliseconds: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.milliseconds < rhs.milliseconds
    }

    public func adding(milliseconds: Int64) -> Timestamp {
        Timestamp(milliseconds: self.milliseconds + milliseconds)
    }

    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-29T23:40:00.123Z`.
    public var rfc3339: String {
        // Floored, so that a time before 1970 keeps milliseconds from 0 to 999 (truncation printed
        // "-6" there, a text no parser reads back: the import fuzz target found it).
        let wholeSeconds = self.milliseconds >= 0 ? self.milliseconds / 1000 : -((-self.milliseconds + 999) / 1000)
        var seconds = time_t(wholeSeconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let millis = Int(self.milliseconds - wholeSeconds * 1000)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }
}

extension Timestamp {
    /// Parses any RFC 3339 date-time a client may send: `T` or `t`, seconds with 0 to 9 fractional
    /// digits (kept to the millisecond), and `Z` or a numeric offset. Years 0000 to 9999; nil for
    /// anything else, including impossible dates (February 30) and out-of-range fields.
    public init?(parsingRFC3339 text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 40 else { return nil }
        var index = 0
        func digits(_ count: Int) -> Int64? {
            guard index + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<count {
                guard (48...57).contains(bytes[index]) else { return nil }
                value = value * 10 + Int64(bytes[index] - 48)
                index += 1
            }
            return value
        }
        func expect(_ allowed: String) -> Bool {
            guard index < bytes.count, allowed.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2), expect("Tt"),
            let hour = digits(2), expect(":"), let minute = digits(2), expect(":"), let second = digits(2)
        else { return nil }
        var millis: Int64 = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            var count = 0
            while index < bytes.count, (48...57).contains(bytes[index]) {
                if count < 3 { millis = millis * 10 + Int64(bytes[index] - 48) }
                count += 1
                index += 1
            }
            guard (1...9).contains(count) else { return nil }
            var scale = count
            while scale < 3 {
                millis *= 10
                scale += 1
            }
        }
        var offsetMinutes: Int64 = 0
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "Z") || bytes[index] == UInt8(ascii: "z") {
            index += 1
        } else {
            let sign: Int64 = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            guard expect("+-"), let offsetHours = digits(2), expect(":"), let offsetMins = digits(2), offsetHours <= 23, offsetMins <= 59 else {
                return nil
            }
            offsetMinutes = sign * (offsetHours * 60 + offsetMins)
        }
        guard index == bytes.count else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let monthDays: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        // A leap second (:60) is accepted and read as the last millisecond of its minute's 59th second.
        guard (1...12).contains(month), day >= 1, day <= monthDays[Int(month - 1)], hour <= 23, minute <= 59, second <= 60 else { return nil }
        guard let utc = Timestamp(rfc3339: Self.canonical(year, month, day, hour, minute, min(second, 59), second == 60 ? 999 : millis)) else {
            return nil
        }
        self.init(milliseconds: utc.milliseconds - offsetMinutes * 60_000)
    }

    private static func canonical(_ year: Int64, _ month: Int64, _ day: Int64, _ hour: Int64, _ minute: Int64, _ second: Int64, _ millis: Int64) -> String {
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(millis, 3))Z"
    }
}
