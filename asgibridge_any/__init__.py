"""Sync/async bridges, Local and WSGI adapters for asyncio and trio alike."""

from __future__ import annotations

__version__ = "0.1.0"
