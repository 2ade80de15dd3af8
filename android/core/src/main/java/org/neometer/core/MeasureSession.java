package org.neometer.core;

import java.util.ArrayList;
import java.util.List;

/**
 * One measurement: frames over a few seconds, each preprocessed, gated and (when accepted)
 * predicted; then the median. The same flow as the web and iOS apps. The app supplies the
 * models through the two small interfaces below, so this class runs in unit tests too.
 */
public final class MeasureSession {
    /** Letterboxed, normalised input (card layout) -> size x size body probabilities. */
    public interface Segmenter {
        float[] segment(float[] input);
    }

    /** Background-removed, normalised input (card layout) -> the raw output tensor. */
    public interface Regressor {
        float[] predict(float[] input);
    }

    private final ModelCard regressorCard;
    private final ModelCard segmenterCard;
    private final Segmenter segmenter;
    private final Regressor regressor;
    private final QualityThresholds thresholds;
    private final List<double[]> predictions = new ArrayList<>();
    private final List<FrameCheck> checks = new ArrayList<>();

    public MeasureSession(ModelCard regressorCard, Regressor regressor, ModelCard segmenterCard, Segmenter segmenter,
                          QualityThresholds fallbackThresholds) {
        this.regressorCard = regressorCard;
        this.regressor = regressor;
        this.segmenterCard = segmenterCard;
        this.segmenter = segmenter;
        this.thresholds = regressorCard.qualityOr(fallbackThresholds);
        if (thresholds == null) {
            throw new NeometerException(regressorCard.artifactFile + ".json has no quality block and no fallback was given");
        }
    }

    /**
     * One camera frame. mask: a known source-resolution mask in [0, 1] (null: use the segmenter,
     * or none when there is no segmenter). Returns the frame's gate result.
     */
    public FrameCheck addFrame(RgbImage frame, float[] mask, Double tiltDeg) {
        PreprocessSpec spec = regressorCard.preprocessing;
        RgbImage boxed = Preprocess.letterbox(frame, spec);
        Letterbox geo = Letterbox.of(frame.width, frame.height, spec.targetSize);
        float[] mask224 = null;
        if (mask != null) {
            mask224 = Preprocess.letterboxMask(mask, frame.width, frame.height, spec);
        } else if (segmenter != null) {
            PreprocessSpec segSpec = segmenterCard.preprocessing;
            mask224 = segmenter.segment(Preprocess.normalize(Preprocess.letterbox(frame, segSpec), segSpec, segmenterCard.inputLayout));
            if (segSpec.targetSize != spec.targetSize) {
                throw new NeometerException("segmenter target_size " + segSpec.targetSize + " differs from the regressor's " + spec.targetSize);
            }
        }
        FrameCheck check = Gates.checkFrame(mask224, spec.targetSize, geo.contentBox(), tiltDeg, thresholds);
        checks.add(check);
        if (!check.accepted()) {
            predictions.add(new double[] {Double.NaN, Double.NaN});
            return check;
        }
        RgbImage input = mask224 != null && spec.removesBackground() ? Preprocess.applyMask(boxed, mask224, spec) : boxed;
        float[] raw = regressor.predict(Preprocess.normalize(input, spec, regressorCard.inputLayout));
        predictions.add(regressorCard.heightWeight(raw));
        return check;
    }

    public int framesSeen() {
        return checks.size();
    }

    public Measurement finish() {
        return Aggregate.aggregate(predictions.toArray(new double[0][]), checks, thresholds);
    }

    /** A segmenter's raw output -> probabilities: sigmoid when the card's output unit is "logit". */
    public static float[] toProbabilities(float[] raw, ModelCard segmenterCard) {
        boolean logits = !segmenterCard.outputs.isEmpty() && "logit".equals(segmenterCard.outputs.get(0).unit);
        if (!logits) return raw;
        float[] out = new float[raw.length];
        for (int i = 0; i < raw.length; i++) out[i] = (float) (1.0 / (1.0 + Math.exp(-raw[i])));
        return out;
    }
}
