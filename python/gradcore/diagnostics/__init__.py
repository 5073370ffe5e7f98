"""Training health: scale-free checks that catch a collapsing or starving network on the step it begins, and
warnings that name the layer, the measured value, the healthy range and the likely causes and fixes.

    monitor = gradcore.diagnostics.HealthMonitor(model, every=10)    # in a plain loop, after optimizer.step():
    monitor.step(loss, output, target)                                # target: the input, for an autoencoder
    fit(..., health_every=10)                                         # the same inside fit()

Why relative: the seeds' autoencoder, initialised with Glorot uniform (MATLAB's default), collapses to an all-black
output within ~30 steps with gradients ~1e-5 and an output spread ~1e-4; healthy nets on other data have gradients
and spreads of that size too. What separates them is a ratio: the output's spread over the target's (1e-2 falling
to 1e-4, against ~1 when healthy), an update-to-weight ratio of 5e-6 against ~1e-3. monitor.py lists the checks;
findings.py holds the healthy ranges (Thresholds) and the hints; statistics.py the device-side measurements;
layers.py and checks.py host-side helpers for one-off inspection.
"""
from .checks import check_gradients, check_output, spread_ratio  # noqa: F401
from .findings import GradcoreHealthWarning, Finding, Thresholds, warn  # noqa: F401
from .layers import dead_relu_fraction, grad_norms, snapshot, update_ratios  # noqa: F401
from .monitor import HealthMonitor  # noqa: F401
