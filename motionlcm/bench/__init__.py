"""Benchmarks that build on both training and evaluation: the speed benchmark of `motionlcm bench`
(`speed`: AITS per stage, throughput, training samples/s, each fast path against `official_loop`, the
official inference loop re-implemented as the baseline). It sits above `train` and `eval` in the layer
stack (docs/architecture.md), so that those two never import each other."""
