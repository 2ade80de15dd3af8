import CoreML
import XCTest
@testable import NeometerKit

/// Core ML numeric parity: each Core ML artifact the golden manifest lists, run on the golden
/// inputs, against the outputs Python's Core ML runner wrote (and the card's tolerance rule:
/// fp32 within 1e-3 cm/kg, fp16 within 0.05 cm and 0.005 kg).
final class CoreMLParityTests: XCTestCase {
    func testCoreMLOutputsMatchPython() throws {
        let m = try GoldenManifest.load()
        let coreml = m.artifacts.filter { $0.card.contains(".mlpackage") || $0.card.contains(".mlmodel") }
        if coreml.isEmpty { throw XCTSkip("no Core ML artifact in the golden manifest: run `neometer export` then `make golden`") }
        for ref in coreml {
            let cardURL = RepoPaths.url(ref.path)
            let artifact = cardURL.deletingPathExtension()
            let model = try CoreMLModel(url: artifact, card: try ModelCard.load(from: cardURL), computeUnits: .cpuOnly)
            let tol: [Double] = model.card.precision == "fp32" ? [1e-3, 1e-3] : [0.05, 0.005]
            for e in m.images {
                guard let expected = e.outputs[ref.card] else { continue }
                let bytes = RGBImage(width: m.preprocessing.targetSize, height: m.preprocessing.targetSize, rgb: try GoldenManifest.u8(e.letterboxed))
                let raw = try model.run(letterboxed: bytes)
                for (i, exp) in expected.enumerated() {
                    XCTAssertEqual(Double(raw[i]), exp, accuracy: tol[min(i, 1)], "\(ref.card) on \(e.name), output \(i)")
                }
            }
        }
    }
}
