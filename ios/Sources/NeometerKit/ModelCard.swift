import Foundation

/// Errors a nurse or developer can act on: the message names the file and the fix.
public struct NeometerError: Error, LocalizedError, Equatable {
    public let message: String
    public let problems: [String]

    public init(_ message: String, problems: [String] = []) {
        self.message = message
        self.problems = problems
    }

    public var errorDescription: String? {
        problems.isEmpty ? message : message + ":\n  - " + problems.joined(separator: "\n  - ")
    }
}

public struct Quantization: Codable, Equatable {
    public let scale: Double
    public let zeroPoint: Int

    enum CodingKeys: String, CodingKey {
        case scale
        case zeroPoint = "zero_point"
    }
}

/// The card's "preprocessing" block (neometer.data.preprocess.PreprocessSpec).
public struct PreprocessSpec: Codable, Equatable {
    public let targetSize: Int
    public let resizeRule: String
    public let resize: String
    public let placement: String
    public let padValue: Int
    public let rounding: String
    public let channelOrder: String
    public let scale: Double
    public let mean: [Double]
    public let std: [Double]
    public let backgroundRemoval: String
    public let maskThreshold: Double

    enum CodingKeys: String, CodingKey {
        case targetSize = "target_size"
        case resizeRule = "resize_rule"
        case resize
        case placement
        case padValue = "pad_value"
        case rounding
        case channelOrder = "channel_order"
        case scale
        case mean
        case std
        case backgroundRemoval = "background_removal"
        case maskThreshold = "mask_threshold"
    }

    /// The rules this code implements; anything else must fail loudly, not preprocess wrongly.
    public func problems() -> [String] {
        var p: [String] = []
        if resizeRule != "long_side" { p.append("preprocessing.resize_rule: '\(resizeRule)' is not long_side") }
        if resize != "area" { p.append("preprocessing.resize: '\(resize)' is not area") }
        if placement != "center" { p.append("preprocessing.placement: '\(placement)' is not center") }
        if rounding != "round_half_up" { p.append("preprocessing.rounding: '\(rounding)' is not round_half_up") }
        if !["RGB", "BGR"].contains(channelOrder) { p.append("preprocessing.channel_order: '\(channelOrder)' is not RGB or BGR") }
        if !["mask", "none"].contains(backgroundRemoval) { p.append("preprocessing.background_removal: '\(backgroundRemoval)'") }
        if mean.count != 3 || std.count != 3 { p.append("preprocessing.mean/std: expected 3 values each") }
        if std.contains(where: { $0 <= 0 }) { p.append("preprocessing.std: every value must be positive") }
        if !(0...255).contains(padValue) { p.append("preprocessing.pad_value: \(padValue) is outside 0...255") }
        if targetSize < 16 { p.append("preprocessing.target_size: \(targetSize) is below 16") }
        return p
    }

    /// float32 values exactly as Python's np.float32(...) casts them.
    var scale32: Float { Float(scale) }
    var mean32: [Float] { mean.map(Float.init) }
    var std32: [Float] { std.map(Float.init) }
}

/// The card's "quality" block (neometer.measure.gates.QualityThresholds).
public struct QualityThresholds: Codable, Equatable {
    public let minBodyFraction: Double
    public let maxBorderFraction: Double
    public let borderPx: Int
    public let maxTiltDeg: Double
    public let maxUncertainFraction: Double
    public let minGoodFrames: Int

    public init(minBodyFraction: Double, maxBorderFraction: Double, borderPx: Int, maxTiltDeg: Double,
                maxUncertainFraction: Double, minGoodFrames: Int) {
        self.minBodyFraction = minBodyFraction
        self.maxBorderFraction = maxBorderFraction
        self.borderPx = borderPx
        self.maxTiltDeg = maxTiltDeg
        self.maxUncertainFraction = maxUncertainFraction
        self.minGoodFrames = minGoodFrames
    }

    enum CodingKeys: String, CodingKey {
        case minBodyFraction = "min_body_fraction"
        case maxBorderFraction = "max_border_fraction"
        case borderPx = "border_px"
        case maxTiltDeg = "max_tilt_deg"
        case maxUncertainFraction = "max_uncertain_fraction"
        case minGoodFrames = "min_good_frames"
    }
}

/// The model card (schemas/model_card.schema.json) beside every artifact as `<artifact>.json`.
public struct ModelCard: Codable {
    public struct Converter: Codable {
        public let name: String
        public let version: String
        public let route: String?
        public let delegate: String?
    }

    public struct Artifact: Codable {
        public let file: String
        public let sha256: String
        public let sizeBytes: Int

        enum CodingKeys: String, CodingKey {
            case file, sha256
            case sizeBytes = "size_bytes"
        }
    }

    public struct Input: Codable {
        public let name: String
        public let shape: [Int]
        public let layout: String
        public let dtype: String
        /// "image": a Core ML ImageType taking RGB pixels, scale and bias inside the model.
        public let kind: String?
        public let quantization: Quantization?
    }

    public struct Output: Codable {
        public let name: String
        public let unit: String
        public let index: Int
        /// The model's output tensor name, when the format names it (Core ML, TFLite).
        public let tensor: String?
        public let quantization: Quantization?
    }

    public struct OutputTensor: Codable {
        public let name: String?
        public let shape: [Int]?
    }

    public struct Model: Codable {
        public let backbone: String
        public let task: String
    }

    public struct Pipeline: Codable {
        public let segmenter: String?
        public let regressor: String?
    }

    public let schemaVersion: Int
    public let role: String
    public let format: String
    public let precision: String
    public let converter: Converter
    public let artifact: Artifact
    public let input: Input
    public let preprocessing: PreprocessSpec
    public let outputs: [Output]
    public let outputTensor: OutputTensor?
    public let model: Model
    public let quality: QualityThresholds?
    public let pipeline: Pipeline?

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case role, format, precision, converter, artifact, input, preprocessing, outputs
        case outputTensor = "output_tensor"
        case model, quality, pipeline
    }

    /// Reads and checks a card; the error names the file and lists every problem.
    public static func load(from url: URL) throws -> ModelCard {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw NeometerError("\(url.path): cannot read the model card; copy `<artifact>.json` next to the model")
        }
        let card: ModelCard
        do {
            card = try JSONDecoder().decode(ModelCard.self, from: data)
        } catch {
            throw NeometerError("\(url.lastPathComponent): not a valid model card (\(error)); re-export with `neometer export`")
        }
        let problems = card.problems()
        if !problems.isEmpty {
            throw NeometerError("\(url.lastPathComponent): model card is invalid; re-export with `neometer export`", problems: problems)
        }
        return card
    }

    public func problems() -> [String] {
        var p = preprocessing.problems()
        if schemaVersion != 1 { p.append("schema_version: \(schemaVersion) (this app reads version 1)") }
        if !["NCHW", "NHWC"].contains(input.layout) { p.append("input.layout: '\(input.layout)' is not NCHW or NHWC") }
        if outputs.isEmpty { p.append("outputs: empty") }
        if input.shape.count == 4 {
            let (c, h, w) = input.layout == "NCHW" ? (input.shape[1], input.shape[2], input.shape[3])
                                                   : (input.shape[3], input.shape[1], input.shape[2])
            if c != 3 || h != preprocessing.targetSize || w != preprocessing.targetSize {
                p.append("input.shape: \(input.shape) does not match \(input.layout) at target_size \(preprocessing.targetSize)")
            }
        } else {
            p.append("input.shape: expected 4 dimensions")
        }
        return p
    }

    /// The card of an artifact: `<artifact file name>.json` in the same folder.
    public static func cardURL(for artifact: URL) -> URL {
        artifact.deletingLastPathComponent().appendingPathComponent(artifact.lastPathComponent + ".json")
    }

    /// Flat raw output -> values in the order of `outputs`, dequantized when the card says so.
    public func readOutputs(_ raw: [Float]) throws -> [Double] {
        try outputs.map { o in
            guard o.index < raw.count else {
                throw NeometerError("output \(o.name) is element \(o.index) but the model returned \(raw.count) values; the card does not match \(artifact.file)")
            }
            var v = Double(raw[o.index])
            if let q = o.quantization { v = (v - Double(q.zeroPoint)) * q.scale }
            return v
        }
    }

    /// (height_cm, weight_kg); weight is nil for a height-only model.
    public func heightWeight(_ raw: [Float]) throws -> (Double, Double?) {
        let values = try readOutputs(raw)
        var h = Double.nan
        var w: Double?
        for (o, v) in zip(outputs, values) {
            if o.name == "height_cm" { h = v }
            if o.name == "weight_kg" { w = v }
        }
        return (h, w)
    }
}
