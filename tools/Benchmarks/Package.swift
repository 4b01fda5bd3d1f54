// swift-tools-version: 6.0
import PackageDescription

/// Release-build benchmarks of the event store. Run them with `tools/bench` from the repository root.
///
/// A separate package so the root package keeps no benchmark-only targets; it builds the root
/// package's `EventLog`, `LMDBStore` and `Workflows` libraries from this working tree.
let package = Package(
    name: "RunlogBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "runlog", path: "../.."),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // LMDB's C API for the raw baseline (figure 1) and the transaction counter: the store's own
        // LMDB wrapper is internal to LMDBStore.
        .systemLibrary(name: "BenchLMDB", pkgConfig: "lmdb"),
        .executableTarget(
            name: "runlog-bench",
            dependencies: [
                "BenchLMDB",
                .product(name: "RunlogJSON", package: "runlog"),
                .product(name: "EventLog", package: "runlog"),
                .product(name: "LMDBStore", package: "runlog"),
                .product(name: "PostgresStore", package: "runlog"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "WorkflowModel", package: "runlog"),
                .product(name: "Workflows", package: "runlog"),
                .product(name: "Importers", package: "runlog"),
                .product(name: "Profiles", package: "runlog"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
