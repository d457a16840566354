"""Channels: a checked transaction state machine and the memory channel built on it."""

from agent.channels.memory import MemoryChannel, MemoryTransaction
from agent.channels.transaction import BasicTransaction, TransactionState

__all__ = ["BasicTransaction", "MemoryChannel", "MemoryTransaction", "TransactionState"]
