import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// The fuzzer's own parts, checked alone: a harness that cannot see a failure would pass for ever.
@Suite struct HostileHarnessTests {
    @Test func signaturesSplitIntoCompleteTypes() {
        #expect(Signature.split("sa{sv}a(ssso)ayv(i(ss))") == ["s", "a{sv}", "a(ssso)", "ay", "v", "(i(ss))"])
        #expect(Signature.split("") == [])
    }

    @Test func introspectionXMLGivesMethodsPropertiesAndChildren() {
        let xml = """
            <!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
            "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
            <node>
             <interface name="org.berth.Berth1.Pickup">
              <method name="Deploy">
               <arg type="s" name="filename" direction="in"/>
               <arg type="ay" name="data" direction="in"/>
               <arg type="s" name="deployment_id" direction="out"/>
              </method>
              <method name="Ping">
              </method>
              <property name="Paused" type="b" access="readwrite">
               <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="true"/>
              </property>
              <property name="Directories" type="a(sss)" access="read"/>
             </interface>
             <node name="job"/>
             <node name="services"/>
            </node>
            """
        let object = IntrospectionParser.parse(path: "/org/berth/Berth1", xml: xml)
        #expect(object.children == ["/org/berth/Berth1/job", "/org/berth/Berth1/services"])
        let pickup = object.interfaces.first
        #expect(pickup?.methods.map(\.name) == ["Deploy", "Ping"])
        #expect(pickup?.methods.first?.inTypes == ["s", "ay"])
        #expect(pickup?.methods.first?.inNames == ["filename", "data"])
        #expect(pickup?.methods.first?.outTypes == ["s"])
        #expect(pickup?.properties.map(\.name) == ["Paused", "Directories"])
        #expect(pickup?.properties.map(\.writable) == [true, false])
    }

    @Test func wrongSignaturesAreWrong() {
        for types in [[], ["s"], ["s", "ay", "s"], ["v"], ["u", "a{sv}"]] {
            for call in EdgeValues.wrongSignatures(types) {
                #expect(call.arguments.map(\.signature) != types, "\(call.label) for \(types)")
            }
        }
    }

    /// The writes-outside check sees a file berthd's folders do not hold, and ignores one they do.
    @Test func writesOutsideBerthdsFoldersAreSeen() async throws {
        try await TestEnvironment.with { env in
            let before = HostileWorld.listOutside(env)
            try FileSystem.makeDirectories(env.stateHome + "/berth/pickup", mode: 0o700)
            try FileSystem.writeAtomically(env.stateHome + "/berth/pickup/inside.txt", text: "x")
            try FileSystem.writeAtomically(env.stateHome + "/escaped.txt", text: "x")
            try FileSystem.writeAtomically(env.root + "/escaped-too.txt", text: "x")
            let new = HostileWorld.listOutside(env).subtracting(before)
            #expect(new == ["state/escaped.txt", "escaped-too.txt"])
        }
    }
}
