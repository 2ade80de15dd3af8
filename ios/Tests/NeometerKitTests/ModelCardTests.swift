import XCTest
@testable import NeometerKit

final class ModelCardTests: XCTestCase {
    func cardURLs() throws -> [URL] {
        var urls = try FileManager.default.contentsOfDirectory(at: RepoPaths.url(RepoPaths.fixtureCards), includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
        let export = RepoPaths.url(RepoPaths.demoExport)
        if let exported = try? FileManager.default.contentsOfDirectory(at: export, includingPropertiesForKeys: nil) {
            urls += exported.filter { $0.pathExtension == "json" && !$0.deletingPathExtension().pathExtension.isEmpty }
        }
        return urls
    }

    func testEveryCardParses() throws {
        let urls = try cardURLs()
        XCTAssertGreaterThanOrEqual(urls.count, 5)
        var formats = Set<String>()
        for url in urls {
            let card = try ModelCard.load(from: url)
            XCTAssertEqual(card.artifact.file + ".json", url.lastPathComponent)
            formats.insert(card.format)
        }
        XCTAssertTrue(formats.isSuperset(of: ["tflite", "executorch", "coreml"]))
    }

    func testQuantizedOutputs() throws {
        let card = try ModelCard.load(from: RepoPaths.url(RepoPaths.fixtureCards).appendingPathComponent("regressor_int8.tflite.json"))
        let (h, w) = try card.heightWeight([72, 37])
        XCTAssertEqual(h, 50, accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(w), 3.3, accuracy: 1e-9)
        XCTAssertThrowsError(try card.heightWeight([72]))
    }

    func testBrokenCardListsProblems() throws {
        let url = RepoPaths.url(RepoPaths.fixtureCards).appendingPathComponent("regressor_fp32.pte.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        var pre = json["preprocessing"] as! [String: Any]
        pre["resize"] = "bilinear"
        json["preprocessing"] = pre
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("regressor_fp32.pte.json")
        try JSONSerialization.data(withJSONObject: json).write(to: tmp)
        XCTAssertThrowsError(try ModelCard.load(from: tmp)) { error in
            XCTAssertTrue((error as? NeometerError)?.problems.contains { $0.hasPrefix("preprocessing.resize") } ?? false)
        }
    }
}
