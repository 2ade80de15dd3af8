// swift-tools-version:5.9
// NeometerKit: the iOS side of neometer (preprocessing, Core ML wrapper, quality gates,
// aggregation, history, result JSON). The SwiftUI app in App/ links it (see README.md).
import PackageDescription

let package = Package(
    name: "NeometerKit",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "NeometerKit", targets: ["NeometerKit"]),
    ],
    targets: [
        // ExecuTorch is an optional second backend: ExecuTorchRegressor compiles only when the
        // ExecuTorch package (https://github.com/pytorch/executorch, branch swiftpm-1.5.1) is
        // linked, e.g. by the app project; the package itself needs no network to build.
        .target(name: "NeometerKit", path: "Sources/NeometerKit"),
        // The tests read tests/golden/ and the fixture model cards from the repository by path
        // (see GoldenSupport.swift), so Python, Java and Swift test the same files.
        .testTarget(name: "NeometerKitTests", dependencies: ["NeometerKit"], path: "Tests/NeometerKitTests"),
    ]
)
