// swift-tools-version: 6.0
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
        .library(name: "EventStore", targets: ["EventStore"]),
        .library(name: "Workflows", targets: ["Workflows"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        .target(
            name: "EventStore",
            dependencies: [
                "CLMDB",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Workflows",
            dependencies: [
                "EventStore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "runlog",
            dependencies: [
                "EventStore",
                "Workflows",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EventStoreTests",
            dependencies: ["EventStore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RunlogTests",
            dependencies: ["EventStore", "Workflows"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkflowsTests",
            dependencies: ["Workflows"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
