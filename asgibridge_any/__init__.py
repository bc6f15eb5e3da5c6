"""
Sync/async bridges, Local and WSGI adapters for asyncio and trio alike.

The package itself holds the operability API: :func:`stats` for a snapshot of the
bridge's threads and queues, hop hooks for tracing (:func:`add_hop_hook`), the
slow-call warning (:func:`warn_slow_sensitive_calls`) and the context thread cap
(:func:`~asgibridge_any.sync.set_context_thread_limit`, also in
:mod:`asgibridge_any.sync`).
"""

from __future__ import annotations

__all__ = (
    "HopEvent",
    "LoopThreadStats",
    "SensitiveStats",
    "Stats",
    "WorkerStats",
    "WsgiStats",
    "add_hop_hook",
    "get_context_thread_limit",
    "remove_hop_hook",
    "set_context_thread_limit",
    "stats",
    "warn_slow_sensitive_calls",
)

__version__ = "0.1.0"

from ._hooks import HopEvent as HopEvent
from ._hooks import add_hop_hook as add_hop_hook
from ._hooks import remove_hop_hook as remove_hop_hook
from ._limits import get_context_thread_limit as get_context_thread_limit
from ._limits import set_context_thread_limit as set_context_thread_limit
from ._stats import LoopThreadStats as LoopThreadStats
from ._stats import SensitiveStats as SensitiveStats
from ._stats import Stats as Stats
from ._stats import WorkerStats as WorkerStats
from ._stats import WsgiStats as WsgiStats
from ._stats import stats as stats
from ._watchdog import warn_slow_sensitive_calls as warn_slow_sensitive_calls

# Defined in private modules, documented here (the limit in asgibridge_any.sync).
for _public in (
    HopEvent,
    LoopThreadStats,
    SensitiveStats,
    Stats,
    WorkerStats,
    WsgiStats,
    add_hop_hook,
    remove_hop_hook,
    stats,
    warn_slow_sensitive_calls,
):
    _public.__module__ = __name__
del _public
