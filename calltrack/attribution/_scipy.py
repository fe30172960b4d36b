"""scipy.sparse, imported when first used. Pure.

Every ``calltrack serve`` and CLI command imports the attribution package (its model names
validate requests), but only a Markov solve or a bootstrap needs scipy, whose import takes
about a second: a process restarted after a crash answers that much sooner.
"""

from __future__ import annotations

import importlib
from typing import Any


class _Sparse:
    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("scipy.sparse"), name)


sparse: Any = _Sparse()


def splu(*args: Any, **kwargs: Any) -> Any:
    from scipy.sparse.linalg import splu as _splu

    return _splu(*args, **kwargs)
