"""Benchmarks: long or heavy measurements kept out of the test suite, run by ``pak bench``.

Each benchmark is a module with ``run(argv) -> dict`` (its own argparse over ``argv``); the
registry in :mod:`benchmarks.cli` names them. Results are JSON, so runs can be compared.
"""
