/// What a route expects of a request body, checked from the head before the body is read.
public struct BodyPolicy: Sendable {
    /// Whether a body must be sent (a missing `Content-Length` is then 411).
    public var required: Bool
    /// Accepted media types (lowercased essence, e.g. `application/json`); empty accepts none.
    public var mediaTypes: [String]

    public init(required: Bool, mediaTypes: [String]) {
        self.required = required
        self.mediaTypes = mediaTypes
    }

    /// No body expected; one that is sent is read and ignored.
    public static let none = BodyPolicy(required: false, mediaTypes: [])
    /// A JSON body must be sent.
    public static let json = BodyPolicy(required: true, mediaTypes: ["application/json"])
    /// A JSON body may be sent.
    public static let optionalJSON = BodyPolicy(required: false, mediaTypes: ["application/json"])

    public var acceptsBody: Bool { !self.mediaTypes.isEmpty }
}
