/// Whether a text says when something happens, and whether a question asks when: agents' notes
/// carry dates ("moved on 28 March"), and "when did …?" is answered by the note that holds one,
/// which the words and the meaning of the question alone rank too low (measured on the project's
/// agent-memory set: docs/retrieval.md, scripts/eval-memory.py). Word lists, English only.
public enum TimeExpressions {
    static let months: Set<String> = [
        "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    ]
    static let days: Set<String> = [
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "yesterday", "tomorrow", "tonight", "today",
        "weekend", "christmas", "easter",
    ]
    static let periods: Set<String> = ["week", "month", "year", "spring", "summer", "autumn", "winter"]
    static let questionUnits: Set<String> = ["date", "day", "month", "year", "time", "week"]

    /// Whether `text` names a date, a day, a month, a year (1900–2099), or a week, month or year
    /// relative to now ("last week", "next year").
    public static func mentionsTime(_ text: String) -> Bool {
        var previous = ""
        for word in Tokenizer.words(text) {
            let lower = word.lowercased()
            if Self.months.contains(lower) || Self.days.contains(lower) { return true }
            if lower.count == 4, let year = Int(lower), (1900...2099).contains(year) { return true }
            if (previous == "last" || previous == "next" || previous == "this"), Self.periods.contains(lower) { return true }
            previous = lower
        }
        return false
    }

    /// Whether a question asks when: it starts with "when", or asks "what/which date, day, month,
    /// year or time", or "how long".
    public static func asksWhen(_ question: String) -> Bool {
        let words = Tokenizer.words(question).map { $0.lowercased() }
        guard let first = words.first else { return false }
        if first == "when" { return true }
        for (word, next) in zip(words, words.dropFirst()) {
            if (word == "what" || word == "which") && Self.questionUnits.contains(next) { return true }
            if word == "how" && next == "long" { return true }
        }
        return false
    }
}
