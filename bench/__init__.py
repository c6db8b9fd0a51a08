"""Benchmarks: shared modules (data, processes, drivers, raw baselines, report) and the entry
points `python -m bench.ingest` and `python -m bench.query`."""
