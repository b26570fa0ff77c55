import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The plugin ABI key must change whenever BerthKit's interface changes, and must name the compiler: a plugin built
/// against another BerthKit or by another toolchain crashes the host if it loads. The key (CBerthShim's
/// `berth_abi.h`) holds the API revision, the sha256 of BerthKit's public interface — every public and
/// `@usableFromInline` declaration with its full signature, and the stored properties (private ones too) that fix a
/// type's layout, as `swift-api-digester -dump-sdk -abi` reads them from the BUILT module, for BerthKit and the
/// swift-log it re-exports — and the compiler's `__VERSION__`. These tests recompute the hash from the build and fail
/// when the committed `berth_abi_interface.h`/`ABI.lock` are stale; `BERTH_UPDATE_ABI_LOCK=1` rewrites them.
@Suite struct PluginABITests {
    static let lock = IntrospectionXML.repositoryRoot + "/Plugins/BerthKit/ABI.lock"
    static let header = IntrospectionXML.repositoryRoot + "/Plugins/BerthKit/Sources/CBerthShim/include/berth_abi_interface.h"
    /// The modules inside libBerthKit.so whose types a plugin sees.
    static let modules = ["BerthKit", "Logging"]

    // MARK: The interface, from a built module

    /// swift-api-digester from the toolchain that runs the tests (PATH, else beside `swift`).
    static func digester() throws -> String {
        if let path = try? Command.resolve("swift-api-digester") { return path }
        let swift = try Command.resolve("swift")
        let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: swift)).map {
            $0.hasPrefix("/") ? $0 : FileSystem.directoryName(swift) + "/" + $0
        } ?? swift
        return FileSystem.directoryName(real) + "/swift-api-digester"
    }

    /// `swift-api-digester -dump-sdk` of `module` found in `modulesDir`: its `ABIRoot` tree.
    static func dump(module: String, modulesDir: String, abi: Bool, extra: [String] = []) async throws -> [String: Any] {
        let out = NSTemporaryDirectory() + "berth-abi-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try await Command.run(
            [try digester(), "-dump-sdk"] + (abi ? ["-abi"] : []) + ["-avoid-location", "-avoid-tool-args", "-module", module]
                + ["-I", modulesDir] + extra + ["-o", out], timeout: .seconds(180))
        guard r.status == 0, let data = FileManager.default.contents(atPath: out),
            let top = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let root = top["ABIRoot"] as? [String: Any]
        else {
            throw TestFailure("swift-api-digester could not dump \(module) from \(modulesDir): \(r)")
        }
        return root
    }

    static func childLists(_ node: [String: Any]) -> [(String, [[String: Any]])] {
        node.keys.sorted().compactMap { key in (node[key] as? [[String: Any]]).flatMap { $0.isEmpty ? nil : (key, $0) } }
    }

    /// The interface of a module as plugins see it: the `-abi` dump (every public and `@usableFromInline`
    /// declaration and the stored properties, private ones too, that fix a type's layout), without the internal
    /// declarations a debug build's `-enable-testing` adds to it. A declaration stays when the API dump (which
    /// testing does not widen) has its usr, when it is `@usableFromInline`, or when it is a stored property of a
    /// type that stays; the accessors of what stays stay with it. This is the dump a build without testing gives.
    static func interface(module: String, modulesDir: String, extra: [String] = []) async throws -> [String: Any] {
        let abi = try await dump(module: module, modulesDir: modulesDir, abi: true, extra: extra)
        let api = try await dump(module: module, modulesDir: modulesDir, abi: false, extra: extra)
        var published: Set<String> = []
        func collect(_ node: [String: Any]) {
            if node["declKind"] != nil, let usr = node["usr"] as? String { published.insert(usr) }
            for (_, list) in childLists(node) { list.forEach(collect) }
        }
        collect(api)
        func filter(_ node: [String: Any], parentIsType: Bool) -> [String: Any]? {
            if node["declKind"] != nil {
                let attributes = node["declAttributes"] as? [String] ?? []
                let stays = (node["usr"] as? String).map(published.contains) == true
                    || attributes.contains("UsableFromInline")
                    || (node["hasStorage"] as? Bool == true && parentIsType)
                guard stays else { return nil }
            }
            var out = node
            let isType = node["kind"] as? String == "TypeDecl"
            for (key, list) in childLists(node) where key != "accessors" {
                out[key] = list.compactMap { filter($0, parentIsType: isType) }
            }
            return out
        }
        return filter(abi, parentIsType: false) ?? [:]
    }

    /// An interface tree as text, one line per node, depth-first in the dump's order (declaration order, which also
    /// fixes stored properties' and enum cases' binary order): every attribute of the node (kind, names, mangled
    /// name, declaration attributes, binary order, ...) sorted by key, then its child lists (children, accessors,
    /// conformances). Imports are left out (a debug build imports SwiftOnoneSupport, a release build does not).
    /// Source locations and tool arguments are not in the dump (`-avoid-location -avoid-tool-args`).
    static func normalise(_ root: [String: Any]) -> [String] {
        var lines: [String] = []
        func render(_ value: Any) -> String {
            if let list = value as? [Any] { return "[" + list.map(render).joined(separator: ",") + "]" }
            return "\(value)"
        }
        func visit(_ node: [String: Any], depth: Int) {
            if node["kind"] as? String == "Import" { return }
            let indent = String(repeating: " ", count: depth)
            let lists = childLists(node)
            let scalars = node.keys.sorted().filter { key in !lists.contains { $0.0 == key } }.compactMap { key in
                (node[key] as? [[String: Any]])?.isEmpty == true ? nil : "\(key)=\(render(node[key]!))"
            }
            lines.append(indent + scalars.joined(separator: " "))
            for (key, list) in lists {
                lines.append(indent + " " + key + ":")
                for child in list { visit(child, depth: depth + 2) }
            }
        }
        visit(root, depth: 0)
        return lines
    }

    /// A short listing for people (ABI.lock): one line per declaration, with its types, stored-property order and
    /// attributes, so a review sees what changed. The hash covers the whole normalised interface, not only this.
    static func listing(_ root: [String: Any]) -> [String] {
        var lines: [String] = []
        func visit(_ node: [String: Any], depth: Int) {
            let children = node["children"] as? [[String: Any]] ?? []
            guard let declKind = node["declKind"] as? String, declKind != "Import" else { return }
            let types = children.filter { $0["declKind"] == nil }.compactMap { $0["printedName"] as? String }
            var line = String(repeating: "  ", count: depth) + declKind + " " + (node["printedName"] as? String ?? "?")
            if !types.isEmpty { line += " : " + types.joined(separator: ", ") }
            if let order = node["fixedbinaryorder"] { line += " #\(order)" }
            if let attributes = node["declAttributes"] as? [String], !attributes.isEmpty {
                line += " @" + attributes.joined(separator: " @")
            }
            lines.append(line)
            for child in children { visit(child, depth: depth + 1) }
        }
        for child in root["children"] as? [[String: Any]] ?? [] { visit(child, depth: 0) }
        return lines
    }

    static func sha256(_ text: String) async throws -> String {
        let r = try await Command.run(["sha256sum"], input: text)
        guard r.status == 0, let hash = r.stdout.split(separator: " ").first else { throw TestFailure("sha256sum: \(r)") }
        return String(hash)
    }

    /// The interface of the built libBerthKit.so: (hash, ABI.lock text).
    static func builtInterface() async throws -> (hash: String, lock: String) {
        let build = TestEnvironment.buildDir
        let modulesDir = build + "/Modules"
        let shimMap = build + "/CBerthShim.build/module.modulemap"
        var full: [String] = []
        var listing: [String] = []
        for module in modules {
            let tree = try await interface(module: module, modulesDir: modulesDir, extra: ["-Xcc", "-fmodule-map-file=" + shimMap])
            full += ["== \(module)"] + normalise(tree)
            listing += ["== \(module)"] + Self.listing(tree)
        }
        let hash = try await sha256(full.joined(separator: "\n") + "\n")
        // The revision part of the host's key: "berthkit 0.1 api 6 interface ..." -> "6".
        let revision = try #require(
            PluginABI.keyString.components(separatedBy: " interface ").first?.split(separator: " ").last)
        let lock = """
            # BerthKit's public interface as plugins see it (PluginABITests; rewrite with BERTH_UPDATE_ABI_LOCK=1).
            # api \(revision), interface sha256 \(hash) (of the whole normalised swift-api-digester -abi dump)

            """ + listing.joined(separator: "\n") + "\n"
        return (hash, lock)
    }

    static func headerText(hash: String) -> String {
        """
        // Generated by PluginABITests (BERTH_UPDATE_ABI_LOCK=1): sha256 of BerthKit's public interface as the built
        // module shows it (listed in Plugins/BerthKit/ABI.lock). Do not edit.
        #ifndef CBERTH_ABI_INTERFACE_H
        #define CBERTH_ABI_INTERFACE_H
        #define CBERTH_ABI_INTERFACE "\(hash)"
        #endif

        """
    }

    @Test func theInterfaceHashIsTheBuiltModules() async throws {
        let (hash, lock) = try await Self.builtInterface()
        if ProcessInfo.processInfo.environment["BERTH_UPDATE_ABI_LOCK"] == "1" {
            try FileSystem.writeAtomically(Self.lock, text: lock)
            try FileSystem.writeAtomically(Self.header, text: Self.headerText(hash: hash))
        }
        let recordedHeader = (try? FileSystem.readText(Self.header)) ?? ""
        let recordedLock = (try? FileSystem.readText(Self.lock)) ?? ""
        #expect(
            recordedHeader == Self.headerText(hash: hash) && recordedLock == lock,
            """
            BerthKit's interface changed: berth_abi_interface.h and ABI.lock record another hash than the built module \
            gives (\(hash)). Run the tests once with BERTH_UPDATE_ABI_LOCK=1, rebuild, and commit both files \
            (and bump the api revision in berth_abi.h if the meaning of an existing API changed).
            """)
        // The key this libBerthKit.so was built with carries that hash (a rebuild after the update makes it so).
        #expect(PluginABI.keyString.contains(" interface \(hash) "), "\(PluginABI.keyString)")
    }

    // MARK: The key

    @Test func theKeyNamesRevisionInterfaceAndTheExactCompiler() async throws {
        let key = PluginABI.keyString
        #expect(key.hasPrefix("berthkit \(BerthVersion.string.split(separator: ".").prefix(2).joined(separator: ".")) api "))
        // The compiler part is the __VERSION__ of the toolchain's clang (the one inside swift-frontend that compiled
        // berth_abi.h), which names the exact llvm-project revision of this toolchain build.
        let swift = try Command.resolve("swift")
        let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: swift)).map {
            $0.hasPrefix("/") ? $0 : FileSystem.directoryName(swift) + "/" + $0
        } ?? swift
        let clang = FileSystem.directoryName(real) + "/clang"
        let r = try await Command.run([clang, "-dM", "-E", "-x", "c", "/dev/null"])
        let line = try #require(r.stdout.split(separator: "\n").first { $0.hasPrefix("#define __VERSION__ ") })
        let version = String(line.dropFirst("#define __VERSION__ ".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        #expect(key.hasSuffix(" compiler " + version), "key \(key.debugDescription), toolchain clang \(version.debugDescription)")
        let hash = try #require(key.split(separator: " ").drop { $0 != "interface" }.dropFirst().first)
        #expect(hash.count == 64 && hash.allSatisfy(\.isHexDigit), "\(key)")
    }

    // MARK: The normaliser catches what the old line-grep hash missed

    static let base = """
        public struct Record {
            public var name: String
            private var count: Int = 0
            public init(name: String) { self.name = name }
            public func describe(
                prefix: String,
                width: Int
            ) -> String { prefix + name }
            func helper() -> Int { count }
        }
        final class Internal { var x = 0 }

        """

    /// The normalised interface hash of a one-file module `Probe` built from `source`.
    static func probeHash(_ source: String, in dir: String) async throws -> String {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileSystem.writeAtomically(dir + "/Probe.swift", text: source)
        let swiftc = try Command.resolve("swiftc")
        let r = try await Command.run(
            [swiftc, "-emit-module", "-enable-testing", "-parse-as-library", "-module-name", "Probe", dir + "/Probe.swift"]
                + ["-o", dir + "/Probe.swiftmodule"],
            timeout: .seconds(180))
        guard r.status == 0 else { throw TestFailure("swiftc: \(r)") }
        return try await sha256(normalise(try await interface(module: "Probe", modulesDir: dir)).joined(separator: "\n"))
    }

    @Test func aLayoutChangeOrAMultiLineSignatureChangeChangesTheHashAndABodyChangeDoesNot() async throws {
        let root = NSTemporaryDirectory() + "berth-abi-probe-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let base = try await Self.probeHash(Self.base, in: root + "/base")
        // A private stored property: no public line changes, but every plugin's copy of the layout does.
        let layout = try await Self.probeHash(
            Self.base.replacingOccurrences(of: "private var count: Int = 0", with: "private var count: Int = 0\n    private var flag: Int8 = 0"),
            in: root + "/layout")
        // The second line of a multi-line signature.
        let signature = try await Self.probeHash(
            Self.base.replacingOccurrences(of: "width: Int\n", with: "width: Int32\n"), in: root + "/signature")
        // A body, a comment and internal declarations (which a debug build's -enable-testing puts in the dump): the
        // interface is the same.
        let body = try await Self.probeHash(
            Self.base.replacingOccurrences(of: "{ prefix + name }", with: "{ name + prefix }  // reversed")
                .replacingOccurrences(of: "func helper() -> Int { count }", with: "func helper(twice: Bool) -> Int { count }")
                .replacingOccurrences(of: "final class Internal { var x = 0 }", with: "final class Internal { var x = 0; var y = 1 }"),
            in: root + "/body")
        #expect(layout != base)
        #expect(signature != base)
        #expect(body == base)
    }
}
