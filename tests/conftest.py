"""Test configuration: the `cuda` marker skips without a device; the `devices` list parametrises CPU/CUDA twins."""
import pytest

import gradcore


def pytest_collection_modifyitems(config, items):
    if gradcore.cuda.is_available():
        return
    reason = "needs a CUDA device" + ("" if gradcore.cuda.compiled() else " and a CUDA build")
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
