"""Export stage: one table of targets (targets.py) drives every exporter (onnx, tflite,
executorch, coreml), the export check in each artifact's own runtime, and the model cards.
Heavy converters are imported only by the row that needs them."""

from neometer.export.targets import FORMATS, PRECISIONS, TARGETS, Target, find_target, select_targets, target_of_card

__all__ = ["FORMATS", "PRECISIONS", "TARGETS", "Target", "find_target", "select_targets", "target_of_card"]
