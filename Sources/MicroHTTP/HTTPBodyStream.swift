/// A response body produced while it is sent, for answers too large to hold in memory (an export):
/// the server asks for the next bytes whenever the connection can take more and sends them
/// chunked, so memory stays bounded by one block plus what the stream holds itself.
///
/// `read` is called on a server thread, one call at a time for a given response; it should not
/// block for long. `close` is called exactly once when the server is done with the body (sent,
/// or the connection was lost), from any thread.
public protocol HTTPBodyStream: AnyObject, Sendable {
    /// Fills the start of `buffer` with the next bytes.
    func read(into buffer: UnsafeMutableRawBufferPointer) -> HTTPBodyStreamRead
    func close()
}

/// What one `HTTPBodyStream.read` produced.
public enum HTTPBodyStreamRead: Sendable, Equatable {
    /// This many bytes (at least one) were written to the buffer.
    case bytes(Int)
    /// The body is complete.
    case end
    /// The body cannot be completed: the connection is closed without the final chunk, so the
    /// client sees an incomplete response instead of a short one that looks whole.
    case failed
}
