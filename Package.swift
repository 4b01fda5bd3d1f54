// swift-tools-version: 6.1
import PackageDescription

/// One set of compiler settings for every target: Swift 6 language mode with strict concurrency.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "runlog",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "runlog", targets: ["runlog"]),
        .library(name: "RunlogJSON", targets: ["RunlogJSON"]),
        .library(name: "EventLog", targets: ["EventLog"]),
        .library(name: "LMDBStore", targets: ["LMDBStore"]),
        .library(name: "PostgresStore", targets: ["PostgresStore"]),
        .library(name: "WorkflowModel", targets: ["WorkflowModel"]),
        .library(name: "Workflows", targets: ["Workflows"]),
        .library(name: "Importers", targets: ["Importers"]),
        .library(name: "Profiles", targets: ["Profiles"]),
        .library(name: "Access", targets: ["Access"]),
        .library(name: "RunlogHTTP", targets: ["RunlogHTTP"]),
        .library(name: "S3", targets: ["S3"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // Without its default traits: Runlog reads no swift-configuration files.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        // JSON values, the strict parser, the reader and the writer. Depends on nothing.
        .target(
            name: "RunlogJSON",
            swiftSettings: swiftSettings
        ),
        // The storage seam: the `EventStore` protocol every backend implements, the envelope and its
        // hash chain, events, filters, errors, inline projections. No LMDB, no HTTP.
        .target(
            name: "EventLog",
            dependencies: [
                "RunlogJSON",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The embedded backend: the log in LMDB. Only the composition root (the `runlog` tool) and
        // tests import it; the modules above use `EventLog`.
        .target(
            name: "LMDBStore",
            dependencies: [
                "CLMDB",
                "EventLog",
                "RunlogJSON",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The log in PostgreSQL, for several nodes on one database: the same envelopes and hash chain as
        // LMDBStore, positions from a head row locked in each append's transaction. Each node reads from
        // a local LMDB copy that follows the database.
        .target(
            name: "PostgresStore",
            dependencies: [
                "EventLog",
                "LMDBStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The workflow domain, pure: definitions, conditions, rollouts, events and their codecs, the
        // state folds. No storage, no actors.
        .target(
            name: "WorkflowModel",
            dependencies: ["RunlogJSON"],
            swiftSettings: swiftSettings
        ),
        // The workflow engine: commands, queues, execution, the run tables, the object vault, jobs
        // and integration accounts, on the storage seam.
        .target(
            name: "Workflows",
            dependencies: [
                "RunlogJSON",
                "EventLog",
                "WorkflowModel",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Importers",
            dependencies: [
                "RunlogJSON",
                "EventLog",
                "WorkflowModel",
                "Workflows",
                "S3",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Profiles",
            dependencies: [
                "RunlogJSON",
                "EventLog",
                "WorkflowModel",
                "Workflows",
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Access",
            dependencies: [
                "RunlogJSON",
                "EventLog",
                "WorkflowModel",
                "Workflows",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "RunlogHTTP",
            dependencies: [
                "Access",
                "RunlogJSON",
                "EventLog",
                "WorkflowModel",
                "Workflows",
                "Importers",
                "Profiles",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "S3",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "runlog",
            dependencies: [
                "Access",
                "RunlogJSON",
                "EventLog",
                "LMDBStore",
                "PostgresStore",
                "WorkflowModel",
                "Workflows",
                "Importers",
                "RunlogHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers every test target shares (temporary directories, awaited teardown, the HTTP counter, a real S3 server). A regular
        // target that only test targets depend on, kept under Tests/ beside them: no product names it.
        .target(
            name: "RunlogTestSupport",
            dependencies: ["EventLog", "PostgresStore", "S3", .product(name: "PostgresNIO", package: "postgres-nio"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client")],
            path: "Tests/RunlogTestSupport",
            swiftSettings: swiftSettings
        ),
        // The checks every `EventStore` backend must pass, through the protocol alone: a regular target under
        // Tests/ that each backend's test target runs against its own stores (see `EventStoreBackend`).
        .target(
            name: "EventStoreConformance",
            dependencies: ["EventLog"],
            path: "Tests/EventStoreConformance",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PostgresStoreTests",
            dependencies: ["PostgresStore", "LMDBStore", "EventLog", "EventStoreConformance", "RunlogTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LMDBStoreTests",
            dependencies: ["LMDBStore", "EventLog", "EventStoreConformance", "RunlogJSON", "RunlogTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RunlogTests",
            dependencies: [
                "RunlogTestSupport",
                "EventStoreConformance",
                "RunlogJSON",
                "EventLog",
                "LMDBStore",
                "PostgresStore",
                "WorkflowModel",
                "Workflows",
                "RunlogHTTP",
                "S3",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "S3Tests",
            dependencies: [
                "RunlogTestSupport",
                "S3",
                "RunlogJSON",
                "EventLog",
                "LMDBStore",
                "WorkflowModel",
                "Workflows",
                "Importers",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "RunlogTestSupport",
                "Access",
                "RunlogJSON",
                "EventLog",
                "LMDBStore",
                "WorkflowModel",
                "Workflows",
                "Importers",
                "Profiles",
                "RunlogHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // A data directory written by an earlier version, and the script that made it (read by path).
            exclude: ["Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ImportersTests",
            dependencies: ["RunlogJSON", "EventLog", "LMDBStore", "WorkflowModel", "Workflows", "Importers", "RunlogTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkflowsTests",
            dependencies: ["RunlogJSON", "EventLog", "LMDBStore", "WorkflowModel", "Workflows", "RunlogTestSupport"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
