import Foundation
import ServiceLifecycle

// The service's parts as swift-service-lifecycle services, for one ServiceGroup in main. The group
// shuts services down in reverse order, so list them store first and HTTP last: HTTP then stops
// accepting first and the store closes last.

extension CarmaService {
    /// The services for a ServiceGroup, in start order: the store (closed last), the dream engine,
    /// then HTTP (stopped first, draining requests in flight).
    public var services: [ServiceGroupConfiguration.ServiceConfiguration] {
        [
            .init(service: StoreLifecycle(service: self)),
            .init(service: DreamLifecycle(service: self)),
            .init(service: HTTPLifecycle(service: self)),
        ]
    }
}

struct StoreLifecycle: Service {
    let service: CarmaService

    func run() async throws {
        try? await gracefulShutdown()
        await offloaded { self.service.store.close() }
    }
}

struct DreamLifecycle: Service {
    let service: CarmaService

    func run() async throws {
        self.service.engine.start()
        try? await gracefulShutdown()
        await offloaded { self.service.engine.stop() }
    }
}

struct HTTPLifecycle: Service {
    let service: CarmaService

    func run() async throws {
        try self.service.start()
        try? await gracefulShutdown()
        self.service.logger.info("shutting down: draining requests in flight")
        await offloaded {
            self.service.ready.store(false, ordering: .relaxed)
            self.service.server.shutdown()
        }
    }
}

/// Runs blocking work on a thread of its own, keeping it off the cooperative pool.
func offloaded(_ body: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let thread = Thread {
            body()
            continuation.resume()
        }
        thread.start()
    }
}
