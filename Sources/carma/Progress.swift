import Foundation

/// A progress bar on standard error, drawn only when standard error is a terminal (quiet in logs
/// and pipes), at most ten times a second.
final class Progress {
    private let label: String
    private let total: Int?
    private let enabled = isatty(STDERR_FILENO) == 1
    private var lastDrawn = Date.distantPast
    private(set) var done = 0

    init(_ label: String, total: Int?) {
        self.label = label
        self.total = total
    }

    func advance(by count: Int) {
        self.done += count
        guard self.enabled, Date().timeIntervalSince(self.lastDrawn) >= 0.1 else { return }
        self.draw()
    }

    func finish() {
        guard self.enabled else { return }
        self.draw()
        FileHandle.standardError.write(Data("\n".utf8))
    }

    private func draw() {
        self.lastDrawn = Date()
        var line = "\r\(self.label) \(self.done)"
        if let total = self.total, total > 0 {
            let share = min(1, Double(self.done) / Double(total))
            let width = 30
            let filled = Int(share * Double(width))
            line = "\r\(self.label) [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                + "] \(self.done)/\(total) (\(Int(share * 100))%)"
        }
        FileHandle.standardError.write(Data(line.utf8))
    }
}
