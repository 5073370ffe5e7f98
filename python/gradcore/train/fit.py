"""fit: the loop you would write anyway, plus a progress bar, a History and health checks.

A plain custom loop stays first-class: fit() only calls your `step(batch)` once per batch, and the step does
everything a hand-written loop does (forward, loss, backward, update). What fit adds:
  * a tqdm progress bar per epoch with the running loss, the epoch and samples/s;
  * a History: per-epoch mean training loss, held-out loss, per-step losses, epoch times;
  * health checks (gradcore.diagnostics.HealthMonitor) every `health_every` steps (default 25) from the first:
    a collapsed output (its spread over the target's), per-layer update-to-weight ratios, the first layer starving
    behind the last, dead ReLUs, saturated sigmoids/tanhs, missing or non-finite gradients, each reported once as a
    GradcoreHealthWarning naming the layer, the value, the healthy range and the likely fix;
  * optional PNGs (loss.png) through matplotlib when `plot_dir` is given.

Two ways in:
    fit(loader, step=my_step, epochs=5, monitor={"encoder": enc, "decoder": dec})     # your step
    fit(loader, model=net, loss_fn=F.mse_loss, optimizer=opt, epochs=5)              # the standard step
A step returns the loss (a scalar Tensor or float), or (loss, output) so the output can be checked for collapse
against the batch's target (y of (x, y), x of (x,)). Health checks read each parameter's .grad after the step
returns: zero gradients at the start of a step (as PyTorch loops do), not after the update.
With model=, a batch (x, y) trains model(x) against y and a batch (x,) trains it against x (reconstruction).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

from .. import diagnostics
from .. import distributed as dist
from .._checks import integer
from ..autograd import no_grad
from ..tensor import Tensor


@dataclass
class History:
    """What a fit() run measured. loss / val_loss: one mean per epoch; step_loss: every step's loss;
    health: one record per health check: HealthMonitor's record ("step" counts steps over the whole run,
    "layers" {name: {"grad_norm", "weight_norm", "grad_ratio", "update_ratio"}}, "activations", "spread_ratio",
    "loss_fall", "findings") plus "epoch" and "warnings" (the messages of its findings)."""

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    step_loss: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)
    samples_per_second: list = field(default_factory=list)
    health: list = field(default_factory=list)

    @property
    def warnings(self):
        return [w for record in self.health for w in record["warnings"]]


def _scalar(loss):
    value = loss.item() if hasattr(loss, "item") else float(loss)
    return float(value)


def _batch_size(batch):
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0]) if hasattr(first, "shape") and len(first.shape) else 1


def _split(batch):
    """(inputs, target) of a batch: (x, y) -> (x, y); (x,) or x -> (x, x)."""
    if not isinstance(batch, (tuple, list)):
        return batch, batch
    if len(batch) == 1:
        return batch[0], batch[0]
    if len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(f"batch: the standard step expects (x,) or (x, y), got {len(batch)} arrays; pass step=")


def standard_step(model, loss_fn, optimizer):
    """The step fit() uses with model=: zero grads, forward, loss, backward, update. Returns (loss, output)."""
    _check_callables(model=model, loss_fn=loss_fn)
    if not callable(getattr(optimizer, "step", None)) or not callable(getattr(optimizer, "zero_grad", None)):
        raise TypeError(f"optimizer: expected an optimizer (with step() and zero_grad()), got "
                        f"{type(optimizer).__name__}")

    def step(batch):
        x, target = _split(batch)
        optimizer.zero_grad()                 # gradients start at zero
        output = model(x)                     # forward
        loss = loss_fn(output, target)        # loss
        loss.backward()                       # backward
        optimizer.step()                      # update
        return loss, output

    return step


def evaluation_step(model, loss_fn):
    """Held-out loss of one batch in evaluation mode without recording a graph. Returns (loss, output)."""
    _check_callables(model=model, loss_fn=loss_fn)

    def step(batch):
        x, target = _split(batch)
        with no_grad():
            output = model(x)
            return loss_fn(output, target), output

    return step


def _check_callables(**functions):
    for name, fn in functions.items():
        if not callable(fn):
            raise TypeError(f"{name}: expected a callable (a Module or a function), got {type(fn).__name__}")


def _unpack(result):
    if isinstance(result, tuple):
        if len(result) != 2:
            raise TypeError("step: expected the loss or (loss, output), got a tuple of "
                            f"{len(result)} values")
        return result
    return result, None


def _progress(total, desc, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", unit_scale=True, leave=True, disable=not enabled,
                dynamic_ncols=True)


def _monitored(monitor):
    if monitor is None:
        return []
    return [monitor] if not isinstance(monitor, dict) else list(monitor.values())


def evaluate(data, step=None, *, model=None, loss_fn=None, monitor=None):
    """Mean held-out loss over `data` (weighted by batch size) and the first batch's output. The monitored modules
    (or model) are put in eval mode for the pass and restored after."""
    loss, first_output, _ = _evaluate(data, step, model=model, loss_fn=loss_fn, monitor=monitor)
    return loss, first_output


def _evaluate(data, step=None, *, model=None, loss_fn=None, monitor=None):
    if step is None:
        if model is None or loss_fn is None:
            raise ValueError("evaluate: pass step=, or model= and loss_fn=")
        step = evaluation_step(model, loss_fn)
    if not callable(step):
        raise TypeError(f"step: expected a function of a batch, got {type(step).__name__}")
    modules = _monitored(monitor if monitor is not None else model)
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    total, count, first_output, first_batch = 0.0, 0, None, None
    try:
        for batch in data:
            loss, output = _unpack(step(batch))
            n = _batch_size(batch)
            total += _scalar(loss) * n
            count += n
            if first_output is None:
                first_output, first_batch = output, batch
    finally:
        for m, mode in zip(modules, was_training):
            m.train(mode)
    return (total / count if count else math.nan), first_output, first_batch


def _target(batch):
    """The batch's target Tensor for the collapse check (y of (x, y), x of (x,) or x), or None."""
    try:
        target = _split(batch)[1]
    except ValueError:
        return None
    return target if isinstance(target, Tensor) else None


def fit(train_data, step=None, *, model=None, loss_fn=None, optimizer=None, epochs=1, start_epoch=0,
        val_data=None, val_step=None, monitor=None, health=True, health_every=25, thresholds=None, progress=True,
        plot_dir=None, on_epoch_end=None, history=None):
    """Trains for epochs start_epoch .. epochs-1 and returns the History.

    train_data: any iterable of batches (a gradcore.data.DataLoader; its set_epoch() is called so a resumed run
    sees the same batches as an unbroken one). step(batch) -> loss or (loss, output); or model/loss_fn/optimizer.
    val_data: held-out batches, evaluated after every epoch with val_step (default: the model in eval mode).
    monitor: the Module (or {name: Module}) whose layers health checks inspect (default: model).
    health, health_every, thresholds: run gradcore.diagnostics.HealthMonitor every health_every steps (counted over
    the whole run, starting with the first) with these Thresholds; health=False turns the checks off.
    on_epoch_end(epoch, history): called after each epoch (save a checkpoint there).
    plot_dir: write loss.png there at the end (needs matplotlib).
    Under gradcore.distributed (a DistributedDataParallel model, a sharded loader), only rank 0 shows progress,
    runs the health checks (and prints their warnings: the ranks hold the same weights and averaged gradients, so
    one report per job, as the examples do) and writes the plot; the history holds each rank's own losses.
    """
    if step is None:
        if model is None or loss_fn is None or optimizer is None:
            raise ValueError("fit: pass step=, or all of model=, loss_fn= and optimizer=")
        step = standard_step(model, loss_fn, optimizer)
        if val_step is None:
            val_step = evaluation_step(model, loss_fn)
    if val_data is not None and val_step is None:
        raise ValueError("fit: val_data needs val_step= when a custom step is given")
    if not callable(step):
        raise TypeError(f"step: expected a function of a batch, got {type(step).__name__}")
    epochs = integer(epochs, "epochs", 0)
    start_epoch = integer(start_epoch, "start_epoch", 0)
    monitor = monitor if monitor is not None else model
    history = history if history is not None else History()
    if dist.is_initialized() and dist.get_rank() != 0:  # one progress bar, health report and plot per job: rank 0's
        progress, plot_dir, health = False, None, False
    total = getattr(train_data, "num_samples", None)
    health_monitor = (diagnostics.HealthMonitor(monitor, every=health_every, thresholds=thresholds)
                      if health and monitor is not None else None)
    try:
        _epochs(train_data, step, epochs, start_epoch, val_data, val_step, monitor, health, health_monitor,
                progress, on_epoch_end, history, total)
    finally:
        if health_monitor is not None:
            health_monitor.remove()

    if plot_dir is not None and history.loss:
        from .. import plots

        os.makedirs(plot_dir, exist_ok=True)
        if plots.available():
            plots.loss_curve(os.path.join(plot_dir, "loss.png"), history)
        else:
            print("fit: matplotlib is not installed, so no loss.png (pip install 'gradcore[plots]')")
    return history


def _epochs(train_data, step, epochs, start_epoch, val_data, val_step, monitor, health, health_monitor, progress,
            on_epoch_end, history, total):
    for epoch in range(start_epoch, epochs):
        if hasattr(train_data, "set_epoch"):
            train_data.set_epoch(epoch)
        for m in _monitored(monitor):
            m.train()
        bar = _progress(total, f"epoch {epoch + 1}/{epochs}", progress)
        started, seen, loss_sum, steps = time.perf_counter(), 0, 0.0, 0
        try:
            for batch in train_data:
                loss, output = _unpack(step(batch))
                value = _scalar(loss)
                n = _batch_size(batch)
                history.step_loss.append(value)
                loss_sum += value * n
                seen += n
                steps += 1
                if health_monitor is not None:
                    checked = len(health_monitor.records)
                    watched = output if isinstance(output, Tensor) else None  # a step may return anything
                    health_monitor.step(loss, watched, _target(batch) if watched is not None else None)
                    if len(health_monitor.records) > checked:
                        record = health_monitor.records[-1]
                        record["epoch"] = epoch
                        record["warnings"] = [str(f) for f in record["findings"]]
                        history.health.append(record)
                bar.update(n)
                bar.set_postfix(loss=f"{value:.4g}", mean=f"{loss_sum / seen:.4g}")
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
        history.loss.append(loss_sum / seen if seen else math.nan)
        history.epoch_time.append(elapsed)
        history.samples_per_second.append(seen / elapsed if elapsed > 0 else math.nan)
        line = f"epoch {epoch + 1}/{epochs}: loss {history.loss[-1]:.5g}"
        if val_data is not None:
            val_loss, val_output, val_batch = _evaluate(val_data, val_step, monitor=monitor)
            history.val_loss.append(val_loss)
            line += f", held-out {val_loss:.5g}"
            target = _target(val_batch) if val_output is not None else None
            if health and target is not None:
                findings = diagnostics.check_output(val_output, target, name="held-out output")
                if findings:
                    messages = [str(f) for f in findings]
                    history.health.append({"epoch": epoch, "step": None, "findings": findings, "warnings": messages})
                    diagnostics.warn(messages, stacklevel=4)
        if progress:
            from tqdm.auto import tqdm

            tqdm.write(line + f" ({history.samples_per_second[-1]:.0f} samples/s)")
        if on_epoch_end is not None:
            on_epoch_end(epoch, history)
