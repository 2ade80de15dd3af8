import CoreML
import XCTest
@testable import NeometerKit

/// `benchmarks.py --device ios` runs these with
/// `xcodebuild test -scheme NeometerKit -only-testing:NeometerKitTests/BenchmarkTests` and
/// reads the result JSON from NEOMETER_BENCH_OUT. The model: NEOMETER_BENCH_MODEL (an artifact
/// path), else the first Core ML artifact in the golden manifest.
final class BenchmarkTests: XCTestCase {
    func modelURL() throws -> URL {
        let env = ProcessInfo.processInfo.environment
        if let path = env["NEOMETER_BENCH_MODEL"] { return URL(fileURLWithPath: path) }
        let m = try GoldenManifest.load()
        guard let ref = m.artifacts.first(where: { $0.card.contains(".mlpackage") || $0.card.contains(".mlmodel") }) else {
            throw XCTSkip("no model: set NEOMETER_BENCH_MODEL or export a Core ML model and run `make golden`")
        }
        return RepoPaths.url(ref.path).deletingPathExtension()
    }

    func testInferenceLatency() throws {
        let env = ProcessInfo.processInfo.environment
        let runs = Int(env["NEOMETER_BENCH_RUNS"] ?? "") ?? 30
        let warmup = 3
        let url = try modelURL()
        let loadStart = Date()
        let model = try loadFrameModel(artifact: url)
        let loadMs = Date().timeIntervalSince(loadStart) * 1000
        let s = model.card.preprocessing.targetSize
        let frame = RGBImage(width: s, height: s, rgb: (0..<(s * s * 3)).map { UInt8(($0 * 37) % 251) })
        for _ in 0..<warmup { _ = try model.run(letterboxed: frame) }
        var times: [Double] = []
        // The measure block gives Xcode's clock and memory metrics; the loop inside gives the
        // per-inference times that go into the shared result JSON.
        let options = XCTMeasureOptions()
        options.iterationCount = 1
        measure(metrics: [XCTClockMetric(), XCTMemoryMetric()], options: options) {
            for _ in 0..<runs {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try? model.run(letterboxed: frame)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
        }
        XCTAssertFalse(times.isEmpty)
        var info = utsname()
        uname(&info)
        let machine = withUnsafeBytes(of: &info.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let device: [String: Any] = [
            "model": machine,
            "os": "\(ProcessInfo.processInfo.operatingSystemVersionString)",
            "cores": ProcessInfo.processInfo.activeProcessorCount,
            "accelerator": model.card.format == "coreml" ? "coreml-all" : "executorch",
        ]
        let doc = BenchResult.document(card: model.card, device: device, runtime: model.card.format == "coreml" ? "coreml" : "executorch",
                                       runtimeVersion: nil, latency: BenchResult.latency(runsMs: times, warmup: warmup, threads: 1, loadMs: loadMs, peakMemoryMB: nil),
                                       notes: ["xcodebuild BenchmarkTests", "MLComputeUnits.all: Core ML picks CPU, GPU or Neural Engine"])
        let out = env["NEOMETER_BENCH_OUT"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("neometer_bench_result.json")
        try BenchResult.write(doc, to: out)
        let back = try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as? [String: Any]
        XCTAssertEqual((back?["device"] as? [String: Any])?["kind"] as? String, "ios")
    }

    func testPreprocessingThroughput() throws {
        let m = try GoldenManifest.load()
        let e = m.images[0]
        let src = RGBImage(width: e.sourceRGB.shape[1], height: e.sourceRGB.shape[0], rgb: try GoldenManifest.u8(e.sourceRGB))
        measure(metrics: [XCTClockMetric(), XCTMemoryMetric()]) {
            _ = Preprocess.normalize(Preprocess.letterbox(src, spec: m.preprocessing), spec: m.preprocessing, layout: "NCHW")
        }
    }
}
