// Durations and byte sizes: numbers with units, as people write them in config files.

extension ConfigReader {
    /// `250ms`, `5s`, `2m`, `1h`, `1d`, `1.5s`, `1h30m`; a bare number is seconds. Negative values are errors.
    public func duration(_ key: String) throws -> Duration? {
        guard let (entry, raw) = try unitText(key, expected: "a duration") else { return nil }
        let text = YAMLScalar.quotedForMessage(raw)
        switch ConfigUnits.duration(raw) {
        case .value(let duration): return duration
        case .negative: throw failure(entry, "\(text) is negative; a duration must be zero or more")
        case .tooLarge: throw failure(entry, "\(text) is too long a duration")
        case .invalid:
            let hint = "write a number and a unit: 250ms, 5s, 2m, 1h or 1d; a bare number is seconds"
            throw failure(entry, "\(text) is not a duration (\(hint))")
        }
    }

    /// `1048576`, `512B`, `10K`/`10KiB`/`10KB`, `10M`, `2G`, `1T`, `1.5G`: units are powers of 1024, whole bytes.
    public func byteSize(_ key: String) throws -> UInt64? {
        guard let (entry, raw) = try unitText(key, expected: "a size") else { return nil }
        let text = YAMLScalar.quotedForMessage(raw)
        switch ConfigUnits.byteSize(raw) {
        case .value(let bytes): return bytes
        case .negative: throw failure(entry, "\(text) is negative; a size must be zero or more")
        case .tooLarge: throw failure(entry, "\(text) is too large a size")
        case .invalid:
            throw failure(entry, "\(text) is not a size (write bytes, or a number and a unit: 512K, 10M, 2G)")
        }
    }

    /// Any scalar's text: amounts with units are text, so quotes around them are allowed.
    private func unitText(_ key: String, expected: String) throws -> (ConfigEntry, String)? {
        guard let entry = entry(key) else { return nil }
        guard case .scalar(let text, _, _) = entry.value else {
            throw failure(entry, "expected \(expected), got \(entry.value.kindName)")
        }
        return (entry, text)
    }
}

/// Parsing of amounts with units, exact for whole numbers and rounded for fractions.
enum ConfigUnits {
    enum Parsed<Value: Equatable>: Equatable {
        case value(Value)
        case negative
        case tooLarge
        case invalid
    }

    static let durationUnits: [(suffix: String, nanoseconds: UInt64)] = [
        ("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
    ]

    static let sizeUnits: [String: UInt64] = [
        "": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
        "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
    ]

    static func duration(_ text: String) -> Parsed<Duration> {
        if text.hasPrefix("-") {
            let magnitude = String(text.dropFirst())
            return magnitude.hasPrefix("-") || duration(magnitude) == .invalid ? .invalid : .negative
        }
        // A bare number is seconds.
        if let seconds = amount(Substring(text)), seconds.rest.isEmpty {
            return nanoseconds(seconds, 1_000_000_000).map { .value(.nanoseconds($0)) } ?? .tooLarge
        }
        var rest = Substring(text)
        var total: Int64 = 0
        while !rest.isEmpty {
            guard let parsed = amount(rest) else { return .invalid }
            let unitText = parsed.rest.prefix(while: { $0.isLetter })
            guard let unit = durationUnits.first(where: { $0.suffix == unitText }) else { return .invalid }
            guard let part = nanoseconds(parsed, unit.nanoseconds) else { return .tooLarge }
            let (sum, overflow) = total.addingReportingOverflow(part)
            if overflow { return .tooLarge }
            total = sum
            rest = parsed.rest.dropFirst(unitText.count)
        }
        return .value(.nanoseconds(total))
    }

    static func byteSize(_ text: String) -> Parsed<UInt64> {
        if text.hasPrefix("-") {
            let magnitude = String(text.dropFirst())
            return magnitude.hasPrefix("-") || byteSize(magnitude) == .invalid ? .invalid : .negative
        }
        guard let parsed = amount(Substring(text)), let unit = sizeUnits[parsed.rest.lowercased()] else {
            return .invalid
        }
        guard let parsedWhole = parsed.whole else { return .tooLarge }
        let (whole, overflow) = parsedWhole.multipliedReportingOverflow(by: unit)
        let fraction = (parsed.fraction * Double(unit)).rounded(.down)
        guard !overflow, fraction < 18e18 else { return .tooLarge }
        let (sum, overflow2) = whole.addingReportingOverflow(UInt64(fraction))
        return overflow2 ? .tooLarge : .value(sum)
    }

    /// A leading unsigned decimal number (`12`, `1.5`, `.5`, `1_000`): its whole part exactly (nil when it
    /// overflows), its fractional part, and the text after it.
    private static func amount(_ text: Substring) -> Amount? {
        let wholeDigits = text.prefix(while: { $0.isASCII && ($0.isNumber || $0 == "_") })
        var rest = text.dropFirst(wholeDigits.count)
        var fractionDigits: Substring = ""
        if rest.first == "." {
            fractionDigits = rest.dropFirst().prefix(while: { $0.isASCII && $0.isNumber })
            rest = rest.dropFirst(1 + fractionDigits.count)
        }
        let digits = wholeDigits.filter { $0 != "_" }
        guard wholeDigits.first != "_", !(digits.isEmpty && fractionDigits.isEmpty) else { return nil }
        var whole: UInt64 = 0
        for digit in digits {
            let (shifted, o1) = whole.multipliedReportingOverflow(by: 10)
            let (sum, o2) = shifted.addingReportingOverflow(UInt64(digit.wholeNumberValue!))
            if o1 || o2 { return Amount(whole: nil, fraction: 0, rest: rest) }
            whole = sum
        }
        let fraction = fractionDigits.isEmpty ? 0 : Double("0." + fractionDigits)!
        return Amount(whole: whole, fraction: fraction, rest: rest)
    }

    private struct Amount {
        var whole: UInt64?
        var fraction: Double
        var rest: Substring
    }

    /// An amount of units of `scale` nanoseconds as an Int64, nil when it does not fit.
    private static func nanoseconds(_ amount: Amount, _ scale: UInt64) -> Int64? {
        guard let whole = amount.whole else { return nil }
        let (product, overflow) = whole.multipliedReportingOverflow(by: scale)
        let (sum, overflow2) = product.addingReportingOverflow(UInt64((amount.fraction * Double(scale)).rounded()))
        guard !overflow, !overflow2, sum <= UInt64(Int64.max) else { return nil }
        return Int64(sum)
    }
}
