import BerthKit
import Foundation

/// `dbus/<interface>.xml` is generated from live introspection of the declarative interface descriptions, and a
/// test fails when the two differ. Run the tests with `BERTH_UPDATE_DBUS_XML=1` to rewrite the files.
public enum IntrospectionXML {
    /// The repository root (this file is Tests/BerthTestSupport/IntrospectionXML.swift).
    public static var repositoryRoot: String {
        var path = "\(#filePath)"
        for _ in 0..<3 { path = FileSystem.directoryName(path) }
        return path
    }

    public static func file(for interface: String) -> String { repositoryRoot + "/dbus/" + interface + ".xml" }

    /// The `<interface>` element of `interface` as berthd introspects it at `path`, wrapped as a standalone node.
    public static func live(_ env: TestEnvironment, path: String, interface: String) async throws -> String {
        let r = try await env.busctl(["introspect", "--xml-interface", "org.berth.Berth1", path])
        guard r.status == 0 else { throw TestFailure("introspecting \(path) failed: \(r)") }
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let start = lines.firstIndex(where: { $0.contains("<interface name=\"\(interface)\">") }),
            let end = lines[start...].firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "</interface>" })
        else { throw TestFailure("\(path) does not implement \(interface):\n\(r.stdout)") }
        return """
            <!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
            "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
            <!-- Generated from berthd's live introspection; do not edit (BERTH_UPDATE_DBUS_XML=1 swift test). -->
            <node>
            \(lines[start...end].joined(separator: "\n"))
            </node>

            """
    }

    /// The checked-in file and the live XML; with BERTH_UPDATE_DBUS_XML=1 the file is rewritten first.
    public static func compare(_ env: TestEnvironment, path: String, interface: String) async throws
        -> (file: String, live: String)
    {
        let live = try await live(env, path: path, interface: interface)
        if ProcessInfo.processInfo.environment["BERTH_UPDATE_DBUS_XML"] == "1" {
            try FileSystem.writeAtomically(file(for: interface), text: live)
        }
        return ((try? FileSystem.readText(file(for: interface))) ?? "", live)
    }
}
