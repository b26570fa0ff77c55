import BerthKit
import Testing

@testable import InstancesPlugin

/// Errors in a `New(config_json)` name the place in the JSON the user gave, not a line past its end.
struct InstanceConfigTextTests {
    static let defaults = HealthSpec(check: .tcp, timeout: .seconds(1), interval: .seconds(1), minReady: .seconds(1))

    func message(_ text: String) -> String {
        do {
            _ = try InstanceConfig.parse(text, defaults: Self.defaults)
            return "accepted"
        } catch {
            return BerthError.wrapping(error).message
        }
    }

    @Test func oneLineTyposNameNoLineTwo() {
        let unfinished = message("{\"application_name\": \"web\"")
        #expect(!unfinished.contains(":2") && !unfinished.contains("line 2"), "\(unfinished)")
        #expect(unfinished.contains("ends before it is complete"), "\(unfinished)")
        let unquoted = message("{\"application_name\": web}")
        #expect(!unquoted.contains("config_json:") && unquoted.contains("double quotes"), "\(unquoted)")
        let unknown = message("{\"application_nam\": \"web\"}")
        #expect(unknown.contains("application_nam") && !unknown.contains("config_json:"), "\(unknown)")
        // A longer JSON names the line.
        let multi = message("{\"application_name\": \"web\",\n\"env\": }")
        #expect(multi.contains("line 2: "), "\(multi)")
        let multiUnfinished = message("{\"application_name\": \"web\",\n\"env\": {}\n")
        #expect(multiUnfinished.contains("ends before it is complete"), "\(multiUnfinished)")
    }
}
