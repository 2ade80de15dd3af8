"""Thin wrapper: `python benchmarks.py ...` is `neometer bench ...`."""
from neometer.cli import run_script

run_script("bench")
