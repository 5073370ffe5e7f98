"""Benchmarks: gradcore against PyTorch (cuDNN on GPU, CPU build on CPU). `python -m bench.run --suite all`."""
