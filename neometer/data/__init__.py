"""Datasets: manifest (read + check), media (decode, sample, masks), preprocess (THE one),
cache (frame table on disk), splits (grouped k-fold), dataset (torch Dataset).

Kept import-free so `neometer data check` does not load torch; import the submodules."""
