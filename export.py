"""Thin wrapper: `python export.py ...` is `neometer export ...`."""
from neometer.cli import run_script

run_script("export")
