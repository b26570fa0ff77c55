import BerthKit
import Foundation

/// `dbus/<interface>.xml` is berthd's live introspection of the declarative interface descriptions plus the
/// `org.gtk.GDBus.DocString` annotations written by hand in the file (sd-bus cannot introspect them). A test fails
/// when the file without its doc strings differs from live introspection, and another when an element has no doc
/// string. Run the tests with `BERTH_UPDATE_DBUS_XML=1` to rewrite the files: the structure comes from berthd,
/// the doc strings already in the file are kept, each on the element it documented.
public enum IntrospectionXML {
    /// The repository root (this file is Tests/BerthTestSupport/IntrospectionXML.swift).
    public static var repositoryRoot: String {
        var path = "\(#filePath)"
        for _ in 0..<3 { path = FileSystem.directoryName(path) }
        return path
    }

    public static func file(for interface: String) -> String { repositoryRoot + "/dbus/" + interface + ".xml" }

    /// Every introspection file in dbus/, sorted.
    public static var files: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/dbus")) ?? []
        return names.filter { $0.hasPrefix("org.berth.Berth1.") && $0.hasSuffix(".xml") }.sorted()
            .map { repositoryRoot + "/dbus/" + $0 }
    }

    static let header =
        "<!-- Generated from berthd's live introspection (BERTH_UPDATE_DBUS_XML=1 swift test). Edit only the "
        + "org.gtk.GDBus.DocString annotations: regenerating keeps them. -->"

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
            \(header)
            <node>
            \(lines[start...end].joined(separator: "\n"))
            </node>

            """
    }

    /// The checked-in file without its doc strings, and the live XML; with BERTH_UPDATE_DBUS_XML=1 the file is
    /// rewritten first (live structure, the file's doc strings).
    public static func compare(_ env: TestEnvironment, path: String, interface: String) async throws
        -> (file: String, live: String)
    {
        let live = try await live(env, path: path, interface: interface)
        let existing = (try? FileSystem.readText(file(for: interface))) ?? ""
        if ProcessInfo.processInfo.environment["BERTH_UPDATE_DBUS_XML"] == "1" {
            try FileSystem.writeAtomically(file(for: interface), text: Doc.insert(Doc.strings(in: existing), into: live))
            return (withoutDocs(try FileSystem.readText(file(for: interface)) ?? ""), live)
        }
        return (withoutDocs(existing), live)
    }

    /// `xml` without its doc-string annotations: what live introspection gives.
    public static func withoutDocs(_ xml: String) -> String {
        var out: [String] = []
        for line in lines(xml) where !Doc.isDocLine(line) {
            if line.trimmingCharacters(in: .whitespaces) == "</arg>", let last = out.last,
                last.trimmingCharacters(in: .whitespaces).hasPrefix("<arg "), last.hasSuffix(">"), !last.hasSuffix("/>")
            {
                out[out.count - 1] = String(last.dropLast()) + "/>"
                continue
            }
            out.append(line)
        }
        return out.joined(separator: "\n")
    }

    /// The elements of `xml` (interface, methods, signals, properties, arguments) that have no doc string.
    public static func undocumented(_ xml: String) -> [String] {
        let documented = Doc.strings(in: xml)
        return Doc.elements(in: xml).map(\.key).filter { documented[$0] == nil }
    }

    static func lines(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// Doc strings keyed by the element they document: `interface`, `method Name`, `signal Name/arg name`, ...
    enum Doc {
        static func isDocLine(_ line: String) -> Bool {
            let t = line.trimmingCharacters(in: .whitespaces)
            return t.hasPrefix("<annotation name=\"org.gtk.GDBus.DocString")
        }

        /// Each element's opening line (by index) and its key.
        static func elements(in xml: String) -> [(line: Int, key: String)] {
            var result: [(Int, String)] = []
            var member = ""
            var argIndex = 0
            for (i, line) in lines(xml).enumerated() {
                let t = line.trimmingCharacters(in: .whitespaces)
                if t.hasPrefix("<interface ") {
                    member = ""
                    result.append((i, "interface"))
                } else if let kind = ["method", "signal", "property"].first(where: { t.hasPrefix("<\($0) ") }) {
                    member = "\(kind) \(attribute("name", in: t) ?? "?")"
                    argIndex = 0
                    result.append((i, member))
                } else if t.hasPrefix("<arg ") {
                    // A method may name an in and an out argument alike (Logs: in `lines`, out `lines`).
                    let direction = attribute("direction", in: t).map { " \($0)" } ?? ""
                    result.append((i, "\(member)/arg \(attribute("name", in: t) ?? "#\(argIndex)")\(direction)"))
                    argIndex += 1
                }
            }
            return result
        }

        static func strings(in xml: String) -> [String: [String]] {
            let all = lines(xml)
            var docs: [String: [String]] = [:]
            for (line, key) in elements(in: xml) {
                let found = all[(line + 1)...].prefix { isDocLine($0) }.map { $0.trimmingCharacters(in: .whitespaces) }
                if !found.isEmpty { docs[key] = Array(found) }
            }
            return docs
        }

        /// `live` with each element's doc strings as its first children (a documented `<arg/>` gets opened).
        static func insert(_ docs: [String: [String]], into live: String) -> String {
            var all = lines(live)
            for (line, key) in elements(in: live).reversed() {
                guard let doc = docs[key] else { continue }
                let opening = all[line]
                let indent = String(opening.prefix { $0 == " " })
                var inserted = doc.map { indent + " " + $0 }
                if opening.hasSuffix("/>") {
                    all[line] = String(opening.dropLast(2)) + ">"
                    inserted.append(indent + "</arg>")
                }
                all.insert(contentsOf: inserted, at: line + 1)
            }
            return all.joined(separator: "\n")
        }

        static func attribute(_ name: String, in tag: String) -> String? {
            guard let start = tag.range(of: " \(name)=\"") else { return nil }
            let rest = tag[start.upperBound...]
            return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
        }
    }
}
