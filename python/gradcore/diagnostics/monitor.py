"""HealthMonitor: scale-free training-health checks every N steps, in fit() or in a plain loop.

    monitor = HealthMonitor({"encoder": encoder, "decoder": decoder}, every=10)
    for x in loader:
        optimizer.zero_grad()
        y = decoder(encoder(x))
        loss = F.mse_loss(y, x)
        loss.backward()
        optimizer.step()
        monitor.step(loss, y, x)        # returns the new Findings (warned once each) on a check step, else []

Cost and synchronisation. Between checks, step() only keeps a reference to the loss (and, on the step before a
check, queues a device copy of the weights): no kernel waits and nothing is read back. On a check step (every
`every` calls, starting with the first) it queues per-layer sums of squares, spreads and unit fractions as 0-d
device tensors, stacks them and reads them back once. Forward hooks on the monitored modules record activation
statistics only during the check step's forward pass (they are no-ops otherwise) and only with gradients enabled,
so evaluation passes in between are not counted.

What is checked on each check step (Thresholds holds the healthy ranges; every quantity is a ratio):
  collapse      the output's spread across the batch over the target's (pass the input as target for an
                autoencoder): below `collapse` once the loss has stopped falling or the ratio fell below a tenth of
                its best, or below `collapse_now` at once (from the second check: a net may start constant). The
                finding names where the signal is lost: the module with the lowest forward gain.
  update ratio  per layer ||w_t - w_{t-1}|| / ||w_t|| for the step just taken (over its weights, biases left out),
                its median over the last 5 checks against the band
  gain          per leaf layer, its output's spread across the batch over its input's: a layer that shrinks the
                signal (reported once the loss stalls; it also names where a collapse loses the signal)
  first/last    the first layer's ||grad|| / ||w|| over the last layer's (first and last in forward order): the
                first layers starving behind a bottleneck or a saturated output
  dead          per nn.ReLU module, the fraction of units that are zero for the whole batch
  saturated     per nn.Sigmoid / nn.Tanh module, the fraction of units whose local gradient is nearly zero
  no gradient   a layer whose trainable parameters got no .grad while others did (a graph cut), and non-finite
                gradients or weights
Call step() after optimizer.step() (so the update ratio is that of the step just taken; gradients are still there
until the next zero_grad()). Each Finding is warned (GradcoreHealthWarning, and above the progress bar) when it
first appears; while it persists it is recorded in `records` but not repeated.
"""
from __future__ import annotations

import math
import numbers
from collections import OrderedDict

import numpy as np

from .. import functional as F
from ..autograd import is_grad_enabled, no_grad
from ..nn.activation import ReLU, Sigmoid, Tanh
from ..tensor import Tensor
from . import statistics as S
from .findings import HINTS, Finding, Thresholds, warn
from .layers import layers, named_modules


REPEAT_AFTER = 5       # checks in a row without a finding before it is warned again...
REPEAT_AFTER_STEPS = 100  # ...and steps
UPDATE_WINDOW = 5      # checks whose update ratios' median is compared with the band
UPDATE_MIN_CHECKS = 3  # checks measured before an update ratio is judged
CULPRIT_GAIN = 0.1     # a module passing on less of the signal than this is named as where a collapse loses it
PEAK_SLOPE = {"relu": 1.0, "sigmoid": 0.25, "tanh": 1.0}


def _activation_kind(module):
    if isinstance(module, ReLU):
        return "relu"
    if isinstance(module, Sigmoid):
        return "sigmoid"
    if isinstance(module, Tanh):
        return "tanh"
    return None


class _Readback:
    """Collects 0-d device tensors (and host floats) under keys and reads them back in one transfer per device."""

    def __init__(self):
        self.keys, self.values = [], []

    def add(self, key, value):
        self.keys.append(key)
        self.values.append(value)

    def read(self):
        out = {}
        by_device = OrderedDict()
        for key, value in zip(self.keys, self.values):
            if isinstance(value, Tensor):
                by_device.setdefault(value.device, []).append((key, value))
            else:
                out[key] = float(value)
        with no_grad():
            for items in by_device.values():
                stacked = F.stack([v.reshape(()).to(dtype="float64") for _, v in items]).numpy()
                out.update((key, float(x)) for (key, _), x in zip(items, stacked))
        return out


class HealthMonitor:
    """Scale-free health checks on `model` (a Module or a {prefix: Module} mapping) every `every` calls of step().

    thresholds: a Thresholds (the healthy ranges). warn: emit GradcoreHealthWarning for new findings.
    After the run: `findings` (every Finding warned), `records` (one dict per check step with every measured
    value), `losses` (every loss seen, on the host, read back at the check steps). remove() takes the hooks out
    (also on leaving a `with HealthMonitor(...) as monitor:` block).
    """

    def __init__(self, model, every=50, thresholds=None, warn=True):
        if not isinstance(every, numbers.Integral) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every: expected a positive int, got {every!r}")
        if thresholds is None:
            thresholds = Thresholds()
        if not isinstance(thresholds, Thresholds):
            raise TypeError(f"thresholds: expected a diagnostics.Thresholds, got {type(thresholds).__name__}")
        self.every = int(every)
        self.thresholds = thresholds
        self.warn = bool(warn)
        self.layers = layers(model)
        self.activations = OrderedDict(
            (name, (m, _activation_kind(m))) for name, m in named_modules(model) if _activation_kind(m))
        self.records, self.findings, self.losses = [], [], []
        self._count = 0                 # step() calls so far
        self._pending_losses = []       # losses since the last read-back (device tensors or floats)
        self._previous = None           # {layer: [device copies of its parameters]} from the step before a check
        self._active = set()            # (check, layer) of findings seen at the last check
        self._last_seen = {}            # (check, layer) -> (index, step) of the last check that found it
        self._best_spread = 0.0         # the highest output/target spread ratio seen so far
        self._update_history = {}       # layer -> its update ratios at the last UPDATE_WINDOW checks
        self._armed = True              # the next forward is a check step's
        self._order = []                # layers in the order their forward finished in the check step
        self._activation_stats = {}     # name -> [0-d tensors] from the check step's forward
        self._gain_stats = {}           # layer -> [(output spread, input spread)] from the check step's forward
        self._spreads = {}              # id(tensor) -> (tensor, its batch spread) in the check step
        self._handles = []
        # A layer's forward gain is measured only where it is one layer, not a network holding other layers too.
        layer_ids = {id(module) for module, _ in self.layers.values()}
        for name, (module, _) in self.layers.items():
            leaf = not any(id(sub) in layer_ids for sub in module.modules() if sub is not module)
            self._handles.append(module.register_forward_hook(self._layer_hook(name, leaf)))
        for name, (module, kind) in self.activations.items():
            self._handles.append(module.register_forward_hook(self._activation_hook(name, kind)))

    # ---- hooks: active only during a check step's forward with gradients enabled -------------------------------
    def _recording(self):
        return self._armed and is_grad_enabled()

    def _layer_hook(self, name, leaf):
        def hook(module, inputs, output):
            if not self._recording():
                return
            if name not in self._order:
                self._order.append(name)
            x = inputs[0] if inputs else None
            if (leaf and isinstance(x, Tensor) and isinstance(output, Tensor) and x.ndim >= 2 and output.ndim >= 2
                    and x.shape[0] == output.shape[0] >= 2):
                self._gain_stats.setdefault(name, []).append((self._spread(output), self._spread(x)))
        return hook

    def _activation_hook(self, name, kind):
        def hook(module, inputs, output):
            if not self._recording() or not isinstance(output, Tensor) or output.ndim < 2 or output.shape[0] < 2:
                return
            stat = S.dead_fraction(output) if kind == "relu" else S.saturated_fraction(output, kind)
            self._activation_stats.setdefault(name, []).append(stat)
            x = inputs[0] if inputs else None
            if isinstance(x, Tensor) and x.shape == output.shape:
                self._gain_stats.setdefault(name, []).append((self._spread(output), self._spread(x)))
        return hook

    def _spread(self, t):
        """batch_spread(t), once per tensor in a check step: one layer's output is the next one's input."""
        cached = self._spreads.get(id(t))
        if cached is None or cached[0] is not t:
            cached = self._spreads[id(t)] = (t, S.batch_spread(t))  # holds t, so its id is not reused meanwhile
        return cached[1]

    def remove(self):
        """Unregisters the forward hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False

    # ---- the step ----------------------------------------------------------------------------------------------
    def step(self, loss, output=None, target=None):
        """Records this step's loss; on a check step (the first, then every `every`-th) measures and checks
        everything and returns the Findings that are new since the last check (warned if `warn`), else []."""
        if isinstance(loss, Tensor):
            if loss.numel != 1:
                raise ValueError(f"loss: expected a scalar (one element), got shape {loss.shape}")
            loss = loss.detach()
        elif isinstance(loss, numbers.Real):
            loss = float(loss)
        else:
            raise TypeError(f"loss: expected a scalar Tensor or a float, got {type(loss).__name__}")
        for value, name in ((output, "output"), (target, "target")):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{name}: expected a gradcore.Tensor or None, got {type(value).__name__}")
        self._pending_losses.append(loss)
        step = self._count
        self._count += 1
        new = []
        if step % self.every == 0:
            new = self._check(step, output, target)
            self._order, self._activation_stats, self._gain_stats, self._spreads = [], {}, {}, {}
        self._armed = self._count % self.every == 0
        # The step before a check keeps device copies of the weights, for the update ratio of the check's step.
        self._previous = self._copy_weights() if self._armed else None
        return new

    @no_grad()
    def _copy_weights(self):
        return {name: [p.detach().clone() for p in _weights(params)] for name, (_, params) in self.layers.items()}

    @no_grad()
    def _check(self, step, output, target):
        rb = _Readback()
        for i, loss in enumerate(self._pending_losses):
            rb.add(("loss", i), loss)
        n_losses = len(self._pending_losses)
        self._pending_losses = []

        missing = []
        for name, (_, params) in self.layers.items():
            if any(p.requires_grad for _, p in params) and all(p.grad is None for _, p in params if p.requires_grad):
                missing.append(name)
            weights = _weights(params)
            grads = [p.grad for p in weights if p.grad is not None]
            if grads:
                rb.add(("grad", name), sum(S.sum_squares(g) for g in grads))
            rb.add(("weight", name), sum(S.sum_squares(p) for p in weights))
            if self._previous is not None:
                rb.add(("delta", name), sum(S.sum_squares(p - old) for p, old in zip(weights, self._previous[name])))
        for name, pairs in self._gain_stats.items():
            rb.add(("gain_out", name), sum(out for out, _ in pairs))
            rb.add(("gain_in", name), sum(x for _, x in pairs))
        for name, stats in self._activation_stats.items():
            rb.add(("activation", name), sum(stats) / len(stats))
        if output is not None and output.ndim >= 1 and output.shape[0] >= 2:
            rb.add(("spread", "output"), self._spread(output))
            if target is not None and target.ndim >= 1 and target.shape[0] >= 2:
                rb.add(("spread", "target"), self._spread(target))
        values = rb.read()

        self.losses += [values[("loss", i)] for i in range(n_losses)]
        record = self._measure(step, values, missing)
        found = self._evaluate(step, record)
        record["findings"] = found
        self.records.append(record)
        # Warn of a finding when it appears, not again while it persists or flickers: only after it was absent
        # from more than REPEAT_AFTER checks and REPEAT_AFTER_STEPS steps in a row.
        checks = len(self.records)
        new = []
        for f in found:
            seen_check, seen_step = self._last_seen.get(_key(f), (None, None))
            if seen_check is None or (checks - seen_check > REPEAT_AFTER and step - seen_step > REPEAT_AFTER_STEPS):
                new.append(f)
        self._active = {_key(f) for f in found}
        self._last_seen.update((key, (checks, step)) for key in self._active)
        self.findings += new
        if self.warn and new:
            warn(new, stacklevel=4)
        return new

    def _measure(self, step, values, missing):
        """The check step's record: every ratio the checks look at."""
        record = {"step": step, "loss": self.losses[-1] if self.losses else math.nan, "layers": OrderedDict(),
                  "activations": OrderedDict(), "order": list(self._order), "missing": missing}
        for name in self.layers:
            w = math.sqrt(values[("weight", name)])
            g = math.sqrt(values[("grad", name)]) if ("grad", name) in values else None
            d = math.sqrt(values[("delta", name)]) if ("delta", name) in values else None
            out, x = values.get(("gain_out", name)), values.get(("gain_in", name))
            record["layers"][name] = {
                "grad_norm": g, "weight_norm": w, "grad_ratio": None if g is None else _ratio(g, w),
                "update_ratio": None if d is None else _ratio(d, w),
                "gain": None if out is None else _ratio(out, x),
            }
        for name, (_, kind) in self.activations.items():
            if ("activation", name) in values:
                out, x = values.get(("gain_out", name)), values.get(("gain_in", name))
                record["activations"][name] = {"kind": kind, "fraction": values[("activation", name)],
                                               "gain": None if out is None else _ratio(out, x)}
        out, tgt = values.get(("spread", "output")), values.get(("spread", "target"))
        record["output_spread"], record["target_spread"] = out, tgt
        record["spread_ratio"] = _ratio(out, tgt) if out is not None and tgt is not None else None
        record["loss_fall"] = self._loss_fall()
        record["first_last"] = self._first_last(record)
        return record

    def _loss_fall(self):
        """Relative fall of the mean loss over the last half of loss_window steps against the half before, or None
        until loss_window steps were seen."""
        half = self.thresholds.loss_window // 2
        if len(self.losses) < 2 * half:
            return None
        older = float(np.mean(self.losses[-2 * half:-half]))
        recent = float(np.mean(self.losses[-half:]))
        if not (math.isfinite(older) and math.isfinite(recent)) or older == 0:
            return None
        return (older - recent) / abs(older)

    def _forward_order(self, record):
        """Layer names in the order their forward finished in the check step, then those that did not run."""
        return record["order"] + [n for n in self.layers if n not in record["order"]]

    def _first_last(self, record):
        """{"first", "last", "ratio"}: the first layer's ||grad|| / ||w|| over the last layer's (forward order),
        or None without two layers with finite, non-zero relative gradients."""
        order = [n for n in self._forward_order(record) if record["layers"][n]["grad_ratio"] is not None]
        if len(order) < 2:
            return None
        first, last = order[0], order[-1]
        g_first, g_last = record["layers"][first]["grad_ratio"], record["layers"][last]["grad_ratio"]
        if not (math.isfinite(g_first) and math.isfinite(g_last) and g_last > 0):
            return None
        return {"first": first, "last": last, "ratio": g_first / g_last}

    def _culprit(self, record):
        """Where a collapsed output loses the signal: the module with the lowest forward gain (an activation's
        relative to its steepest slope: 1/4 for a sigmoid) if that is below CULPRIT_GAIN, else the last layer."""
        gains = [(v["gain"], n) for n, v in record["layers"].items() if v["gain"] is not None]
        gains += [(a["gain"] / PEAK_SLOPE[a["kind"]], n) for n, a in record["activations"].items()
                  if a.get("gain") is not None]
        if gains and min(gains)[0] < CULPRIT_GAIN:
            return min(gains)[1]
        order = self._forward_order(record)
        return order[-1] if order else None

    def _evaluate(self, step, record):
        t = self.thresholds
        found = []

        def add(check, layer, value, healthy, what, hint):
            found.append(Finding(check, layer, value, healthy, what, HINTS[hint], step))

        layer_stats = record["layers"]
        # Gradients that never arrived, or non-finite ones.
        if any(v["grad_norm"] is not None for v in layer_stats.values()):
            for name in record["missing"]:
                add("no_gradient", name, 0.0, "> 0", "received no gradient; gradient norm", "no_gradient")
        for name, v in layer_stats.items():
            for key in ("grad_norm", "weight_norm"):
                if v[key] is not None and not math.isfinite(v[key]):
                    add("nonfinite", name, v[key], "finite", key.replace("_", " "), "nonfinite")
        # The forward signal: how much of the input's variation across the batch each layer passes on. A low gain
        # is reported once the loss has stopped falling (a zero-initialised last layer starts at gain 0 and grows);
        # before that it only names the culprit of a collapse.
        fall = record["loss_fall"]
        stalled = fall is not None and fall < t.plateau
        shrinking = [n for n in self._forward_order(record)
                     if layer_stats[n]["gain"] is not None and layer_stats[n]["gain"] < t.gain]
        for name in shrinking if stalled else []:
            add("gain", name, layer_stats[name]["gain"], f">= {t.gain:g} (the loss stopped falling: "
                f"{fall:+.1%} over {t.loss_window} steps)", "forward gain (output spread across the batch over the "
                "input's)", "gain")
        # Per-layer update-to-weight ratio: the median of the last UPDATE_WINDOW checks' (one SGD batch's gradient
        # can be small by chance, the first steps from an initialisation large; a layer that barely learns or
        # thrashes does so at every check), from UPDATE_MIN_CHECKS measured on. Non-finite updates show as
        # non-finite weights at once.
        low, high = t.update_ratio
        for name, v in layer_stats.items():
            r = v["update_ratio"]
            if r is None or not math.isfinite(r) or v["grad_norm"] is None:
                continue
            recent = self._update_history.setdefault(name, [])
            recent.append(r)
            del recent[:-UPDATE_WINDOW]
            median = v["update_ratio_median"] = float(np.median(recent))
            if (median < low or median > high) and len(recent) >= UPDATE_MIN_CHECKS:
                what = "update-to-weight ratio" + (f" (median of the last {len(recent)} checks)"
                                                   if len(recent) > 1 else "")
                add("update_ratio", name, median, f"{low:g}..{high:g}", what,
                    "update_low" if median < low else "update_high")
        # The first layer's relative gradient against the last one's.
        fl = record["first_last"]
        if fl is not None and fl["ratio"] < t.first_last:
            add("first_last", fl["first"], fl["ratio"], f">= {t.first_last:g}",
                f"relative gradient ||grad||/||w|| over the last layer's ({fl['last']!r})", "first_last")
        # Dead and saturated units.
        for name, a in record["activations"].items():
            if a["kind"] == "relu" and a["fraction"] > t.dead:
                add("dead", name, a["fraction"], f"<= {t.dead:g}", "fraction of ReLU units dead for the whole batch",
                    "dead")
            elif a["kind"] != "relu" and a["fraction"] > t.saturated:
                add("saturated", name, a["fraction"], f"<= {t.saturated:g}",
                    f"fraction of {a['kind']} units saturated over the batch", "saturated")
        # Collapse: the output no longer follows the input. Once flagged it stays flagged until the spread recovers
        # past `collapse` (no flicker around collapse_now).
        ratio = record["spread_ratio"]
        if ratio is not None and math.isfinite(ratio):
            fallen = ratio < t.collapse_drop * self._best_spread
            was = ("collapse", None) in self._active
            self._best_spread = max(self._best_spread, ratio)
            # Not at the first check: a net may start with a constant output (a zero-initialised last layer).
            first = len(self.records) == 0
            if (ratio < t.collapse_now and not first) or (ratio < t.collapse and (stalled or fallen or was)):
                culprit = self._culprit(record)
                if ratio < t.collapse_now:
                    healthy = f">= {t.collapse_now:g}"
                elif stalled:
                    healthy = f">= {t.collapse:g} (the loss stopped falling: {fall:+.1%} over {t.loss_window} steps)"
                elif fallen:
                    healthy = f">= {t.collapse:g} (it fell from its best, {self._best_spread:.3g})"
                else:
                    healthy = f">= {t.collapse:g} to recover"
                add("collapse", culprit, ratio, healthy,
                    "the output's spread across the batch over the target's", "collapse")
        return found


def _key(finding):
    """What makes two findings the same for warning once: the check and the layer; a collapse is one whatever layer
    it is attributed to."""
    return (finding.check, None if finding.check == "collapse" else finding.layer)


def _weights(params):
    """The parameters whose ratios describe a layer: its matrices and kernels (ndim >= 2), or every parameter of a
    layer that has none. Biases are left out: they start at zero, so their ratios are meaningless at first and,
    in a layer with tiny weights, drown the weights' own."""
    weights = [p for _, p in params if p.ndim >= 2]
    return weights or [p for _, p in params]


def _ratio(a, b):
    return a / b if b > 0 else (math.inf if a > 0 else 0.0)
