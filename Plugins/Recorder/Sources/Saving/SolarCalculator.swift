import Glibc

/// Sunrise and sunset by the NOAA solar equations (the NOAA Global Monitoring Laboratory's solar calculator,
/// after Jean Meeus, "Astronomical Algorithms"): the sun's declination and the equation of time for the moment,
/// then the hour angle at which the sun's centre is 0.833° below the horizon (refraction and the sun's radius).
/// Good to about a minute between ±72° latitude, and less near the poles; pure, no I/O.
enum SolarCalculator {
    /// The sun's events of one solar day.
    enum Events: Sendable, Equatable {
        /// Sunrise and sunset, microseconds since the epoch.
        case riseAndSet(sunrise: Int64, sunset: Int64)
        /// The sun stays above the horizon all day (midnight sun): no dawn, no dusk.
        case polarDay
        /// The sun stays below the horizon all day: no dawn, no dusk.
        case polarNight
    }

    /// The events of the solar day whose noon falls near 12:00 minus `longitude`/15 hours UTC on `utcDay` (days
    /// since 1970-01-01): for a place east of Greenwich its sunrise may fall on the UTC day before, as a local
    /// calendar day's sunrise does.
    static func events(utcDay: Int64, latitude: Double, longitude: Double) -> Events {
        // Each event is computed at the approximate solar noon, then refined at its own moment.
        let noonMinute = Double(utcDay) * 1440 + 720 - 4 * longitude
        func event(_ sign: Double) -> Result<Double, Polar> {
            var minute = noonMinute
            for _ in 0..<3 {
                let s = sun(atMinute: minute)
                switch hourAngle(declination: s.declination, latitude: latitude) {
                case .failure(let polar): return .failure(polar)
                case .success(let angle): minute = noonMinute - s.equationOfTime + sign * 4 * angle
                }
            }
            return .success(minute)
        }
        switch (event(-1), event(1)) {
        case (.success(let rise), .success(let set)):
            return .riseAndSet(sunrise: Int64((rise * 60e6).rounded()), sunset: Int64((set * 60e6).rounded()))
        case (.failure(let polar), _), (_, .failure(let polar)):
            return polar == .day ? .polarDay : .polarNight
        }
    }

    /// The events for the day holding `usec` and the days either side, for filters that look around an instant.
    static func events(around usec: Int64, latitude: Double, longitude: Double) -> [Events] {
        let day = Int64((Double(usec) / 86_400e6).rounded(.down))
        return (day - 1...day + 1).map { events(utcDay: $0, latitude: latitude, longitude: longitude) }
    }

    // MARK: NOAA equations

    struct Sun {
        /// Degrees.
        var declination: Double
        /// Minutes.
        var equationOfTime: Double
    }

    /// The sun at `minute` (minutes since the epoch, UTC).
    static func sun(atMinute minute: Double) -> Sun {
        let julianDay = minute / 1440 + 2_440_587.5
        let t = (julianDay - 2_451_545) / 36525  // Julian centuries since J2000.0
        let meanLongitude = (280.46646 + t * (36000.76983 + t * 0.0003032)).truncatingRemainder(dividingBy: 360)
        let meanAnomaly = 357.52911 + t * (35999.05029 - 0.0001537 * t)
        let eccentricity = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
        let m = radians(meanAnomaly)
        let centre =
            sin(m) * (1.914602 - t * (0.004817 + 0.000014 * t)) + sin(2 * m) * (0.019993 - 0.000101 * t)
            + sin(3 * m) * 0.000289
        let trueLongitude = meanLongitude + centre
        let omega = radians(125.04 - 1934.136 * t)
        let apparentLongitude = trueLongitude - 0.00569 - 0.00478 * sin(omega)
        let meanObliquity = 23 + (26 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60) / 60
        let obliquity = radians(meanObliquity + 0.00256 * cos(omega))
        let declination = degrees(asin(sin(obliquity) * sin(radians(apparentLongitude))))
        let y = pow(tan(obliquity / 2), 2)
        let l0 = radians(meanLongitude)
        let equation =
            y * sin(2 * l0) - 2 * eccentricity * sin(m) + 4 * eccentricity * y * sin(m) * cos(2 * l0) - 0.5 * y * y
            * sin(4 * l0) - 1.25 * eccentricity * eccentricity * sin(2 * m)
        return Sun(declination: declination, equationOfTime: 4 * degrees(equation))
    }

    enum Polar: Error, Equatable {
        case day, night
    }

    /// The hour angle of sunrise in degrees, or why the sun does not cross the horizon that day.
    static func hourAngle(declination: Double, latitude: Double) -> Result<Double, Polar> {
        let phi = radians(latitude)
        let delta = radians(declination)
        let cosine = cos(radians(90.833)) / (cos(phi) * cos(delta)) - tan(phi) * tan(delta)
        if cosine.isNaN || cosine > 1 {
            return .failure(cosine.isNaN ? (latitude * declination > 0 ? .day : .night) : .night)
        }
        if cosine < -1 { return .failure(.day) }
        return .success(degrees(acos(cosine)))
    }

    private static func radians(_ d: Double) -> Double { d * .pi / 180 }
    private static func degrees(_ r: Double) -> Double { r * 180 / .pi }
}
