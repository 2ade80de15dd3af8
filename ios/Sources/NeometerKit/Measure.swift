import Foundation

/// One frame's gate result; `failures` empty = accepted.
public struct FrameCheck: Equatable {
    public let bodyFraction: Double
    public let borderFraction: Double
    public let uncertainFraction: Double
    public let tiltDeg: Double?
    public let failures: [String]

    public var accepted: Bool { failures.isEmpty }

    public init(bodyFraction: Double, borderFraction: Double, uncertainFraction: Double, tiltDeg: Double?, failures: [String]) {
        self.bodyFraction = bodyFraction
        self.borderFraction = borderFraction
        self.uncertainFraction = uncertainFraction
        self.tiltDeg = tiltDeg
        self.failures = failures
    }
}

/// Per-frame quality gates (neometer/measure/gates.py); keys are the shared message keys.
public enum Gates {
    public static let noBody = "no_body"
    public static let outOfFrame = "body_out_of_frame"
    public static let tilted = "camera_tilted"
    public static let maskUncertain = "mask_uncertain"
    public static let tooFewFrames = "too_few_good_frames"
    public static let allKeys = [noBody, outOfFrame, tilted, maskUncertain, tooFewFrames]

    /// mask: size x size probabilities (nil: no mask gates); box: content x0, y0, x1, y1 (exclusive).
    public static func checkFrame(mask: [Float]?, size: Int, box: [Int]?, tiltDeg: Double?, t: QualityThresholds) -> FrameCheck {
        var failures: [String] = []
        var body = 0.0, border = 0.0, uncertain = 0.0
        if let mask = mask {
            let b = box ?? [0, 0, size, size]
            let w = b[2] - b[0], h = b[3] - b[1]
            var nFg = 0, nRing = 0, nSoft = 0, nUnsure = 0
            for y in b[1]..<b[3] {
                for x in b[0]..<b[2] {
                    let m = mask[y * size + x]
                    if m >= 0.5 {
                        nFg += 1
                        if inRing(x - b[0], y - b[1], w, h, t.borderPx) { nRing += 1 }
                    }
                    if m >= Float(0.1) {
                        nSoft += 1
                        if m < Float(0.9) { nUnsure += 1 }
                    }
                }
            }
            body = Double(nFg) / Double(max(1, w * h))
            border = Double(nRing) / Double(max(1, nFg))
            uncertain = Double(nUnsure) / Double(max(1, nSoft))
            if body < t.minBodyFraction {
                failures.append(noBody)
            } else {
                if border > t.maxBorderFraction { failures.append(outOfFrame) }
                if uncertain > t.maxUncertainFraction { failures.append(maskUncertain) }
            }
        }
        if let tilt = tiltDeg, abs(tilt) > t.maxTiltDeg { failures.append(tilted) }
        return FrameCheck(bodyFraction: body, borderFraction: border, uncertainFraction: uncertain, tiltDeg: tiltDeg, failures: failures)
    }

    /// The content's outer ring; Python's [b:-b] slice makes b == 0 the whole content.
    static func inRing(_ x: Int, _ y: Int, _ w: Int, _ h: Int, _ b: Int) -> Bool {
        if b <= 0 { return true }
        return !(x >= b && x < w - b && y >= b && y < h - b)
    }

    /// Pitch and roll (degrees, e.g. CMAttitude) -> angle between camera axis and straight down.
    public static func tiltFromOrientation(betaDeg: Double, gammaDeg: Double) -> Double {
        let c = cos(betaDeg * .pi / 180) * cos(gammaDeg * .pi / 180)
        return acos(max(-1, min(1, c))) * 180 / .pi
    }
}

/// What the nurse reads (neometer.measure.aggregate.Measurement); keys as Python's to_dict().
public struct Measurement: Codable, Equatable {
    public let heightCm: Double?
    public let weightKg: Double?
    public let heightSpreadCm: Double?
    public let weightSpreadKg: Double?
    public let framesUsed: Int
    public let framesSeen: Int
    public let message: String?

    enum CodingKeys: String, CodingKey {
        case heightCm = "height_cm"
        case weightKg = "weight_kg"
        case heightSpreadCm = "height_spread_cm"
        case weightSpreadKg = "weight_spread_kg"
        case framesUsed = "frames_used"
        case framesSeen = "frames_seen"
        case message
    }
}

/// Median, half-IQR (numpy 'linear' percentiles), most common failure (first seen wins ties).
public enum Aggregate {
    public static func aggregate(predictions: [(Double, Double?)], checks: [FrameCheck], t: QualityThresholds) -> Measurement {
        precondition(predictions.count == checks.count, "one prediction per frame check")
        let keep = checks.indices.filter { checks[$0].accepted }
        if keep.count < t.minGoodFrames {
            return Measurement(heightCm: nil, weightKg: nil, heightSpreadCm: nil, weightSpreadKg: nil,
                               framesUsed: keep.count, framesSeen: checks.count, message: mostCommonFailure(checks))
        }
        let h = keep.map { predictions[$0].0 }
        let w = keep.compactMap { predictions[$0].1 }
        let hasWeight = w.count == keep.count
        return Measurement(heightCm: median(h), weightKg: hasWeight ? median(w) : nil, heightSpreadCm: halfIQR(h),
                           weightSpreadKg: hasWeight ? halfIQR(w) : nil, framesUsed: keep.count, framesSeen: checks.count, message: nil)
    }

    static func mostCommonFailure(_ checks: [FrameCheck]) -> String {
        var order: [String] = []
        var counts: [String: Int] = [:]
        for c in checks {
            for f in c.failures {
                if counts[f] == nil { order.append(f) }
                counts[f, default: 0] += 1
            }
        }
        var best = Gates.tooFewFrames, bestCount = 0
        for f in order where counts[f]! > bestCount { best = f; bestCount = counts[f]! }
        return best
    }

    public static func percentile(_ values: [Double], _ q: Double) -> Double {
        let s = values.sorted()
        let pos = Double(s.count - 1) * q / 100
        let lo = Int(pos.rounded(.down)), hi = min(s.count - 1, lo + 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - Double(lo))
    }

    public static func median(_ values: [Double]) -> Double {
        let s = values.sorted(), m = s.count / 2
        return s.count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2
    }

    public static func halfIQR(_ values: [Double]) -> Double {
        (percentile(values, 75) - percentile(values, 25)) / 2
    }
}
