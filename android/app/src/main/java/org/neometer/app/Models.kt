package org.neometer.app

import android.content.Context
import org.neometer.core.MeasureSession
import org.neometer.core.ModelCard
import org.neometer.core.NeometerException
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import java.io.File
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.channels.FileChannel

/** One model file behind one interface: normalised input (card layout) -> flat raw output. */
interface FrameModel : AutoCloseable {
    val card: ModelCard
    /** What actually runs the model, for the result JSON: "xnnpack", "gpu", "executorch-xnnpack". */
    val accelerator: String
    fun run(input: FloatArray): FloatArray
}

/** LiteRT interpreter: XNNPACK on the CPU by default, the GPU delegate when asked and supported. */
class LiteRtModel(file: File, override val card: ModelCard, threads: Int, useGpu: Boolean) : FrameModel {
    private val gpu: GpuDelegate?
    private val interpreter: Interpreter
    override val accelerator: String

    init {
        val options = Interpreter.Options().apply {
            numThreads = threads
            useXNNPACK = true
        }
        val compat = CompatibilityList()
        gpu = if (useGpu && compat.isDelegateSupportedOnThisDevice) GpuDelegate(compat.bestOptionsForThisDevice) else null
        gpu?.let { options.addDelegate(it) }
        accelerator = if (gpu != null) "gpu" else "xnnpack"
        val buffer = FileInputStream(file).channel.use { it.map(FileChannel.MapMode.READ_ONLY, 0, it.size()) }
        interpreter = Interpreter(buffer, options)
        val shape = interpreter.getInputTensor(0).shape()
        if (!shape.contentEquals(card.inputShape)) {
            throw NeometerException("${file.name}: input shape ${shape.contentToString()} but the card says ${card.inputShape.contentToString()}")
        }
    }

    override fun run(input: FloatArray): FloatArray {
        val inTensor = interpreter.getInputTensor(0)
        val inBuf = when (inTensor.dataType()) {
            DataType.FLOAT32 -> ByteBuffer.allocateDirect(input.size * 4).order(ByteOrder.nativeOrder()).apply { asFloatBuffer().put(input) }
            DataType.INT8, DataType.UINT8 -> {
                val q = org.neometer.core.Preprocess.quantize(input, card.inputQuantScale ?: 1.0, card.inputQuantZeroPoint ?: 0, card.inputDtype)
                ByteBuffer.allocateDirect(q.size).order(ByteOrder.nativeOrder()).apply { q.forEach { put(it.toByte()) }; rewind() }
            }
            else -> throw NeometerException("${card.artifactFile}: input type ${inTensor.dataType()} is not supported")
        }
        val outTensor = interpreter.getOutputTensor(0)
        val n = outTensor.numElements()
        val outBuf = ByteBuffer.allocateDirect(outTensor.numBytes()).order(ByteOrder.nativeOrder())
        interpreter.run(inBuf, outBuf)
        outBuf.rewind()
        // Integer outputs are returned as their integer values; the card dequantizes them.
        return when (outTensor.dataType()) {
            DataType.FLOAT32 -> FloatArray(n).also { outBuf.asFloatBuffer().get(it) }
            DataType.INT8 -> FloatArray(n) { outBuf.get(it).toFloat() }
            DataType.UINT8 -> FloatArray(n) { (outBuf.get(it).toInt() and 0xff).toFloat() }
            else -> throw NeometerException("${card.artifactFile}: output type ${outTensor.dataType()} is not supported")
        }
    }

    override fun close() {
        interpreter.close()
        gpu?.close()
    }
}

/** ExecuTorch runtime (.pte, XNNPACK delegate inside the program). */
class ExecuTorchModel(file: File, override val card: ModelCard, threads: Int) : FrameModel {
    private val module = Module.load(file.absolutePath, Module.LOAD_MODE_MMAP, threads)
    override val accelerator = "executorch-xnnpack"
    private val shape = card.inputShape.map { it.toLong() }.toLongArray()

    init {
        module.loadMethod("forward")
    }

    override fun run(input: FloatArray): FloatArray {
        val out = module.forward(EValue.from(Tensor.fromBlob(input, shape)))
        return out[0].toTensor().dataAsFloatArray
    }

    override fun close() = module.destroy()
}

/** The card beside the artifact picks the runtime. */
fun loadFrameModel(artifact: File, threads: Int, useGpu: Boolean): FrameModel {
    val card = ModelCard.read(ModelCard.cardPathFor(artifact.toPath()))
    return when (card.format) {
        "tflite" -> LiteRtModel(artifact, card, threads, useGpu)
        "executorch" -> ExecuTorchModel(artifact, card, threads)
        else -> throw NeometerException("${artifact.name}: format ${card.format} does not run on Android; export tflite or executorch")
    }
}

/** Adapters from FrameModel to the core session's interfaces. */
fun FrameModel.asRegressor() = MeasureSession.Regressor { run(it) }
fun FrameModel.asSegmenter() = MeasureSession.Segmenter { MeasureSession.toProbabilities(run(it), card) }

/**
 * Bundled models: assets/models/ holds artifacts with their cards. The regressor is the first
 * regressor card (tflite before executorch); its card's pipeline.segmenter names the segmenter.
 * Assets are copied to the app's files so both runtimes can open them by path.
 */
object BundledModels {
    fun regressorFile(context: Context): File {
        val names = context.assets.list("models").orEmpty()
        val cards = names.filter { it.endsWith(".json") }.sortedBy { if (it.contains(".tflite")) 0 else 1 }
        for (cardName in cards) {
            val card = ModelCard.parse(context.assets.open("models/$cardName").bufferedReader().readText(), "assets/models/$cardName")
            if (card.role == "regressor" && card.format in setOf("tflite", "executorch")) return extract(context, card.artifactFile)
        }
        throw NeometerException("no regressor in assets/models: run `neometer export`, then rebuild the app (copyModels)")
    }

    fun segmenterFile(context: Context, regressor: ModelCard): File? {
        val name = regressor.pipelineSegmenter ?: return null
        return if (context.assets.list("models").orEmpty().contains(name)) extract(context, name) else null
    }

    private fun extract(context: Context, artifact: String): File {
        val dir = File(context.filesDir, "models").apply { mkdirs() }
        for (name in listOf(artifact, "$artifact.json")) {
            val target = File(dir, name)
            val tmp = File(dir, "$name.tmp")
            context.assets.open("models/$name").use { input -> tmp.outputStream().use { input.copyTo(it) } }
            tmp.renameTo(target)
        }
        return File(dir, artifact)
    }
}
