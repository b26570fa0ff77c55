import BerthTestSupport
import Testing

/// dbus/*.xml must be exactly what berthd introspects.
@Suite struct IntrospectionXMLTests {
    @Test(arguments: [
        ("/org/berth/Berth1", "org.berth.Berth1.Manager"),
        ("/org/berth/Berth1/plugin/fixture", "org.berth.Berth1.Plugin"),
    ])
    func checkedInXMLMatchesLiveIntrospection(path: String, interface: String) async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try await env.startDaemon()
            let (file, live) = try await IntrospectionXML.compare(env, path: path, interface: interface)
            #expect(file == live, "dbus/\(interface).xml differs from live introspection; regenerate with BERTH_UPDATE_DBUS_XML=1")
        }
    }

    @Test func jobInterfaceMatches() async throws {
        try await TestEnvironment.with { env in
            try env.installPlugins(["libTestFixtureGood.so"])
            try await env.startDaemon()
            let client = try env.connect()
            let reply = try await client.call("org.berth.Berth1", "/org/berth/Berth1/fixture", "org.berth.Berth1.Fixture",
                "Sleep", [.double(30)])
            let (file, live) = try await IntrospectionXML.compare(env, path: reply[1].string!, interface: "org.berth.Berth1.Job")
            #expect(file == live, "dbus/org.berth.Berth1.Job.xml differs from live introspection")
        }
    }
}
