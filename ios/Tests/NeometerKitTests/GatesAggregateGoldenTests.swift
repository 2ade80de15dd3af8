import XCTest
@testable import NeometerKit

final class GatesAggregateGoldenTests: XCTestCase {
    func testGateCases() throws {
        let m = try GoldenManifest.load()
        XCTAssertGreaterThanOrEqual(m.gates.count, 5)
        for c in m.gates {
            let check = Gates.checkFrame(mask: try GoldenManifest.f32(c.mask), size: c.mask.shape[0], box: c.box, tiltDeg: c.tiltDeg, t: m.quality)
            XCTAssertEqual(check.bodyFraction, c.expected.bodyFraction, accuracy: 1e-6, c.name)
            XCTAssertEqual(check.borderFraction, c.expected.borderFraction, accuracy: 1e-6, c.name)
            XCTAssertEqual(check.uncertainFraction, c.expected.uncertainFraction, accuracy: 1e-6, c.name)
            XCTAssertEqual(check.failures, c.expected.failures, c.name)
        }
    }

    func testAggregationCases() throws {
        let m = try GoldenManifest.load()
        for c in m.aggregation {
            let checks = c.failures.map { FrameCheck(bodyFraction: 0.2, borderFraction: 0, uncertainFraction: 0, tiltDeg: nil, failures: $0) }
            let preds = c.predictions.map { ($0[0], Optional($0[1])) }
            let got = Aggregate.aggregate(predictions: preds, checks: checks, t: m.quality)
            XCTAssertEqual(got.framesUsed, c.expected.framesUsed, c.name)
            XCTAssertEqual(got.framesSeen, c.expected.framesSeen, c.name)
            XCTAssertEqual(got.message, c.expected.message, c.name)
            for (a, b) in [(got.heightCm, c.expected.heightCm), (got.weightKg, c.expected.weightKg),
                           (got.heightSpreadCm, c.expected.heightSpreadCm), (got.weightSpreadKg, c.expected.weightSpreadKg)] {
                if let b = b { XCTAssertEqual(try XCTUnwrap(a), b, accuracy: 1e-6, c.name) } else { XCTAssertNil(a, c.name) }
            }
        }
    }

    func testPercentilesAreNumpyLinear() {
        XCTAssertEqual(Aggregate.percentile([4, 1, 3, 2], 25), 1.75, accuracy: 1e-12)
        XCTAssertEqual(Aggregate.percentile([4, 1, 3, 2], 75), 3.25, accuracy: 1e-12)
        XCTAssertEqual(Aggregate.median([4, 1, 3, 2]), 2.5, accuracy: 1e-12)
        XCTAssertEqual(Gates.tiltFromOrientation(betaDeg: 30, gammaDeg: 0), 30, accuracy: 1e-9)
    }
}
