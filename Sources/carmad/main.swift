import MicroHTTP
import Logging
import Foundation
import CarmaJSON

var router = Router()
router.add(.get, "/healthz") { _ in .response(.json(200, ["status": "ok"])) }
router.add(.put, "/echo/{id}", body: .json) { req in .response(.json(200, bytes: req.body)) }
router.add(.post, "/slow", body: .optionalJSON) { req in
    .deferred { complete in
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { complete(.json(200, ["slow": true])) }
    }
}
let mem = Int(ProcessInfo.processInfo.environment["MEM"] ?? "65536")!
let server = HTTPServer(configuration: .init(port: 8099, connectionTimeoutSeconds: 3, maxHeaderBytes: mem), router: router, logger: Logger(label: "x"))
try server.start()
print("listening", server.port!)
signal(SIGTERM, SIG_IGN)
let src = DispatchSource.makeSignalSource(signal: SIGTERM)
src.setEventHandler { server.shutdown(); exit(0) }
src.resume()
dispatchMain()
