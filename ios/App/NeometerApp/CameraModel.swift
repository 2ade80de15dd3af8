import AVFoundation
import CoreMotion
import Foundation
import NeometerKit

/// AVFoundation capture + Core Motion tilt + NeometerKit session: the same flow as the web and
/// Android apps (frames over a few seconds, gates with messages, median, local history).
final class CameraModel: NSObject, ObservableObject, AVCaptureVideoDataOutputSampleBufferDelegate {
    @Published var status: String?
    @Published var result: Measurement?
    @Published var measuring = false
    @Published var history: [History.Entry] = []

    let captureSession = AVCaptureSession()
    private let queue = DispatchQueue(label: "neometer.frames")
    private let motion = CMMotionManager()
    private var regressor: FrameModel?
    private var segmenter: FrameModel?
    private var session: MeasureSession?
    private var endsAt = Date.distantPast
    private var lastFrame = Date.distantPast
    private let store: History

    /// A few seconds of frames, a few per second.
    static let measureSeconds = 3.0
    static let frameInterval = 0.25

    override init() {
        let support = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        store = History(url: support.appendingPathComponent("history.json"))
        super.init()
        do {
            history = try store.entries()
            let reg = try loadFrameModel(artifact: try Self.bundledRegressor())
            regressor = reg
            if let segName = reg.card.pipeline?.segmenter, let url = Bundle.main.url(forResource: segName, withExtension: nil, subdirectory: "export") {
                segmenter = try loadFrameModel(artifact: url)
            }
        } catch {
            status = error.localizedDescription
        }
        motion.deviceMotionUpdateInterval = 0.1
        motion.startDeviceMotionUpdates()
        configureCamera()
    }

    /// The first regressor card in the bundle's export folder whose format runs here.
    static func bundledRegressor() throws -> URL {
        let urls = Bundle.main.urls(forResourcesWithExtension: "json", subdirectory: "export") ?? []
        for cardURL in urls.sorted(by: { $0.lastPathComponent < $1.lastPathComponent }) {
            guard let card = try? ModelCard.load(from: cardURL), card.role == "regressor", card.format == "coreml" || card.format == "executorch" else { continue }
            return cardURL.deletingPathExtension()
        }
        throw NeometerError("no Core ML or ExecuTorch regressor in the app: run `neometer export`, then rebuild")
    }

    private func configureCamera() {
        captureSession.sessionPreset = .hd1280x720
        guard let device = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back),
              let input = try? AVCaptureDeviceInput(device: device), captureSession.canAddInput(input) else {
            status = "No camera"
            return
        }
        captureSession.addInput(input)
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA]
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: queue)
        if captureSession.canAddOutput(output) { captureSession.addOutput(output) }
        // Portrait frames, as the phone is held over the bed.
        if let connection = output.connection(with: .video), connection.isVideoOrientationSupported {
            connection.videoOrientation = .portrait
        }
        queue.async { self.captureSession.startRunning() }
    }

    func start() {
        guard let reg = regressor else { return }
        do {
            session = try MeasureSession(regressor: reg, segmenter: segmenter, fallbackThresholds: nil)
            endsAt = Date().addingTimeInterval(Self.measureSeconds)
            result = nil
            measuring = true
        } catch {
            status = error.localizedDescription
        }
    }

    /// Pitch and roll from Core Motion -> tilt from straight down (nil without motion data).
    private var tiltDeg: Double? {
        guard let attitude = motion.deviceMotion?.attitude else { return nil }
        return Gates.tiltFromOrientation(betaDeg: attitude.pitch * 180 / .pi, gammaDeg: attitude.roll * 180 / .pi)
    }

    func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard let s = session, Date().timeIntervalSince(lastFrame) >= Self.frameInterval,
              let pixels = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        lastFrame = Date()
        do {
            let check = try s.addFrame(try RGBImage.fromPixelBuffer(pixels), tiltDeg: tiltDeg)
            let text = check.failures.first.map(Self.message) ?? NSLocalizedString("frame_ok", comment: "")
            DispatchQueue.main.async { self.status = text }
        } catch {
            DispatchQueue.main.async { self.status = error.localizedDescription }
        }
        if Date() >= endsAt { finish(s) }
    }

    private func finish(_ s: MeasureSession) {
        session = nil
        let m = s.finish()
        let model = regressor?.card.artifact.file ?? ""
        let saved = Result { try store.add(m, model: model, label: nil) }
        DispatchQueue.main.async {
            self.result = m
            self.measuring = false
            self.status = m.message.map(Self.message)
            if case .failure(let error) = saved { self.status = error.localizedDescription }
            self.history = (try? self.store.entries()) ?? self.history
        }
    }

    static func message(_ key: String) -> String {
        NSLocalizedString("msg.\(key)", comment: "quality gate message")
    }
}
