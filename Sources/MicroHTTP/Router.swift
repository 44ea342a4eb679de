/// One route: a method and a path template, what it accepts as a body, and its handler.
///
/// A class, so that passing the matched route along with a request costs one reference count
/// rather than one per field.
public final class Route: Sendable {
    public let method: HTTPMethod
    public let template: PathTemplate
    public let body: BodyPolicy
    public let preflight: HTTPPreflight?
    public let handler: HTTPHandler

    init(method: HTTPMethod, template: PathTemplate, body: BodyPolicy, preflight: HTTPPreflight?, handler: @escaping HTTPHandler) {
        self.method = method
        self.template = template
        self.body = body
        self.preflight = preflight
        self.handler = handler
    }
}

/// Maps a method and a raw path to a route.
///
/// A `HEAD` request is served by the `GET` route of the same path unless one is registered for `HEAD`;
/// the server then sends the headers without the body.
public struct Router: Sendable {
    /// Routes grouped by template, fewest parameters first.
    private var groups: [(template: PathTemplate, routes: [Route])] = []
    /// Each group's shape, in the same order: plain integers, so that ruling a group out costs no
    /// reference counting.
    private var shapes: [PathTemplate.Shape] = []

    public init() {}

    /// Registers a route.
    /// - Parameters:
    ///   - method: The request method.
    ///   - template: A path template, e.g. `/fragments/{id}`.
    ///   - body: What the route expects of a request body; checked before the body is read.
    ///   - preflight: A check on the request head, e.g. authorization.
    ///   - handler: Produces the result.
    public mutating func add(
        _ method: HTTPMethod,
        _ template: String,
        body: BodyPolicy = .none,
        preflight: HTTPPreflight? = nil,
        handler: @escaping HTTPHandler
    ) {
        let template = PathTemplate(template)
        let route = Route(method: method, template: template, body: body, preflight: preflight, handler: handler)
        if let index = self.groups.firstIndex(where: { $0.template == template }) {
            precondition(!self.groups[index].routes.contains(where: { $0.method == method }), "duplicate route \(method) \(template)")
            self.groups[index].routes.append(route)
        } else {
            self.groups.append((template, [route]))
            // Fewest parameters first, so that a literal segment beats a parameter.
            self.groups.sort { $0.template.parameterCount < $1.template.parameterCount }
            self.shapes = self.groups.map(\.template.shape)
        }
    }

    public enum Resolution: Sendable {
        case found(Route, parameters: PathParameters)
        case notFound
        case methodNotAllowed(route: String, allowed: [HTTPMethod])
        /// The path matched a route but a parameter is not valid percent-encoded UTF-8.
        case malformedPath(route: String)
    }

    /// Finds the route for a request method and a raw path (without the query).
    public func resolve(_ method: HTTPMethod, path: String) -> Resolution {
        var path = path
        return path.withUTF8 { self.resolve(method, bytes: $0) }
    }

    private func resolve(_ method: HTTPMethod, bytes: UnsafeBufferPointer<UInt8>) -> Resolution {
        var malformed: PathTemplate?
        let shape = PathTemplate.Shape(path: bytes)
        for index in self.shapes.indices where self.shapes[index].admits(shape) {
            switch self.groups[index].template.match(bytes) {
            case .noMatch:
                continue
            case .malformed:
                malformed = malformed ?? self.groups[index].template
            case .matched(let parameters):
                let group = self.groups[index]
                if let route = group.routes.first(where: { $0.method == method })
                    ?? (method == .head ? group.routes.first(where: { $0.method == .get }) : nil)
                {
                    return .found(route, parameters: parameters)
                }
                var allowed = group.routes.map(\.method)
                if allowed.contains(.get), !allowed.contains(.head) {
                    allowed.append(.head)
                }
                return .methodNotAllowed(route: group.template.description, allowed: allowed)
            }
        }
        if let malformed {
            return .malformedPath(route: malformed.description)
        }
        return .notFound
    }
}
