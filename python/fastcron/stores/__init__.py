"""Store implementations; the contract is ``fastcron.abc.Store``."""

from fastcron.stores.memory import MemoryStore
from fastcron.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore"]
