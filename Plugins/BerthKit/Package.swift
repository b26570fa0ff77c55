// swift-tools-version:6.2
// BerthKit: the plugin API shared by berthd and every plugin. It is its own package so that its one product is a
// dynamic library: host and plugins must share ONE copy of every module whose types cross the dlopen boundary.
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "BerthKit",
    products: [
        .library(name: "BerthKit", type: .dynamic, targets: ["BerthKit"]),
        // berthctl loads no plugin: it links BerthKit, swift-log and the Swift runtime whole and static (fastest
        // start). Never link this into a process that loads plugins.
        .library(name: "BerthKitStatic", type: .static, targets: ["BerthKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2")
    ],
    targets: [
        // C shim over libsystemd (sd-bus, sd-daemon), libyaml and Linux syscalls Swift cannot reach directly.
        .target(
            name: "CBerthShim",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [.linkedLibrary("systemd"), .linkedLibrary("yaml"), .linkedLibrary("sqlite3")]
        ),
        .target(
            name: "BerthKit",
            dependencies: ["CBerthShim", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
    ]
)
