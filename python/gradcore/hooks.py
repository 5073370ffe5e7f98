"""RemovableHandle: what every register_*_hook returns (PyTorch's torch.utils.hooks.RemovableHandle)."""
from __future__ import annotations


class RemovableHandle:
    """remove() takes the hook out again (idempotent); `with handle:` removes it on exit."""

    _next_id = 0

    def __init__(self, hooks, hook, on_remove=None):
        self._hooks = hooks
        self._on_remove = on_remove
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1
        hooks[self.id] = hook

    def remove(self):
        if self._hooks.pop(self.id, None) is not None and self._on_remove is not None:
            self._on_remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False
