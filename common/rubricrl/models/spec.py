"""What a known model is: a name plus a builder (the bottom of ``rubricrl.models``).

The builders (``smollm2``, ``tiny_qwen``) define their ``ModelSpec`` constants and the registry
collects them, so neither builder imports the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    """A model ``resolve_model`` can build by name.

    Attributes:
        name: the alias users type.
        description: one line for ``rubricrl models list``.
        source: returns the file whose content identifies the build (hashed into the marker).
        build: writes the checkpoint into the given (empty) directory.
        version: bump when the builder's output changes, so old checkpoints are rebuilt.
    """

    name: str
    description: str
    source: Callable[[], Path]
    build: Callable[[Path], None]
    version: int = 1
