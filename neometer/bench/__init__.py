"""Benchmarks: parity against PyTorch (raw outputs, task MAE, first diverging layer) and
latency measured as the field does, on the host's Python runtimes and, through the app
shells, in a browser and on Android and iOS phones.

Modules: cli (`neometer bench`), host (the host run), latency (timing loop and the per-runtime
worker process), parity, localize, heldout (the images parity is judged on), devices (browser,
android, ios), results (table, files, schema), sysinfo (machine and software)."""
