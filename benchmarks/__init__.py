"""Benchmarks for srcdiff against a hand-written adjoint, autograd, JAX and PyTorch.

Run ``python -m benchmarks.run --help``; see ``benchmarks/README.md``.  This
package imports nothing at import time, so ``benchmarks.run`` can pin the
BLAS/OpenMP thread counts before NumPy is loaded.
"""
