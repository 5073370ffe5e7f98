"""What a health check reports: a Finding names the check, the layer, the measured value and the healthy range, and
carries one line of likely causes and fixes. Thresholds holds the healthy ranges (all scale-free ratios).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass


class GradcoreHealthWarning(UserWarning):
    """A training-health problem: a collapsed output, a layer that barely learns or thrashes, gradients that
    starve the first layers, dead or saturated units, missing or non-finite gradients."""


@dataclass(frozen=True)
class Thresholds:
    """The healthy ranges the checks compare with. Every quantity is a ratio, so none depends on the scale of the
    data, of the loss or of the weights.

    update_ratio: (low, high) band of ||w_t - w_{t-1}|| / ||w_t|| per layer and step (around 1e-3 is typical for
        Adam and for SGD at a good learning rate); compared with its median over the last 5 checks.
    gain: the lowest healthy forward gain of a layer: its output's spread across the batch over its input's,
        reported once the loss has stopped falling.
    first_last: the lowest healthy ratio of the first layer's ||grad|| / ||w|| to the last layer's.
    dead: the highest healthy fraction of a ReLU's units that are zero for the whole batch.
    saturated: the highest healthy fraction of a sigmoid's or tanh's units saturated over the batch.
    collapse: the lowest healthy ratio of the output's spread across the batch to the target's once the loss has
        stopped falling (over loss_window steps the mean loss fell by less than `plateau`, relative) or once the
        ratio fell below collapse_drop of the best it reached.
    collapse_now: the lowest healthy spread ratio whatever the loss does (from the second check on).

    Where the defaults come from (seeded runs, tests/test_health_failures.py). The healthy examples stayed within:
    spread ratio >= 0.45 after the first check (the ConvLSTM starts at 0.005 and reaches 0.25 by step 10), update
    ratios 1.6e-4..2.7e-2 (medians), forward gains >= 0.44 (0.22 with Glorot + BatchNorm), first/last >= 0.25
    (0.018 with BatchNorm), dead <= 0.23, saturated <= 0.47 (the autoencoder's output sigmoid on black background).
    The failures measured: spread 0.02 falling to 1e-4 (Glorot autoencoder), 1e-8 with gains of 1e-3 and update
    ratios of 5e-6..1e-5 (the 1e-3-initialised dense net), saturated 0.95.
    """

    update_ratio: tuple = (3e-5, 0.3)
    gain: float = 0.01
    first_last: float = 1e-3
    dead: float = 0.9
    saturated: float = 0.9
    collapse: float = 0.05
    collapse_drop: float = 0.1
    collapse_now: float = 1e-4
    plateau: float = 0.02
    loss_window: int = 40

    def __post_init__(self):
        try:
            low, high = (float(v) for v in self.update_ratio)
        except (TypeError, ValueError):
            raise ValueError(f"update_ratio: expected a band (low, high), got {self.update_ratio!r}") from None
        if not 0 <= low < high:
            raise ValueError(f"update_ratio: expected a band (low, high) with 0 <= low < high, got {self.update_ratio}")
        for name in ("gain", "first_last", "dead", "saturated", "collapse", "collapse_drop", "collapse_now",
                     "plateau"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name}: expected a number >= 0, got {value!r}")
        if not isinstance(self.loss_window, int) or self.loss_window < 2:
            raise ValueError(f"loss_window: expected an int >= 2, got {self.loss_window!r}")


# One line of likely causes and fixes per check (and direction).
HINTS = {
    "no_gradient": "likely a graph cut: a detach(), a numpy round trip or a network rebuilt between steps keeps the "
                   "loss from reaching it; chain the networks on Tensors (decoder(encoder(x))) inside the step",
    "nonfinite": "likely a learning rate too high or a log/division of zero; lower the lr, clip gradients "
                 "(clip_grad_norm_), check the inputs for NaN",
    "update_low": "the layer barely learns: likely weights initialised far too small or a learning rate too low "
                  "(or a frozen graph); use He init for ReLU layers (Glorot for tanh/sigmoid) or raise the lr",
    "update_high": "the layer thrashes: likely a learning rate too high for it; lower the lr, add clip_grad_norm_ "
                   "or normalisation (BatchNorm2d)",
    "gain": "the layer shrinks the signal: likely weights initialised far too small for their fan-in (or "
            "units that all saturate); use He init for ReLU layers (Glorot for tanh/sigmoid), or BatchNorm2d",
    "first_last": "the first layers starve behind the last: gradients shrink on their way back (saturated or "
                  "dead units, an initialisation that shrinks the signal, a graph cut between separately built "
                  "networks); use He init, BatchNorm2d after the convolutions, and chain the networks on Tensors",
    "dead": "its units never fire: likely a learning rate too high, biases pushed negative or a poor "
            "initialisation; lower the lr, use He init, LeakyReLU, or BatchNorm2d before the ReLU",
    "saturated": "its units sit in the flat tails: likely inputs too large (initialisation too big, no "
                 "normalisation) or, at the output, a net predicting one extreme everywhere; use a smaller or "
                 "fan-scaled init, BatchNorm2d, or a lower lr",
    "collapse": "the output no longer depends on the input: likely an initialisation that shrinks the signal "
                "(Glorot with ReLUs; use He), a learning rate too high, no normalisation (BatchNorm2d), or a graph "
                "cut between the networks",
}


def _g(value):
    return f"{value:.3g}"


@dataclass(frozen=True)
class Finding:
    """One warning: which check, which layer (None for the whole output), the measured value, the healthy range,
    the step (0-based count of HealthMonitor.step calls) and the one-line hint."""

    check: str
    layer: object
    value: float
    healthy: str
    what: str
    hint: str
    step: int = -1

    @property
    def message(self):
        at = f" at step {self.step}" if self.step >= 0 else ""
        if self.check == "collapse":
            where = "output" + (f" collapsed (the signal is lost at layer {self.layer!r})" if self.layer is not None
                                else " collapsed")
        else:
            where = f"layer {self.layer!r}" if self.layer is not None else "output"
        return f"{where}{at}: {self.what} {_g(self.value)}, healthy {self.healthy}. {self.hint[0].upper()}{self.hint[1:]}"

    def __str__(self):
        return self.message


def warn(messages, stacklevel=2):
    """Emits each message (or Finding) as a GradcoreHealthWarning and prints it above any tqdm progress bar.
    Returns the messages as strings."""
    out = []
    for message in messages:
        text = str(message)
        try:
            from tqdm import tqdm
            tqdm.write(f"gradcore health: {text}")
        except ImportError:  # pragma: no cover - tqdm is a dependency
            pass
        warnings.warn(text, GradcoreHealthWarning, stacklevel=stacklevel + 1)
        out.append(text)
    return out
