package org.neometer.app

import android.content.Context
import android.graphics.Bitmap
import android.graphics.Matrix
import android.hardware.Sensor
import android.hardware.SensorEvent
import android.hardware.SensorEventListener
import android.hardware.SensorManager
import androidx.camera.core.ImageProxy
import org.neometer.core.Gates
import org.neometer.core.RgbImage

/** CameraX frame (RGBA_8888 analysis output) -> upright RgbImage for the core preprocessing. */
fun ImageProxy.toRgbImage(padValue: Int): RgbImage {
    var bitmap = toBitmap()
    val rotation = imageInfo.rotationDegrees
    if (rotation != 0) {
        val m = Matrix().apply { postRotate(rotation.toFloat()) }
        bitmap = Bitmap.createBitmap(bitmap, 0, 0, bitmap.width, bitmap.height, m, true)
    }
    return bitmap.toRgbImage(padValue)
}

/** Bitmap.getPixels gives non-premultiplied ARGB ints, the order RgbImage.fromArgb reads. */
fun Bitmap.toRgbImage(padValue: Int): RgbImage {
    val pixels = IntArray(width * height)
    getPixels(pixels, 0, width, 0, 0, width, height)
    return RgbImage.fromArgb(pixels, width, height, padValue)
}

/** The phone's tilt from straight down, from the rotation-vector sensor (null until known). */
class TiltSensor(context: Context) : SensorEventListener {
    private val manager = context.getSystemService(Context.SENSOR_SERVICE) as SensorManager
    @Volatile var tiltDeg: Double? = null
        private set

    fun start() {
        manager.getDefaultSensor(Sensor.TYPE_ROTATION_VECTOR)?.let {
            manager.registerListener(this, it, SensorManager.SENSOR_DELAY_UI)
        }
    }

    fun stop() = manager.unregisterListener(this)

    override fun onSensorChanged(event: SensorEvent) {
        val r = FloatArray(9)
        val angles = FloatArray(3)
        SensorManager.getRotationMatrixFromVector(r, event.values)
        SensorManager.getOrientation(r, angles)  // azimuth, pitch, roll in radians
        tiltDeg = Gates.tiltFromOrientation(Math.toDegrees(angles[1].toDouble()), Math.toDegrees(angles[2].toDouble()))
    }

    override fun onAccuracyChanged(sensor: Sensor?, accuracy: Int) = Unit
}
