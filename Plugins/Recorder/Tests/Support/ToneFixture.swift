import BerthKit
import Glibc

@testable import RecorderPlugin

/// A raw S16_LE mono fixture at 8000 Hz with tone bursts at known times, frequencies and amplitudes in its first
/// second and silence after, played by an ALSA `type file` PCM; and the path of the `tones.py` processor that
/// finds them. Every recording reopens the PCM, so every recording of one second holds the same bursts.
struct ToneFixture {
    struct Burst {
        var hz: Double
        var amplitude: Double
        var start: Double
        var end: Double
    }

    static let rate = 8000
    /// On the 0.05 s analysis grid of tones.py: found exactly.
    static let bursts = [
        Burst(hz: 1000, amplitude: 0.8, start: 0.2, end: 0.4), Burst(hz: 2000, amplitude: 0.3, start: 0.6, end: 0.9),
    ]
    let path: String

    init(directory: String, seconds: Double = 30) throws {
        path = directory + "/tones.raw"
        var samples = [Int16](repeating: 0, count: Int(seconds * Double(Self.rate)))
        for b in Self.bursts {
            let first = Int(b.start * Double(Self.rate))
            for i in first..<Int(b.end * Double(Self.rate)) {
                let phase = 2 * Double.pi * b.hz * Double(i - first) / Double(Self.rate)
                samples[i] = Int16((b.amplitude * 32767 * cos(phase)).rounded())
            }
        }
        let bytes = samples.withUnsafeBytes { Array($0) }
        try writeFile(path, bytes)
    }

    var alsaConfig: String {
        """
        pcm.fixture {
            type file
            slave { pcm { type null } }
            file "/dev/null"
            infile "\(path)"
            format raw
        }
        """
    }

    /// Plugins/Recorder/TestFixtures/tones.py, found from this source file.
    static var processorPath: String {
        let here = #filePath
        let tests = here[..<here.range(of: "/Tests/Support/")!.lowerBound]
        return tests + "/TestFixtures/tones.py"
    }

    /// A `tones` processor with these extra variables.
    static func processor(
        _ name: String = "tones", environment: [String: String] = [:], timeout: Double = 30, attempts: Int = 3,
        retryDelay: Double = 0
    ) -> ProcessorConfig {
        var p = ProcessorConfig(name: name, command: ["python3", processorPath])
        p.environment = environment
        p.timeoutSeconds = timeout
        p.attempts = attempts
        p.retryDelaySeconds = retryDelay
        return p
    }
}

extension EngineFixture {
    /// The fixture's config playing tone bursts (8000 Hz mono S16_LE), with these processors and saving filters.
    func toneConfig(_ tones: ToneFixture, processors: [ProcessorConfig], saving: SavingConfig = .init())
        -> RecorderConfig
    {
        var c = config
        c.alsaConfig = tones.alsaConfig
        c.sampleRate = ToneFixture.rate
        c.channels = 1
        c.format = "S16_LE"
        c.processing = ProcessingConfig(processors: processors, concurrency: 2)
        c.saving = saving
        return c
    }
}

/// Waits until `condition` holds, polling every 20 ms, for at most `seconds`; false when time runs out.
func eventually(seconds: Double = 30, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = SystemClock.monotonicUSec() + UInt64(seconds * 1e6)
    while SystemClock.monotonicUSec() < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try condition()
}

/// True when process `pid` is gone or a zombie (dead; its parent, maybe a subreaper, has not reaped it yet).
func processIsGone(_ pid: Int32) -> Bool {
    guard let bytes = try? FileIO.readAll(path: "/proc/\(pid)/stat", limit: 4096) else { return true }
    let text = String(decoding: bytes, as: UTF8.self)
    guard let close = text.lastIndex(of: ")") else { return true }
    return text[close...].dropFirst(2).first == "Z"  // ") Z ..."
}
