import Foundation
#if canImport(CoreML)
import CoreML
#endif
#if canImport(ExecuTorch)
import ExecuTorch
#endif

/// A model that takes one letterboxed frame and returns its raw output tensor, flattened.
/// Backends choose by the card: Core ML image inputs take the bytes, tensor inputs the
/// normalised floats in the card's layout.
public protocol FrameModel {
    var card: ModelCard { get }
    func run(letterboxed: RGBImage) throws -> [Float]
}

/// The model file next to its card; `format` picks the backend (coreml or executorch).
public func loadFrameModel(artifact: URL) throws -> FrameModel {
    let card = try ModelCard.load(from: ModelCard.cardURL(for: artifact))
    switch card.format {
    #if canImport(CoreML)
    case "coreml":
        return try CoreMLModel(url: artifact, card: card)
    #endif
    #if canImport(ExecuTorch)
    case "executorch":
        return try ExecuTorchModel(url: artifact, card: card)
    #endif
    default:
        throw NeometerError("\(artifact.lastPathComponent): format \(card.format) has no iOS backend in this build; export Core ML (or link ExecuTorch)")
    }
}

#if canImport(CoreML)
/// Core ML wrapper driven by the card: input and output names, layout, image or tensor input.
public final class CoreMLModel: FrameModel {
    public let card: ModelCard
    public let model: MLModel
    private let outputName: String

    public init(url: URL, card: ModelCard, computeUnits: MLComputeUnits = .all) throws {
        self.card = card
        let config = MLModelConfiguration()
        config.computeUnits = computeUnits
        // .mlpackage / .mlmodel are compiled on first use; an app bundle usually ships .mlmodelc.
        let compiled = url.pathExtension == "mlmodelc" ? url : try MLModel.compileModel(at: url)
        model = try MLModel(contentsOf: compiled, configuration: config)
        let outputs = model.modelDescription.outputDescriptionsByName
        if let name = card.outputTensor?.name ?? card.outputs.first?.tensor, outputs[name] != nil {
            outputName = name
        } else if outputs.count == 1, let only = outputs.keys.first {
            outputName = only
        } else {
            throw NeometerError("\(card.artifact.file): cannot tell which output holds \(card.outputs.map(\.name)); set output_tensor.name in the card")
        }
        guard model.modelDescription.inputDescriptionsByName[card.input.name] != nil else {
            throw NeometerError("\(card.artifact.file): the model has no input named \(card.input.name); the card does not match the model")
        }
    }

    public func run(letterboxed: RGBImage) throws -> [Float] {
        let value: MLFeatureValue
        if card.input.kind == "image" {
            value = MLFeatureValue(pixelBuffer: try Self.pixelBuffer(letterboxed))
        } else {
            let x = Preprocess.normalize(letterboxed, spec: card.preprocessing, layout: card.input.layout)
            let array = try MLMultiArray(shape: card.input.shape.map { NSNumber(value: $0) }, dataType: .float32)
            let ptr = array.dataPointer.bindMemory(to: Float.self, capacity: x.count)
            for i in 0..<x.count { ptr[i] = x[i] }
            value = MLFeatureValue(multiArray: array)
        }
        let provider = try MLDictionaryFeatureProvider(dictionary: [card.input.name: value])
        let result = try model.prediction(from: provider)
        guard let out = result.featureValue(for: outputName)?.multiArrayValue else {
            throw NeometerError("\(card.artifact.file): output \(outputName) is not a tensor")
        }
        // NSNumber subscripting reads float16, float32 and double arrays alike.
        return (0..<out.count).map { out[$0].floatValue }
    }

    /// Letterboxed RGB -> a 32BGRA pixel buffer for an ImageType input (scale and bias in the model).
    static func pixelBuffer(_ img: RGBImage) throws -> CVPixelBuffer {
        var buffer: CVPixelBuffer?
        let attrs = [kCVPixelBufferCGImageCompatibilityKey: true, kCVPixelBufferCGBitmapContextCompatibilityKey: true] as CFDictionary
        guard CVPixelBufferCreate(kCFAllocatorDefault, img.width, img.height, kCVPixelFormatType_32BGRA, attrs, &buffer) == kCVReturnSuccess,
              let pb = buffer else { throw NeometerError("cannot allocate a pixel buffer") }
        CVPixelBufferLockBaseAddress(pb, [])
        defer { CVPixelBufferUnlockBaseAddress(pb, []) }
        let row = CVPixelBufferGetBytesPerRow(pb)
        let dst = CVPixelBufferGetBaseAddress(pb)!.assumingMemoryBound(to: UInt8.self)
        for y in 0..<img.height {
            for x in 0..<img.width {
                let s = (y * img.width + x) * 3, d = y * row + x * 4
                dst[d] = img.rgb[s + 2]; dst[d + 1] = img.rgb[s + 1]; dst[d + 2] = img.rgb[s]; dst[d + 3] = 255
            }
        }
        return pb
    }
}
#endif

#if canImport(ExecuTorch)
/// ExecuTorch (.pte, XNNPACK or Core ML delegate inside) as the second backend.
public final class ExecuTorchModel: FrameModel {
    public let card: ModelCard
    private let module: Module

    public init(url: URL, card: ModelCard) throws {
        self.card = card
        module = Module(filePath: url.path)
        try module.load("forward")
    }

    public func run(letterboxed: RGBImage) throws -> [Float] {
        let x = Preprocess.normalize(letterboxed, spec: card.preprocessing, layout: card.input.layout)
        let input = Tensor<Float>(x, shape: card.input.shape)
        guard let out: Tensor<Float> = try module.forward(input).first?.tensor() else {
            throw NeometerError("\(card.artifact.file): forward returned no tensor")
        }
        return out.scalars()
    }
}
#endif
