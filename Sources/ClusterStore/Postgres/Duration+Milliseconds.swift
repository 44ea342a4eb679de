extension Duration {
    /// Whole milliseconds (truncated), for deadlines, leases and PostgreSQL settings.
    var wholeMilliseconds: Int64 {
        self.components.seconds * 1000 + self.components.attoseconds / 1_000_000_000_000_000
    }
}
