"""
pytest plugin for the Channels check: every ``import asgiref…`` gets asgibridge_any.

Channels and Django import asgiref themselves, so renaming the imports of one file is not
enough; this import hook hands them asgibridge_any's modules under asgiref's names, the
whole process long. It also sets up a minimal Django (no database) for Channels.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType


class _AsgirefToAsgibridgeAny(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname == "asgiref" or fullname.startswith("asgiref."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module("asgibridge_any" + spec.name[len("asgiref") :])

    def exec_module(self, module: ModuleType) -> None:
        pass  # the module is asgibridge_any's, already executed


if any(name == "asgiref" or name.startswith("asgiref.") for name in sys.modules):
    raise RuntimeError("asgiref was imported before the alias was installed")
sys.meta_path.insert(0, _AsgirefToAsgibridgeAny())


def pytest_configure() -> None:
    from django.conf import settings  # type: ignore[import-untyped]

    settings.configure(
        INSTALLED_APPS=["channels"],
        DATABASES={},
        CHANNEL_LAYERS={},
        USE_TZ=True,
    )
    import django  # type: ignore[import-untyped]

    django.setup()
