"""Synthetic newborn data engine: parametric top-down supine newborns on hospital mats, seen
through a pinhole phone camera, written in the same dataset format as real recordings.

Modules: labels (length/weight/sex/GA), body (parametric infant in bed-plane cm), scene (mat,
clutter, light), camera (pinhole homography bed plane -> image), render (frames and videos),
writer (dataset folders), cli (`neometer synth`)."""
