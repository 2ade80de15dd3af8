import Foundation
import XCTest
@testable import NeometerKit

/// Repository files the Swift tests read. tests/test_shell_contracts.py checks these paths
/// exist and that the manifest has every key in GoldenManifest's CodingKeys, so the Python
/// and Swift sides cannot drift apart silently.
enum RepoPaths {
    static let golden = "tests/golden"
    static let manifest = "tests/golden/manifest.json"
    static let fixtureCards = "android/core/src/test/resources/cards"
    static let benchSchema = "schemas/bench_result.schema.json"
    static let demoExport = "models/demo/export"

    /// NEOMETER_REPO, else four levels up from this file (ios/Tests/NeometerKitTests/ -> repo).
    static var root: URL {
        if let env = ProcessInfo.processInfo.environment["NEOMETER_REPO"] { return URL(fileURLWithPath: env) }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url
    }

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }
}

/// The parts of tests/golden/manifest.json the Swift tests read.
struct GoldenManifest: Decodable {
    struct Tensor: Decodable {
        let file: String
        let dtype: String
        let shape: [Int]
    }

    struct LetterboxInfo: Decodable {
        let newW: Int, newH: Int, offX: Int, offY: Int
        enum CodingKeys: String, CodingKey {
            case newW = "new_w"
            case newH = "new_h"
            case offX = "off_x"
            case offY = "off_y"
        }
    }

    struct Image: Decodable {
        let name: String
        let channels: Int
        let srcW: Int
        let srcH: Int
        let letterbox: LetterboxInfo
        let sourceRGB: Tensor
        let mask: String?
        let maskLetterboxed: Tensor?
        let letterboxed: Tensor
        let inputNCHW: Tensor
        let outputs: [String: [Double]]

        enum CodingKeys: String, CodingKey {
            case name, channels, letterbox, mask, outputs
            case srcW = "src_w"
            case srcH = "src_h"
            case sourceRGB = "source_rgb_u8"
            case maskLetterboxed = "mask_letterboxed_f32"
            case letterboxed = "letterboxed_u8"
            case inputNCHW = "input_nchw_f32"
        }
    }

    struct GateExpected: Decodable {
        let bodyFraction: Double, borderFraction: Double, uncertainFraction: Double
        let failures: [String]
        enum CodingKeys: String, CodingKey {
            case bodyFraction = "body_fraction"
            case borderFraction = "border_fraction"
            case uncertainFraction = "uncertain_fraction"
            case failures
        }
    }

    struct GateCase: Decodable {
        let name: String
        let mask: Tensor
        let box: [Int]
        let tiltDeg: Double?
        let expected: GateExpected
        enum CodingKeys: String, CodingKey {
            case name, mask, box, expected
            case tiltDeg = "tilt_deg"
        }
    }

    struct AggregationCase: Decodable {
        let name: String
        let predictions: [[Double]]
        let failures: [[String]]
        let expected: Measurement
    }

    struct ArtifactRef: Decodable {
        let card: String
        let path: String
    }

    let schemaVersion: Int
    let preprocessing: PreprocessSpec
    let quality: QualityThresholds
    let images: [Image]
    let gates: [GateCase]
    let aggregation: [AggregationCase]
    let artifacts: [ArtifactRef]

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case preprocessing, quality, images, gates, aggregation, artifacts
    }

    static func load() throws -> GoldenManifest {
        let url = RepoPaths.url(RepoPaths.manifest)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("\(url.path) is missing: run `make golden` first")
        }
        return try JSONDecoder().decode(GoldenManifest.self, from: Data(contentsOf: url))
    }

    static func bytes(_ t: Tensor, dtype: String, itemSize: Int) throws -> Data {
        XCTAssertEqual(t.dtype, dtype, t.file)
        let data = try Data(contentsOf: RepoPaths.url(RepoPaths.golden).appendingPathComponent(t.file))
        XCTAssertEqual(data.count, t.shape.reduce(1, *) * itemSize, "\(t.file) does not match its shape")
        return data
    }

    static func u8(_ t: Tensor) throws -> [UInt8] { [UInt8](try bytes(t, dtype: "uint8", itemSize: 1)) }

    /// Raw little-endian float32 (every Apple platform is little-endian).
    static func f32(_ t: Tensor) throws -> [Float] {
        let data = try bytes(t, dtype: "float32", itemSize: 4)
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.load(fromByteOffset: $0 * 4, as: Float.self) } }
    }
}
