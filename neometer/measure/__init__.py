"""The measurement flow every shell runs, in its Python reference form: per-frame quality
gates and the aggregation of accepted frames. The shells (web, Android, iOS) implement the
same rules, read the thresholds from the model card, and are checked against golden cases
written from this module."""
