"""Benchmarks of asgibridge_any side by side with asgiref, a2wsgi and raw anyio."""
