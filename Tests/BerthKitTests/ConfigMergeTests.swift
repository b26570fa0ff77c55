import BerthKit
import Testing

extension ConfigTests {
    /// Layering berth.yaml and conf.d/*.yaml.
    @Suite struct Merge {
        static let base = """
            log_level: info
            autolaunch: [laser, camera]
            services:
              laser:
                exec: [/usr/bin/laser]
                restart: always
              camera:
                exec: [/usr/bin/camera]
            recorder:
              device: default
            """

        static let overlay = """
            services:
              laser:
                restart: on-failure
                env: {A: "1"}
              pump:
                exec: [/usr/bin/pump]
            autolaunch: [pump]
            recorder:
            extra: 1
            """

        @Test func mappingsMergeRecursively() throws {
            let base = try YAMLParser.parse(Self.base, file: "berth.yaml")
            let overlay = try YAMLParser.parse(Self.overlay, file: "conf.d/10-lab.yaml")
            let merged = try #require(ConfigNode.merge(base, overlay))
            let expected = try #require(
                try YAMLParser.parse(
                    """
                    log_level: info
                    autolaunch: [pump]
                    services:
                      laser:
                        exec: [/usr/bin/laser]
                        restart: on-failure
                        env: {A: "1"}
                      camera:
                        exec: [/usr/bin/camera]
                      pump:
                        exec: [/usr/bin/pump]
                    recorder:
                    extra: 1
                    """, file: "expected.yaml"))
            #expect(merged.strippingMarks() == expected.strippingMarks())

            // Marks say which file each value came from, so errors point at the right file.
            #expect(merged["log_level"]?.mark == ConfigMark(file: "berth.yaml", line: 1, column: 12))
            #expect(merged["services"]?["laser"]?["exec"]?.mark.file == "berth.yaml")
            #expect(
                merged["services"]?["laser"]?["restart"]?.mark
                    == ConfigMark(file: "conf.d/10-lab.yaml", line: 3, column: 14))
            #expect(merged["autolaunch"]?.mark.file == "conf.d/10-lab.yaml")
            #expect(merged["recorder"] == .null(ConfigMark(file: "conf.d/10-lab.yaml", line: 8, column: 10)))
            guard case .mapping(let entries, _) = merged else { return }
            #expect(entries.first { $0.key == "services" }?.keyMark.file == "conf.d/10-lab.yaml")
            #expect(entries.first { $0.key == "log_level" }?.keyMark.file == "berth.yaml")

            // An unknown key from an overlay is reported in the overlay's file.
            let reader = try ConfigReader(merged, path: "")
            _ = [reader.node("log_level"), reader.node("autolaunch"), reader.node("services"), reader.node("recorder")]
            #expect(
                ConfigTests.configError { try reader.finish() }
                    == "conf.d/10-lab.yaml:9: extra: unknown key \"extra\" (known keys: autolaunch, log_level, recorder, services)"
            )
        }

        @Test func anythingElseIsReplaced() {
            let list = ConfigNode.list([.string("a")])
            let map = ConfigNode.map([("x", .string("1"))])
            #expect(ConfigNode.merge(list, .list([.string("b")])) == .list([.string("b")]))
            #expect(ConfigNode.merge(map, list) == list)
            #expect(ConfigNode.merge(list, map) == map)
            #expect(ConfigNode.merge(.string("a"), .null(.generated)) == .null(.generated))
            #expect(ConfigNode.merge(map, nil) == map)
            #expect(ConfigNode.merge(nil, map) == map)
            #expect(ConfigNode.merge(nil, nil) == nil)
        }

        @Test func layersApplyInOrder() {
            let layers: [ConfigNode?] = [
                .map([("a", .string("1")), ("b", .string("1"))]),
                nil,
                .map([("b", .string("2")), ("c", .string("2"))]),
                .map([("c", .string("3"))]),
            ]
            #expect(
                ConfigNode.merge(layers)
                    == .map([("a", .string("1")), ("b", .string("2")), ("c", .string("3"))]))
            #expect(ConfigNode.merge([ConfigNode?]()) == nil)
        }
    }
}
