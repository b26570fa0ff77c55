import BerthKit
import BerthTestSupport
import Foundation
import Testing

/// `New` + `Start`, 30 rounds through the bus with BerthKit's client: every Start job ends `done` with the instance
/// running (pid known). How long it takes is measured by Benchmarks/instances/run.sh (new-start.c), not here: a
/// wall-clock bound in a test only measures how busy the machine is.
@Suite(.serialized) struct InstancesNewStartTests {
    @Test func newPlusStartRounds() async throws {
        try await TestEnvironment.with { env in
            try await InstancesTest.start(env)
            let c = try env.connect()
            let root = env.stateHome + "/berth/instances"
            let stream = try await c.signals(sender: "org.berth.Berth1", member: "JobRemoved")
            var iterator = stream.makeAsyncIterator()
            try FileSystem.writeAtomically(env.root + "/sleeper", text: "#!/bin/sh\nexec sleep 1000\n", mode: 0o755)
            var pids: Set<UInt32> = []
            for _ in 0..<30 {
                let id = try await InstancesTest.new(c, "{\"application_name\": \"bench\"}")
                try FileManager.default.createSymbolicLink(
                    atPath: "\(root)/\(id)/server", withDestinationPath: env.root + "/sleeper")
                let reply = try await InstancesTest.call(c, "Start", [.string(id)])
                while let s = await iterator.next() {
                    if s.arguments[1].string == reply[1].string {
                        #expect(s.arguments[3].string == "done")
                        break
                    }
                }
                let pid = try await InstancesTest.property(c, id, "MainPID").uint32 ?? 0
                #expect(pid > 0)
                pids.insert(pid)
            }
            #expect(pids.count == 30)
        }
    }
}
