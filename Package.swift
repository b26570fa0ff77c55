// swift-tools-version:6.2
// berth: the daemon, its command line, the shipped plugins and the tests.
// Every module whose types cross the plugin boundary reaches the daemon and the plugins only through the one
// dynamic library of Plugins/BerthKit (libBerthKit.so). Never depend on swift-log directly here: BerthKit
// re-exports it, and a second static copy would break casts and global state across dlopen.
import PackageDescription

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]
let kit: Target.Dependency = .product(name: "BerthKit", package: "BerthKit")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

/// A plugin: a folder under Plugins/ with its logic in Sources/ (target `<Name>Plugin`, which its tests link) and
/// the two C entry symbols in Entry/ (target `<Name>PluginEntry`). The product lib<Name>Plugin.so is built from the
/// entry target and so holds both. Every plugin exports the same `berth_plugin_abi`/`berth_plugin_entry`, so the
/// entry symbols must stay out of the one test binary that links every plugin's logic.
func plugin(_ name: String, extraDependencies: [Target.Dependency] = []) -> (Product, [Target]) {
    (
        .library(name: "\(name)Plugin", type: .dynamic, targets: ["\(name)PluginEntry"]),
        [
            .target(
                name: "\(name)Plugin", dependencies: [kit] + extraDependencies, path: "Plugins/\(name)/Sources",
                swiftSettings: strict),
            .target(
                name: "\(name)PluginEntry", dependencies: [.target(name: "\(name)Plugin"), kit],
                path: "Plugins/\(name)/Entry", swiftSettings: strict),
        ]
    )
}

/// Test fixtures: small plugins the core's tests load (a good one and the bad-plugin cases).
func fixture(_ name: String) -> (Product, Target) {
    (
        .library(name: name, type: .dynamic, targets: [name]),
        .target(name: name, dependencies: [kit], path: "Tests/Fixtures/\(name)", swiftSettings: strict)
    )
}

let plugins: [(Product, [Target])] = [
    plugin("Services"),
    plugin("Pickup"),
    plugin("Instances"),
    plugin("Recorder", extraDependencies: ["CAlsa"]),
    plugin("Uplink", extraDependencies: ["CMosquitto", "CCurl"]),
]

/// A plugin's tests: Plugins/<Name>/Tests, with the plugin, BerthKit and the test support.
func pluginTests(_ name: String) -> Target {
    .testTarget(
        name: "\(name)Tests", dependencies: [.target(name: "\(name)Plugin"), kit, "BerthTestSupport"], path: "Plugins/\(name)/Tests",
        swiftSettings: strict)
}
let fixtures = [
    fixture("TestFixtureGood"), fixture("TestFixtureBadABI"), fixture("TestFixtureNoEntry"), fixture("TestFixtureFlaky"),
    fixture("TestFixtureOtherCompiler"),
]

let package = Package(
    name: "berth",
    products: [
        .executable(name: "berthd", targets: ["berthd"]),
        .executable(name: "berthctl", targets: ["berthctl"]),
    ] + plugins.map(\.0) + fixtures.map(\.0),
    dependencies: [
        .package(path: "Plugins/BerthKit"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(name: "berthd", dependencies: [kit, "CBerthdEarly"], swiftSettings: strict),
        .target(name: "CBerthdEarly", path: "Sources/CBerthdEarly"),
        // berthctl loads no plugin, so it links the Swift runtime and BerthKit static, and as a position-dependent
        // executable: a PIE build carries ~47,000 relative relocations whose copy-on-write faults were half of its
        // start-up (BENCHMARKS.md, "berthctl start-up"; the lintian override in packaging/debian says why).
        .executableTarget(
            name: "berthctl", dependencies: [.product(name: "BerthKitStatic", package: "BerthKit"), argumentParser],
            swiftSettings: strict,
            linkerSettings: [
                .unsafeFlags([
                    "-static-stdlib", "-Xclang-linker", "-no-pie", "-Xlinker", "-l_FoundationCollections", "-Xlinker",
                    "-l_FoundationCShims",
                ])
            ]),
        .target(name: "BerthTestSupport", dependencies: [kit], path: "Tests/BerthTestSupport", swiftSettings: strict),
        .testTarget(name: "BerthKitTests", dependencies: [kit, "BerthTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "BerthdTests", dependencies: [kit, "BerthTestSupport"], swiftSettings: strict),
        .testTarget(name: "HostileTests", dependencies: [kit, "BerthTestSupport"], swiftSettings: strict),
        .systemLibrary(name: "CAlsa", path: "Plugins/Recorder/CAlsa", pkgConfig: "alsa", providers: [.apt(["libasound2-dev"])]),
        pluginTests("Services"),
        pluginTests("Pickup"),
        pluginTests("Instances"),
        pluginTests("Recorder"),
        .systemLibrary(
            name: "CMosquitto", path: "Plugins/Uplink/CMosquitto", pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]),
        .systemLibrary(
            name: "CCurl", path: "Plugins/Uplink/CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        pluginTests("Uplink"),
    ] + plugins.flatMap(\.1) + fixtures.map(\.1)
)
