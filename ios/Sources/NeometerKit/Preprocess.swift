import Foundation
#if canImport(CoreGraphics)
import CoreGraphics
#endif
#if canImport(CoreVideo)
import CoreVideo
#endif

/// 8-bit RGB pixels, rows top to bottom, interleaved R, G, B (as numpy HxWx3 uint8).
public struct RGBImage: Equatable {
    public let width: Int
    public let height: Int
    public var rgb: [UInt8]

    public init(width: Int, height: Int, rgb: [UInt8]) {
        precondition(width > 0 && height > 0 && rgb.count == width * height * 3, "RGB buffer does not match \(width)x\(height)")
        self.width = width
        self.height = height
        self.rgb = rgb
    }

    /// Grey bytes replicated into R, G and B.
    public static func fromGray(_ gray: [UInt8], width: Int, height: Int) -> RGBImage {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            out[i * 3] = gray[i]; out[i * 3 + 1] = gray[i]; out[i * 3 + 2] = gray[i]
        }
        return RGBImage(width: width, height: height, rgb: out)
    }

    /// Non-premultiplied RGBA bytes; alpha composited onto the pad value in float32 as Python does.
    public static func fromRGBA(_ rgba: [UInt8], width: Int, height: Int, padValue: Int) -> RGBImage {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let pad = Float(padValue)
        for i in 0..<(width * height) {
            let a = rgba[i * 4 + 3]
            for c in 0..<3 {
                let v = rgba[i * 4 + c]
                if a == 255 {
                    out[i * 3 + c] = v
                } else {
                    let alpha = Float(a) / 255
                    out[i * 3 + c] = Preprocess.roundByte(Double(Float(v) * alpha + pad * (1 - alpha)))
                }
            }
        }
        return RGBImage(width: width, height: height, rgb: out)
    }

    #if canImport(CoreVideo)
    /// A camera frame (kCVPixelFormatType_32BGRA, as AVCaptureVideoDataOutput is configured) -> RGB.
    public static func fromPixelBuffer(_ buffer: CVPixelBuffer) throws -> RGBImage {
        guard CVPixelBufferGetPixelFormatType(buffer) == kCVPixelFormatType_32BGRA else {
            throw NeometerError("camera frames must be 32BGRA; set videoSettings on AVCaptureVideoDataOutput")
        }
        CVPixelBufferLockBaseAddress(buffer, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(buffer, .readOnly) }
        let w = CVPixelBufferGetWidth(buffer), h = CVPixelBufferGetHeight(buffer)
        let rowBytes = CVPixelBufferGetBytesPerRow(buffer)
        guard let base = CVPixelBufferGetBaseAddress(buffer) else { throw NeometerError("empty camera frame") }
        let src = base.assumingMemoryBound(to: UInt8.self)
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let p = src + y * rowBytes + x * 4
                out[(y * w + x) * 3] = p[2]; out[(y * w + x) * 3 + 1] = p[1]; out[(y * w + x) * 3 + 2] = p[0]
            }
        }
        return RGBImage(width: w, height: h, rgb: out)
    }
    #endif

    #if canImport(CoreGraphics)
    /// A photo -> RGB. Core Graphics draws into premultiplied RGBA, i.e. alpha composited onto
    /// black; un-premultiply and composite onto the pad value so a transparent pixel is background.
    public static func fromCGImage(_ image: CGImage, padValue: Int) throws -> RGBImage {
        let w = image.width, h = image.height
        var rgba = [UInt8](repeating: 0, count: w * h * 4)
        let drawn: Bool = rgba.withUnsafeMutableBytes { buf in
            guard let space = CGColorSpace(name: CGColorSpace.sRGB),
                  let ctx = CGContext(data: buf.baseAddress, width: w, height: h, bitsPerComponent: 8, bytesPerRow: w * 4,
                                      space: space, bitmapInfo: CGImageAlphaInfo.premultipliedLast.rawValue) else { return false }
            ctx.draw(image, in: CGRect(x: 0, y: 0, width: w, height: h))
            return true
        }
        guard drawn else { throw NeometerError("cannot draw the image; re-export it as PNG or JPEG") }
        var out = [UInt8](repeating: 0, count: w * h * 3)
        let pad = Double(padValue)
        for i in 0..<(w * h) {
            let a = Double(rgba[i * 4 + 3]) / 255
            for c in 0..<3 { out[i * 3 + c] = Preprocess.roundByte(Double(rgba[i * 4 + c]) + pad * (1 - a)) }
        }
        return RGBImage(width: w, height: h, rgb: out)
    }
    #endif
}

/// Where the source landed inside the square (neometer.data.preprocess.Letterbox).
public struct Letterbox: Equatable {
    public let newW: Int, newH: Int, offX: Int, offY: Int

    public init(srcW: Int, srcH: Int, size: Int) {
        let scale = Double(size) / Double(max(srcW, srcH))
        newW = max(1, min(size, Int((Double(srcW) * scale + 0.5).rounded(.down))))
        newH = max(1, min(size, Int((Double(srcH) * scale + 0.5).rounded(.down))))
        offX = (size - newW) / 2
        offY = (size - newH) / 2
    }

    /// x0, y0, x1, y1 (exclusive) of the image content.
    public var contentBox: [Int] { [offX, offY, offX + newW, offY + newH] }
}

/// neometer/data/preprocess.py in Swift, shaped like the Java core (org.neometer.core.Preprocess).
public enum Preprocess {
    static func roundByte(_ v: Double) -> UInt8 {
        let r = (v + 0.5).rounded(.down)
        return UInt8(max(0, min(255, r)))
    }

    /// Output pixel i covers source pixels first[i]..., weights normalised to 1, in double
    /// precision as Python's area_resize_axis.
    struct AreaWeights {
        var first: [Int] = []
        var w: [[Double]] = []

        init(src: Int, dst: Int) {
            let ratio = Double(src) / Double(dst)
            for i in 0..<dst {
                let lo = Double(i) * ratio, hi = Double(i + 1) * ratio
                let p0 = max(0, Int(lo.rounded(.down))), p1 = min(src - 1, Int(hi.rounded(.up)) - 1)
                var overlap: [Double] = []
                for p in p0...max(p0, p1) { overlap.append(max(0, min(hi, Double(p + 1)) - max(lo, Double(p)))) }
                let sum = overlap.reduce(0, +)
                first.append(p0)
                w.append(overlap.map { $0 / sum })
            }
        }
    }

    /// Separable area resize: x pass, round half up, y pass, round half up.
    public static func resizeArea(_ img: RGBImage, newW: Int, newH: Int) -> RGBImage {
        if img.width == newW && img.height == newH { return img }
        let wx = AreaWeights(src: img.width, dst: newW), wy = AreaWeights(src: img.height, dst: newH)
        var mid = [UInt8](repeating: 0, count: img.height * newW * 3)
        for y in 0..<img.height {
            for x in 0..<newW {
                for c in 0..<3 {
                    var acc = 0.0
                    for (k, w) in wx.w[x].enumerated() { acc += w * Double(img.rgb[(y * img.width + wx.first[x] + k) * 3 + c]) }
                    mid[(y * newW + x) * 3 + c] = roundByte(acc)
                }
            }
        }
        var out = [UInt8](repeating: 0, count: newH * newW * 3)
        for y in 0..<newH {
            for x in 0..<newW {
                for c in 0..<3 {
                    var acc = 0.0
                    for (k, w) in wy.w[y].enumerated() { acc += w * Double(mid[((wy.first[y] + k) * newW + x) * 3 + c]) }
                    out[(y * newW + x) * 3 + c] = roundByte(acc)
                }
            }
        }
        return RGBImage(width: newW, height: newH, rgb: out)
    }

    /// Long side scaled to target_size, short side padded with pad_value, content centred.
    public static func letterbox(_ img: RGBImage, spec: PreprocessSpec) -> RGBImage {
        let s = spec.targetSize
        let geo = Letterbox(srcW: img.width, srcH: img.height, size: s)
        let resized = resizeArea(img, newW: geo.newW, newH: geo.newH)
        var out = [UInt8](repeating: UInt8(spec.padValue), count: s * s * 3)
        for y in 0..<geo.newH {
            let dst = ((y + geo.offY) * s + geo.offX) * 3
            out.replaceSubrange(dst..<(dst + geo.newW * 3), with: resized.rgb[(y * geo.newW * 3)..<((y + 1) * geo.newW * 3)])
        }
        return RGBImage(width: s, height: s, rgb: out)
    }

    /// Source mask in [0, 1] -> target x target coverage with the same weights, no rounding.
    public static func letterboxMask(_ mask: [Float], width: Int, height: Int, spec: PreprocessSpec) -> [Float] {
        let s = spec.targetSize
        let geo = Letterbox(srcW: width, srcH: height, size: s)
        let wx = AreaWeights(src: width, dst: geo.newW), wy = AreaWeights(src: height, dst: geo.newH)
        var mid = [Double](repeating: 0, count: height * geo.newW)
        for y in 0..<height {
            for x in 0..<geo.newW {
                var acc = 0.0
                for (k, w) in wx.w[x].enumerated() { acc += w * Double(mask[y * width + wx.first[x] + k]) }
                mid[y * geo.newW + x] = acc
            }
        }
        var out = [Float](repeating: 0, count: s * s)
        for y in 0..<geo.newH {
            for x in 0..<geo.newW {
                var acc = 0.0
                for (k, w) in wy.w[y].enumerated() { acc += w * mid[(wy.first[y] + k) * geo.newW + x] }
                out[(y + geo.offY) * s + x + geo.offX] = Float(acc)
            }
        }
        return out
    }

    /// Background removal: pixels whose mask value is below the threshold become pad_value.
    public static func applyMask(_ img: RGBImage, mask: [Float], spec: PreprocessSpec) -> RGBImage {
        var out = img
        let thr = Float(spec.maskThreshold)
        for i in 0..<mask.count where mask[i] < thr {
            out.rgb[i * 3] = UInt8(spec.padValue); out.rgb[i * 3 + 1] = UInt8(spec.padValue); out.rgb[i * 3 + 2] = UInt8(spec.padValue)
        }
        return out
    }

    /// Source image (+ optional source mask in [0, 1]) -> letterboxed, background removed bytes.
    public static func preprocessU8(_ img: RGBImage, mask: [Float]?, spec: PreprocessSpec) -> RGBImage {
        let boxed = letterbox(img, spec: spec)
        guard let mask = mask, spec.backgroundRemoval == "mask" else { return boxed }
        return applyMask(boxed, mask: letterboxMask(mask, width: img.width, height: img.height, spec: spec), spec: spec)
    }

    /// (x * scale - mean) / std in float32, in the card's layout and channel order.
    public static func normalize(_ u8: RGBImage, spec: PreprocessSpec, layout: String) -> [Float] {
        let hw = u8.width * u8.height
        let nchw = layout == "NCHW", bgr = spec.channelOrder == "BGR"
        let scale = spec.scale32, mean = spec.mean32, std = spec.std32
        var out = [Float](repeating: 0, count: hw * 3)
        for i in 0..<hw {
            for c in 0..<3 {
                let x = Float(u8.rgb[i * 3 + (bgr ? 2 - c : c)]) * scale
                out[nchw ? c * hw + i : i * 3 + c] = (x - mean[c]) / std[c]
            }
        }
        return out
    }
}
