"""Test configuration: the `cuda` marker skips without a device (on the emulated device every CUDA test runs);
`--emulated-thread-order=reversed` runs the emulated device's threads and blocks in reverse order."""
import pytest

import gradcore


def pytest_addoption(parser):
    parser.addoption("--emulated-thread-order", choices=("forward", "reversed"), default="forward",
                     help="the emulated CUDA device's between-barrier thread and block order (GRADCORE_CUDA=EMULATE "
                          "builds only)")


def pytest_configure(config):
    order = config.getoption("--emulated-thread-order")
    if order != "forward":
        if not gradcore.cuda.is_emulated():
            raise pytest.UsageError("--emulated-thread-order needs a gradcore built with GRADCORE_CUDA=EMULATE")
        gradcore.cuda.set_emulated_thread_order(order)


def pytest_report_header(config):
    if gradcore.cuda.is_available():
        return (f"gradcore CUDA device: {gradcore.cuda.get_device_name()}, thread order "
                f"{gradcore.cuda.emulated_thread_order()}" if gradcore.cuda.is_emulated()
                else f"gradcore CUDA device: {gradcore.cuda.get_device_name()}")
    return "gradcore CUDA device: none" + ("" if gradcore.cuda.compiled() else " (CPU-only build)")


def pytest_collection_modifyitems(config, items):
    if gradcore.cuda.is_available():
        return
    reason = "needs a CUDA device" + ("" if gradcore.cuda.compiled() else " and a CUDA build")
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def phase_timing():
    """The CPU phase timer (csrc/cpu/phase_timer.h) on and empty for one test, then off and emptied again: tests use
    it to see which kernel path ran."""
    gradcore._core.phase_times(reset=True)
    gradcore._core.set_phase_timing(True)
    yield
    gradcore._core.set_phase_timing(False)
    gradcore._core.phase_times(reset=True)
