import FragmentCore

extension FragmentStore: FragmentBackend {
    public var kind: BackendKind { .embedded }
    public var backendAvailable: Bool { true }
    public var backendFailures: Int { 0 }
    public var location: String { self.configuration.dataDirectory }
}
