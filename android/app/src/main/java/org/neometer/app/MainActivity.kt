package org.neometer.app

import android.Manifest
import android.content.pm.PackageManager
import android.os.Bundle
import android.os.SystemClock
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.result.contract.ActivityResultContracts
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.mutableStateOf
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.compose.ui.viewinterop.AndroidView
import androidx.core.content.ContextCompat
import org.neometer.core.FrameCheck
import org.neometer.core.History
import org.neometer.core.MeasureSession
import org.neometer.core.Measurement
import org.neometer.core.ModelCard
import java.io.File
import java.time.Instant
import java.util.concurrent.Executors

/**
 * Point the phone down at the infant, press Measure: frames are analysed for a few seconds
 * (the same flow as the web and iOS apps), each frame's gate message is shown live, and the
 * median height and weight with their spread go into the local history.
 */
class MainActivity : ComponentActivity() {
    private val analysisExecutor = Executors.newSingleThreadExecutor()
    private lateinit var tilt: TiltSensor
    private var regressor: FrameModel? = null
    private var segmenter: FrameModel? = null
    private lateinit var history: History

    private val status = mutableStateOf<String?>(null)
    private val result = mutableStateOf<Measurement?>(null)
    private val entries = mutableStateOf<List<Map<String, Any?>>>(emptyList())
    private val measuring = mutableStateOf(false)
    private var session: MeasureSession? = null
    private var sessionEndsAt = 0L
    private var lastFrameAt = 0L

    private val askCamera = registerForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        if (!granted) status.value = getString(R.string.camera_permission_needed)
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        tilt = TiltSensor(this)
        history = History(File(filesDir, "history.json").toPath())
        runCatching { entries.value = history.entries() }.onFailure { status.value = it.message }
        runCatching {
            val reg = loadFrameModel(BundledModels.regressorFile(this), threads = 4, useGpu = false)
            regressor = reg
            segmenter = BundledModels.segmenterFile(this, reg.card)?.let { loadFrameModel(it, threads = 4, useGpu = false) }
        }.onFailure { status.value = it.message }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) != PackageManager.PERMISSION_GRANTED) {
            askCamera.launch(Manifest.permission.CAMERA)
        }
        setContent { MaterialTheme { Screen() } }
    }

    override fun onResume() {
        super.onResume()
        tilt.start()
    }

    override fun onPause() {
        tilt.stop()
        super.onPause()
    }

    override fun onDestroy() {
        analysisExecutor.shutdown()
        regressor?.close()
        segmenter?.close()
        super.onDestroy()
    }

    private fun startMeasuring() {
        val reg = regressor ?: return
        session = MeasureSession(reg.card, reg.asRegressor(), segmenter?.card, segmenter?.asSegmenter(), null)
        sessionEndsAt = SystemClock.elapsedRealtime() + MEASURE_MILLIS
        result.value = null
        measuring.value = true
    }

    /** Runs on the analysis thread for every camera frame; samples a few per second while measuring. */
    private fun onFrame(image: androidx.camera.core.ImageProxy) {
        image.use {
            val s = session ?: return
            val now = SystemClock.elapsedRealtime()
            if (now - lastFrameAt < FRAME_INTERVAL_MILLIS) return
            lastFrameAt = now
            val card: ModelCard = regressor!!.card
            val check: FrameCheck = try {
                s.addFrame(it.toRgbImage(card.preprocessing.padValue), null, tilt.tiltDeg)
            } catch (e: RuntimeException) {
                runOnUiThread { status.value = e.message }
                return
            }
            runOnUiThread { status.value = check.failures.firstOrNull()?.let(::messageFor) ?: getString(R.string.frame_ok) }
            if (now >= sessionEndsAt) finishMeasuring(s, card)
        }
    }

    private fun finishMeasuring(s: MeasureSession, card: ModelCard) {
        session = null
        val m = s.finish()
        runCatching { history.add(m, Instant.now().toString(), card.artifactFile, null) }
            .onFailure { runOnUiThread { status.value = it.message } }
        runOnUiThread {
            result.value = m
            measuring.value = false
            status.value = m.message?.let(::messageFor)
            runCatching { entries.value = history.entries() }
        }
    }

    private fun messageFor(key: String): String = when (key) {
        "no_body" -> getString(R.string.msg_no_body)
        "body_out_of_frame" -> getString(R.string.msg_body_out_of_frame)
        "camera_tilted" -> getString(R.string.msg_camera_tilted)
        "mask_uncertain" -> getString(R.string.msg_mask_uncertain)
        else -> getString(R.string.msg_too_few_good_frames)
    }

    @Composable
    private fun Screen() {
        Column(Modifier.fillMaxSize().padding(16.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
            AndroidView(factory = { ctx -> PreviewView(ctx).also { bindCamera(it) } }, modifier = Modifier.fillMaxWidth().height(360.dp))
            Button(onClick = { startMeasuring() }, enabled = !measuring.value && regressor != null) {
                Text(stringResource(if (measuring.value) R.string.measuring else R.string.measure))
            }
            status.value?.let { Text(it, color = MaterialTheme.colorScheme.error) }
            result.value?.takeIf { it.heightCm != null }?.let { m ->
                Text(getString(R.string.result_length, m.heightCm, m.heightSpreadCm), style = MaterialTheme.typography.headlineSmall)
                m.weightKg?.let { Text(getString(R.string.result_weight, it, m.weightSpreadKg), style = MaterialTheme.typography.headlineSmall) }
                Text(getString(R.string.result_frames, m.framesUsed, m.framesSeen))
            }
            Text(stringResource(R.string.history), style = MaterialTheme.typography.titleMedium)
            LazyColumn {
                items(entries.value.reversed()) { e ->
                    @Suppress("UNCHECKED_CAST")
                    val m = Measurement.fromMap(e["measurement"] as Map<String, Any?>)
                    Text("${e["time"]}  " + (m.heightCm?.let { "%.1f cm".format(it) } ?: messageFor(m.message ?: "")) +
                        (m.weightKg?.let { "  %.2f kg".format(it) } ?: ""))
                }
            }
        }
    }

    private fun bindCamera(view: PreviewView) {
        val future = ProcessCameraProvider.getInstance(this)
        future.addListener({
            val provider = future.get()
            val preview = Preview.Builder().build().also { it.setSurfaceProvider(view.surfaceProvider) }
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
                .also { it.setAnalyzer(analysisExecutor, ::onFrame) }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    companion object {
        /** A few seconds of frames, a few per second: enough for a median, short for a nurse. */
        const val MEASURE_MILLIS = 3000L
        const val FRAME_INTERVAL_MILLIS = 250L
    }
}
