"""Benchmarks behind ``ctxrec bench ...``: each prints a table and writes its figures as
JSON under ``benchmarks/``; BENCHMARKS.md names the command for each row."""
from ctxrec.bench.report import median, write_report

__all__ = ["median", "write_report"]
