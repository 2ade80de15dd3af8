import Foundation

/// One measurement, the same flow as the web and Android apps: frames over a few seconds, each
/// letterboxed, segmented (or given a mask), gated, background removed and predicted; then the
/// median of the accepted frames.
public final class MeasureSession {
    public let regressor: FrameModel
    public let segmenter: FrameModel?
    public let thresholds: QualityThresholds
    private(set) var predictions: [(Double, Double?)] = []
    private(set) var checks: [FrameCheck] = []

    public init(regressor: FrameModel, segmenter: FrameModel?, fallbackThresholds: QualityThresholds?) throws {
        guard let t = regressor.card.quality ?? fallbackThresholds else {
            throw NeometerError("\(regressor.card.artifact.file).json has no quality block and no fallback was given")
        }
        self.regressor = regressor
        self.segmenter = segmenter
        self.thresholds = t
    }

    /// mask: a known source-resolution mask in [0, 1]; nil uses the segmenter (or no mask gates).
    @discardableResult
    public func addFrame(_ frame: RGBImage, mask: [Float]? = nil, tiltDeg: Double?) throws -> FrameCheck {
        let spec = regressor.card.preprocessing
        let boxed = Preprocess.letterbox(frame, spec: spec)
        let geo = Letterbox(srcW: frame.width, srcH: frame.height, size: spec.targetSize)
        var mask224: [Float]?
        if let mask = mask {
            mask224 = Preprocess.letterboxMask(mask, width: frame.width, height: frame.height, spec: spec)
        } else if let seg = segmenter {
            let raw = try seg.run(letterboxed: Preprocess.letterbox(frame, spec: seg.card.preprocessing))
            mask224 = seg.card.outputs.first?.unit == "logit" ? raw.map { 1 / (1 + exp(-$0)) } : raw
        }
        let check = Gates.checkFrame(mask: mask224, size: spec.targetSize, box: geo.contentBox, tiltDeg: tiltDeg, t: thresholds)
        checks.append(check)
        guard check.accepted else {
            predictions.append((.nan, nil))
            return check
        }
        let input = (mask224 != nil && spec.backgroundRemoval == "mask") ? Preprocess.applyMask(boxed, mask: mask224!, spec: spec) : boxed
        predictions.append(try regressor.card.heightWeight(try regressor.run(letterboxed: input)))
        return check
    }

    public var framesSeen: Int { checks.count }

    public func finish() -> Measurement {
        Aggregate.aggregate(predictions: predictions, checks: checks, t: thresholds)
    }
}

/// Local history: one JSON file in Application Support, replaced atomically, never uploaded.
public final class History {
    public struct Entry: Codable, Equatable {
        public let time: String
        public let label: String?
        public let model: String
        public let measurement: Measurement
    }

    struct Document: Codable {
        var schemaVersion: Int
        var entries: [Entry]
        enum CodingKeys: String, CodingKey {
            case schemaVersion = "schema_version"
            case entries
        }
    }

    public let url: URL

    public init(url: URL) {
        self.url = url
    }

    public func entries() throws -> [Entry] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        do {
            return try JSONDecoder().decode(Document.self, from: Data(contentsOf: url)).entries
        } catch {
            // Never overwrite an unreadable history: the nurse's records stay on disk.
            throw NeometerError("\(url.path): history is not readable; move it away to start a new one")
        }
    }

    @discardableResult
    public func add(_ m: Measurement, time: Date = Date(), model: String, label: String?) throws -> Entry {
        var all = try entries()
        let entry = Entry(time: ISO8601DateFormatter().string(from: time), label: label, model: model, measurement: m)
        all.append(entry)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(Document(schemaVersion: 1, entries: all)).write(to: url, options: .atomic)
        return entry
    }
}
