import AVFoundation
import NeometerKit
import SwiftUI

struct CameraPreview: UIViewRepresentable {
    let session: AVCaptureSession

    final class PreviewView: UIView {
        override class var layerClass: AnyClass { AVCaptureVideoPreviewLayer.self }
        var previewLayer: AVCaptureVideoPreviewLayer { layer as! AVCaptureVideoPreviewLayer }
    }

    func makeUIView(context: Context) -> PreviewView {
        let view = PreviewView()
        view.previewLayer.session = session
        view.previewLayer.videoGravity = .resizeAspect
        return view
    }

    func updateUIView(_ uiView: PreviewView, context: Context) {}
}

struct ContentView: View {
    @StateObject private var camera = CameraModel()

    var body: some View {
        VStack(spacing: 12) {
            CameraPreview(session: camera.captureSession).frame(height: 360)
            Button(LocalizedStringKey(camera.measuring ? "measuring" : "measure")) { camera.start() }
                .buttonStyle(.borderedProminent)
                .disabled(camera.measuring)
            if let status = camera.status { Text(status).foregroundColor(.red) }
            if let m = camera.result, let h = m.heightCm {
                Text(String(format: "%.1f cm ± %.1f", h, m.heightSpreadCm ?? 0)).font(.title2)
                if let w = m.weightKg { Text(String(format: "%.2f kg ± %.2f", w, m.weightSpreadKg ?? 0)).font(.title2) }
                Text("\(m.framesUsed) / \(m.framesSeen)")
            }
            List {
                Section(header: Text(LocalizedStringKey("history"))) {
                    ForEach(Array(camera.history.reversed().enumerated()), id: \.offset) { _, e in
                        Text(e.time + "  " + (e.measurement.heightCm.map { String(format: "%.1f cm", $0) } ?? CameraModel.message(e.measurement.message ?? "too_few_good_frames")))
                    }
                }
            }
        }
        .padding()
    }
}
