"""Evaluation of a training run: metrics, Bland–Altman agreement, and the report
(`neometer eval RUN_DIR`), computed from the run's predictions.csv alone."""
