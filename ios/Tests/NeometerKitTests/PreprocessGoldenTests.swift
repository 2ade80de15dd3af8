import ImageIO
import XCTest
@testable import NeometerKit

/// The Swift preprocessing reproduces Python's golden tensors (the same checks as the Java core).
final class PreprocessGoldenTests: XCTestCase {
    func source(_ e: GoldenManifest.Image) throws -> RGBImage {
        RGBImage(width: e.sourceRGB.shape[1], height: e.sourceRGB.shape[0], rgb: try GoldenManifest.u8(e.sourceRGB))
    }

    /// Source masks are 8-bit grey PNGs; decode them as raw grey bytes (no colour management).
    func sourceMask(_ e: GoldenManifest.Image) throws -> [Float]? {
        guard let path = e.mask else { return nil }
        let url = RepoPaths.url(RepoPaths.golden).appendingPathComponent(path)
        guard let src = CGImageSourceCreateWithURL(url as CFURL, nil),
              let img = CGImageSourceCreateImageAtIndex(src, 0, nil),
              let data = img.dataProvider?.data as Data? else { throw NeometerError("cannot decode \(path)") }
        XCTAssertEqual(img.bitsPerPixel, 8, "\(path) is 8-bit grey")
        let row = img.bytesPerRow
        var out = [Float](repeating: 0, count: img.width * img.height)
        for y in 0..<img.height { for x in 0..<img.width { out[y * img.width + x] = Float(data[y * row + x]) / 255 } }
        return out
    }

    func testLetterboxGeometry() throws {
        let m = try GoldenManifest.load()
        for e in m.images {
            let g = Letterbox(srcW: e.srcW, srcH: e.srcH, size: m.preprocessing.targetSize)
            XCTAssertEqual([g.newW, g.newH, g.offX, g.offY], [e.letterbox.newW, e.letterbox.newH, e.letterbox.offX, e.letterbox.offY], e.name)
        }
    }

    func testLetterboxedMask() throws {
        let m = try GoldenManifest.load()
        for e in m.images {
            guard let mask = try sourceMask(e), let t = e.maskLetterboxed else { continue }
            let expected = try GoldenManifest.f32(t)
            let actual = Preprocess.letterboxMask(mask, width: e.srcW, height: e.srcH, spec: m.preprocessing)
            let worst = zip(expected, actual).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1e-5, e.name)
        }
    }

    func testLetterboxedBytesWithinOneGreyLevel() throws {
        let m = try GoldenManifest.load()
        let thr = Float(m.preprocessing.maskThreshold)
        for e in m.images {
            let expected = try GoldenManifest.u8(e.letterboxed)
            let goldenMask = try e.maskLetterboxed.map(GoldenManifest.f32)
            let actual = Preprocess.preprocessU8(try source(e), mask: try sourceMask(e), spec: m.preprocessing)
            var worst = 0
            for i in 0..<expected.count {
                if let gm = goldenMask, abs(gm[i / 3] - thr) < 1e-5 { continue }  // either side of the threshold
                worst = max(worst, abs(Int(expected[i]) - Int(actual.rgb[i])))
            }
            XCTAssertLessThanOrEqual(worst, 1, e.name)
        }
    }

    func testModelInput() throws {
        let m = try GoldenManifest.load()
        let spec = m.preprocessing
        let tol = 1 / 255 / Float(spec.std.min()!) + 1e-4
        for e in m.images {
            let expected = try GoldenManifest.f32(e.inputNCHW)
            let goldenBytes = RGBImage(width: spec.targetSize, height: spec.targetSize, rgb: try GoldenManifest.u8(e.letterboxed))
            XCTAssertEqual(Preprocess.normalize(goldenBytes, spec: spec, layout: "NCHW"), expected, "\(e.name): normalize is exact")
            let actual = Preprocess.normalize(Preprocess.preprocessU8(try source(e), mask: try sourceMask(e), spec: spec), spec: spec, layout: "NCHW")
            let goldenMask = try e.maskLetterboxed.map(GoldenManifest.f32)
            let hw = spec.targetSize * spec.targetSize
            for i in 0..<expected.count {
                if let gm = goldenMask, abs(gm[i % hw] - Float(spec.maskThreshold)) < 1e-5 { continue }
                if abs(expected[i] - actual[i]) > tol { XCTFail("\(e.name): input[\(i)] = \(actual[i]), Python \(expected[i])"); break }
            }
        }
    }

    func testRGBACompositeAndGray() throws {
        let m = try GoldenManifest.load()
        let gray = try XCTUnwrap(m.images.first { $0.channels == 1 })
        let src = try source(gray)
        let g = (0..<(src.width * src.height)).map { src.rgb[$0 * 3] }
        XCTAssertEqual(RGBImage.fromGray(g, width: src.width, height: src.height), src)
        let opaque = RGBImage.fromRGBA([10, 20, 30, 255, 10, 20, 30, 0], width: 2, height: 1, padValue: 0)
        XCTAssertEqual(opaque.rgb, [10, 20, 30, 0, 0, 0])
    }
}
