// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "carma",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "carmad", targets: ["carmad"]),
        .executable(name: "carma", targets: ["carma"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", exact: "0.12.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
    ],
    targets: [
        // C libraries, each behind a module map and a small shim header.
        .systemLibrary(
            name: "CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]
        ),
        .systemLibrary(name: "CISAL", providers: [.apt(["libisal-dev"])]),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPostgres", providers: [.apt(["libpq-dev"])]),
        // The encoder's reduced-precision path: oneDNN's int8/bf16 matrix products (Debian's
        // libdnnl-dev, on OpenMP) and AVX-512 passes behind a runtime CPU check.
        .target(
            name: "CEncoderKernels",
            linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("gomp")]
        ),

        // HTTP over libmicrohttpd; knows nothing of fragments.
        .target(
            name: "MicroHTTP",
            dependencies: ["CMicroHTTPD", "CarmaJSON", .product(name: "Logging", package: "swift-log")]
        ),
        // A strict JSON value type, parser and writer shared by server and client.
        .target(name: "CarmaJSON"),
        // hnswlib (Debian's libhnswlib-dev, header-only C++) behind a small C interface: an HNSW graph
        // over int8 vectors. -O3: the graph's search and build are all loops over vectors; the
        // AVX2 distance is chosen at run time, so the code runs on any x86-64.
        .target(
            name: "CHNSW",
            cxxSettings: [.unsafeFlags(["-O3", "-std=c++17"])],
            linkerSettings: [.linkedLibrary("stdc++")]
        ),
        // Approximate nearest-neighbour search for the retrieval index: VectorIndex over CHNSW.
        .target(name: "CarmaVectors", dependencies: ["CHNSW"]),
        // Tokenizing, sketches and the in-memory retrieval index (its vector search through CarmaVectors).
        .target(name: "CarmaText", dependencies: ["CarmaVectors"]),
        // Sentence embeddings on the CPU: WordPiece, a BERT encoder over OpenBLAS (fp32) or oneDNN
        // (bf16, int8), safetensors weights.
        .target(name: "CarmaEmbedding", dependencies: ["CEncoderKernels", "COpenBLAS", "CarmaJSON"]),
        // The backend contract both backends keep: fragment, row and record types, the backend and repair
        // protocols, ranking and fusion, sketch recovery, the byte-bounded cache and the shared locks.
        .target(
            name: "FragmentCore",
            dependencies: ["CISAL", "CarmaEmbedding", "CarmaJSON", "CarmaText"]
        ),
        // The embedded backend: segment logs, the SQLite registry, redundancy, index and cache on one machine.
        .target(
            name: "FragmentStore",
            dependencies: [
                "CSQLite", "FragmentCore", "CarmaEmbedding", "CarmaJSON", "CarmaText",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Cluster mode: the same store seams on PostgreSQL (libpq), shared by several carmad nodes.
        .target(
            name: "ClusterStore",
            dependencies: [
                "CPostgres", "FragmentCore", "CarmaEmbedding", "CarmaJSON", "CarmaText",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Repair queue, scheduler, recovery tiers, scrub and reconstruction.
        .target(
            name: "DreamEngine",
            dependencies: [
                "FragmentCore", "CarmaText",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The HTTP API: routes, JSON models, validation, problem errors, metrics.
        // The console's files (Console/) are built in as string literals (ConsoleAssets.swift).
        .target(
            name: "CarmaService",
            dependencies: [
                "MicroHTTP", "FragmentCore", "DreamEngine", "CarmaJSON", "CarmaText",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["Console"]
        ),
        // A small blocking HTTP/1.1 client and the API calls, for the CLI, the harness and tests.
        .target(name: "CarmaClient", dependencies: ["CarmaJSON"]),
        // `carma mcp`: the store's tools for agent hosts over the Model Context Protocol, through CarmaClient.
        .target(
            name: "CarmaMCP",
            dependencies: [
                "CarmaClient", "CarmaJSON",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Damages a store's files as a failing disk would, for the experiment and the tests.
        .target(name: "CarmaFaults"),

        .executableTarget(
            name: "carmad",
            dependencies: [
                "CarmaEmbedding", "CarmaFaults", "CarmaService", "CarmaText", "ClusterStore", "DreamEngine", "FragmentCore", "FragmentStore", "MicroHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "carma",
            dependencies: [
                "CarmaClient", "CarmaEmbedding", "CarmaFaults", "CarmaJSON", "CarmaMCP", "CarmaText",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // bench/vector-1m.sh: the text index's vector search at a million vectors, scan against graph.
        .executableTarget(
            name: "carma-vector-bench",
            dependencies: [
                "CarmaEmbedding", "CarmaJSON", "CarmaText", "CarmaVectors",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .target(name: "CarmaTesting", dependencies: ["CarmaClient", "CarmaFaults", "CarmaJSON"], path: "Tests/CarmaTesting"),
        .testTarget(name: "MicroHTTPTests", dependencies: ["MicroHTTP", "CarmaTesting"]),
        .testTarget(name: "CarmaJSONTests", dependencies: ["CarmaJSON"]),
        .testTarget(name: "CarmaTextTests", dependencies: ["CarmaText"]),
        .testTarget(name: "CarmaVectorsTests", dependencies: ["CarmaVectors", "CarmaText"]),
        .testTarget(name: "CarmaEmbeddingTests", dependencies: ["CarmaEmbedding"]),
        .testTarget(name: "FragmentCoreTests", dependencies: ["FragmentCore", "CarmaJSON"]),
        .testTarget(name: "FragmentStoreTests", dependencies: ["FragmentStore", "FragmentCore", "CarmaEmbedding", "CarmaTesting", "CarmaFaults"], resources: [.copy("../Fixtures/old-layout-v1.tar.gz")]),
        .testTarget(name: "DreamEngineTests", dependencies: ["DreamEngine", "FragmentCore", "FragmentStore", "CarmaTesting", "CarmaFaults"]),
        .testTarget(name: "CarmaServiceTests", dependencies: ["CarmaService", "FragmentStore", "CarmaTesting"]),
        .testTarget(name: "ClusterStoreTests", dependencies: ["ClusterStore", "FragmentCore"]),
        // The backend contract in process, each test on the embedded store and on a throw-away PostgreSQL.
        .testTarget(
            name: "BackendTests",
            dependencies: [
                "FragmentCore", "FragmentStore", "ClusterStore", "DreamEngine", "CarmaTesting", "CarmaFaults", "CarmaJSON",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "CarmaMCPTests", dependencies: ["CarmaMCP", "CarmaClient", "CarmaJSON"]),
        .testTarget(name: "LiveTests", dependencies: ["CarmaClient", "CarmaFaults", "CarmaTesting", "CarmaJSON", "CarmaText", "carmad", "carma"]),
    ],
    swiftLanguageModes: [.v6]
)
