"""Store implementations; the contract is ``fastcron.abc.Store``."""

from fastcron.stores.memory import MemoryStore

__all__ = ["MemoryStore"]
