"""Thin wrapper: `python train.py ...` is `neometer train ...`."""
from neometer.cli import run_script

run_script("train")
