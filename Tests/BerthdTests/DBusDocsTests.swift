import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// dbus/*.xml is the API reference and the ecosystem's code generators read it: every element carries a doc
/// string, docs/api/ is what gdbus-codegen renders from it, and a C client that gdbus-codegen generates from it
/// drives berthd for real.
@Suite struct DBusDocsTests {
    static var root: String { IntrospectionXML.repositoryRoot }

    @Test func everyInterfaceMemberAndArgumentHasADocString() throws {
        let files = IntrospectionXML.files
        #expect(files.count >= 9, "\(files)")
        for file in files {
            let missing = IntrospectionXML.undocumented(try FileSystem.readText(file) ?? "")
            #expect(missing.isEmpty, "\(FileSystem.baseName(file)) has no org.gtk.GDBus.DocString on: \(missing)")
        }
    }

    /// docs/api/<interface>.rst is `gdbus-codegen --generate-rst` of dbus/<interface>.xml; BERTH_UPDATE_DBUS_XML=1
    /// rewrites it (scripts/api-docs does the same by hand).
    @Test func apiReferenceIsRenderedFromTheXML() async throws {
        try await TestEnvironment.with { env in
            let out = env.root + "/rst"
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let r = try await env.run([Self.root + "/scripts/api-docs", out], timeout: .seconds(120))
            #expect(r.status == 0, "\(r)")
            let rendered = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
            #expect(rendered.count == IntrospectionXML.files.count, "\(rendered)")
            let update = ProcessInfo.processInfo.environment["BERTH_UPDATE_DBUS_XML"] == "1"
            for name in rendered {
                let fresh = try FileSystem.readText(out + "/" + name) ?? ""
                let checkedIn = Self.root + "/docs/api/" + name
                if update {
                    try FileManager.default.createDirectory(atPath: Self.root + "/docs/api", withIntermediateDirectories: true)
                    try FileSystem.writeAtomically(checkedIn, text: fresh)
                }
                #expect(
                    (try? FileSystem.readText(checkedIn)) == fresh,
                    "docs/api/\(name) is not what gdbus-codegen renders from dbus/; run scripts/api-docs docs/api")
            }
        }
    }

    /// gdbus-codegen generates C proxies from every dbus/*.xml; a GLib client built on them pings berthd, reads
    /// properties, lists plugins, gets a named error, defines, starts and stops a service and waits for each job's
    /// JobRemoved signal.
    @Test func generatedCClientDrivesBerthd() async throws {
        try await TestEnvironment.with { env in
            let build = env.root + "/cclient"
            try FileManager.default.createDirectory(atPath: build, withIntermediateDirectories: true)
            let generate = try await env.run(
                ["gdbus-codegen", "--interface-prefix", "org.berth.Berth1.", "--c-namespace", "Berth",
                    "--generate-c-code", build + "/berth-generated"] + IntrospectionXML.files, timeout: .seconds(120))
            try #require(generate.status == 0, "\(generate)")
            let flags = try await env.run(["pkg-config", "--cflags", "--libs", "gio-2.0"])
            try #require(flags.status == 0, "\(flags)")
            let compile = try await env.run(
                ["cc", "-std=c11", "-Wall", "-Werror", "-Wno-unused-parameter", "-I", build, "-o", build + "/berth-client",
                    Self.root + "/Tests/Fixtures/GDBusClient/berth-client.c", build + "/berth-generated.c"]
                    + flags.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                    .filter { !$0.isEmpty }, timeout: .seconds(120))
            try #require(compile.status == 0, "\(compile)")

            try env.installPlugins(["libServicesPlugin.so"])
            try env.writeConfig("services: {}\n")
            try await env.startDaemon()
            let r = try await env.run([build + "/berth-client", env.bus.address, "gen-client"])
            #expect(r.status == 0, "\(r)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first == "ping ok", "\(r)")
            #expect(lines.contains { $0.hasPrefix("version ") && $0.hasSuffix(" api 1") }, "\(r)")
            #expect(lines.contains("plugin services active /org/berth/Berth1/plugin/services"), "\(r)")
            #expect(lines.contains("error org.berth.Berth1.Error.NotFound"), "\(r)")
            #expect(lines.contains { $0.hasPrefix("start job ") && $0.hasSuffix(" done") }, "\(r)")
            let pid = lines.first { $0.hasPrefix("service gen-client active pid ") }.flatMap { Int32($0.split(separator: " ").last!) }
            #expect(pid != nil && pid! > 0, "\(r)")
            #expect(lines.contains { $0.hasPrefix("stop job ") && $0.hasSuffix(" done") }, "\(r)")
        }
    }
}
