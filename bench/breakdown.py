"""Where one call of a benchmarked step spends its time: per phase, per op, per C++ call, and per C++ kernel phase.

    python -m bench.autoencoder_step --breakdown        (or any suite that calls print_breakdown)

Three sources, measured in one instrumented run of `repeats` calls (after a warm-up):
  * wall time of the step's phases: zero_grad (Optimizer.zero_grad), forward (everything not in another phase,
    the loss included), backward (Tensor.backward), optimizer (Optimizer.step);
  * wall time of every `gradcore._core` call (C++: the kernel, its allocation and the pybind11 crossing), each
    attributed to the phase and the autograd op (the internal-form Function's forward or backward) it ran in;
  * the C++ phase timer (csrc/cpu/phase_timer.h): named scopes inside the kernels, summed over threads.
What is left of a phase once its C++ calls are taken out is Python: argument checks, Tensor wrapping, Module calls,
the tape and the engine ("Python/autograd overhead" in the table).

The hooks are installed for the measurement only and removed afterwards: patched class attributes (each internal
Function's forward/backward, Optimizer.step/zero_grad, Tensor.backward) and `gradcore._core` module attributes (the
ops look them up at every call), so the library pays nothing when the breakdown is off. They cost ~0.5 us per
call; the instrumented step time is printed beside the plain one so the overhead shows.
"""
from __future__ import annotations

import contextlib
import statistics
import time

import gradcore
from gradcore import _core
from gradcore.autograd import Function
from gradcore.optim.optimizer import Optimizer
from gradcore.tensor import Tensor

_ENUMS = (_core.UnaryOp, _core.BinaryOp)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _conv_label(name, weight, transposed):
    if weight is None or weight.ndim != 4:
        return name
    c_out, c_in = (weight.shape[1], weight.shape[0]) if transposed else (weight.shape[0], weight.shape[1])
    return f"{name} {c_in}->{c_out}"


def _op_label(fn_self, args, backward):
    """'Unary relu', 'Conv2d 32->64', ...: the op's class and what tells its instances apart."""
    name = type(fn_self).__name__
    op = getattr(fn_self, "op", None) if backward else next((a for a in args if isinstance(a, _ENUMS)), None)
    if isinstance(op, _ENUMS):
        return f"{name} {op.name}"
    if name in ("Conv2d", "ConvTranspose2d", "Conv2dReLU", "ConvTranspose2dReLU"):  # (the last two: fused + ReLU)
        weight = (fn_self.saved_arrays[1] if len(fn_self.saved_arrays) > 1 else None) if backward else args[1]
        return _conv_label(name, weight, name.startswith("ConvTranspose2d"))
    return name


class _Recorder:
    """The counters and the stack of (phase, op) the hooks keep while the step runs."""

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.phase = "forward"
        self.op = None            # label of the Function whose forward/backward is running, or None
        self.phase_s = {}         # phase -> wall seconds
        self.op_s = {}            # (phase, op) -> wall seconds inside the Function's forward/backward
        self.op_calls = {}        # (phase, op) -> calls
        self.core_s = {}          # (phase, op or None, _core function) -> wall seconds
        self.core_calls = {}

    def add(self, table, key, seconds):
        table[key] = table.get(key, 0.0) + seconds

    def core(self, name, fn):
        def timed(*args, **kwargs):
            key = name
            for a in args[:3]:
                if isinstance(a, _ENUMS):
                    key = f"{name}({a.name})"
                    break
            t0 = self.clock()
            try:
                return fn(*args, **kwargs)
            finally:
                full = (self.phase, self.op, key)
                self.add(self.core_s, full, self.clock() - t0)
                self.core_calls[full] = self.core_calls.get(full, 0) + 1
        return timed

    def function(self, method, backward):
        def timed(fn_self, *args, **kwargs):
            outer = self.op
            self.op = _op_label(fn_self, args, backward)
            key = (self.phase, self.op)
            t0 = self.clock()
            try:
                return method(fn_self, *args, **kwargs)
            finally:
                self.add(self.op_s, key, self.clock() - t0)
                self.op_calls[key] = self.op_calls.get(key, 0) + 1
                self.op = outer
        return timed

    def phase_method(self, phase, method):
        def timed(*args, **kwargs):
            outer = self.phase
            self.phase = phase
            t0 = self.clock()
            try:
                return method(*args, **kwargs)
            finally:
                self.add(self.phase_s, phase, self.clock() - t0)
                self.phase = outer
        return timed


@contextlib.contextmanager
def _instrumented(recorder):
    undo = []

    def patch(owner, name, value):
        undo.append((owner, name, owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)))
        setattr(owner, name, value)

    try:
        for name in dir(_core):
            fn = getattr(_core, name)
            if type(fn).__name__ == "builtin_function_or_method" and name not in ("phase_times", "set_phase_timing"):
                patch(_core, name, recorder.core(name, fn))
        for name in ("clone", "to", "astype", "copy_", "fill_"):  # the Array methods that run a kernel
            patch(_core.Array, name, recorder.core(f"Array.{name}", _core.Array.__dict__[name]))
        for cls in set(_subclasses(Function)):
            if cls._tensor_api:
                continue
            for attr, backward in (("forward", False), ("backward", True)):
                if attr in cls.__dict__:
                    patch(cls, attr, recorder.function(cls.__dict__[attr], backward))
        patch(Optimizer, "step", recorder.phase_method("optimizer", Optimizer.__dict__["step"]))
        patch(Optimizer, "zero_grad", recorder.phase_method("zero_grad", Optimizer.__dict__["zero_grad"]))
        patch(Tensor, "backward", recorder.phase_method("backward", Tensor.__dict__["backward"]))
        yield
    finally:
        for owner, name, value in reversed(undo):
            setattr(owner, name, value)


def _hook_cost(clock, calls=20000):
    """Seconds one hook adds to a call (two clock reads and the bookkeeping), measured on a no-op builtin."""
    recorder = _Recorder(clock)
    hooked = recorder.core("calibration", abs)
    t0 = clock()
    for _ in range(calls):
        abs(1)
    plain = clock() - t0
    t0 = clock()
    for _ in range(calls):
        hooked(1)
    return max(clock() - t0 - plain, 0.0) / calls


def measure_breakdown(step, repeats=20, warmup=3, clock=time.perf_counter):
    """Runs step() plain and instrumented; returns a dict of per-step seconds (see print_breakdown).

    clock: time.perf_counter (wall) by default; time.thread_time (this thread's CPU time) gives numbers that hold on
    a loaded machine, but only at one thread (OpenMP workers' time is not the calling thread's)."""
    for _ in range(warmup):
        step()
    plain = []
    for _ in range(repeats):
        t0 = clock()
        step()
        plain.append(clock() - t0)
    recorder = _Recorder(clock)
    with _instrumented(recorder):
        step()  # warm the hooks; then drop what it recorded
        recorder.__init__(clock)
        _core.set_phase_timing(True)
        _core.phase_times(True)
        t0 = clock()
        try:
            for _ in range(repeats):
                step()
        finally:
            total = clock() - t0
            kernel_phases = _core.phase_times(True)
            _core.set_phase_timing(False)
    n = repeats
    hooks = sum(recorder.core_calls.values()) + sum(recorder.op_calls.values()) + repeats * 3
    phase_s = {k: v / n for k, v in recorder.phase_s.items()}
    phase_s["forward"] = total / n - sum(v for k, v in phase_s.items() if k != "forward")
    return dict(
        plain_s=statistics.median(plain), instrumented_s=total / n, phase_s=phase_s,
        op_s={k: v / n for k, v in recorder.op_s.items()},
        op_calls={k: v / n for k, v in recorder.op_calls.items()},
        core_s={k: v / n for k, v in recorder.core_s.items()},
        core_calls={k: v / n for k, v in recorder.core_calls.items()},
        kernel_phases={k: (s / n, calls / n) for k, (s, calls) in kernel_phases.items()},
        hooks_s=hooks / n * _hook_cost(clock), threads=gradcore.get_num_threads(),
        clock="wall" if clock is time.perf_counter else clock.__name__)


_PHASES = ("zero_grad", "forward", "backward", "optimizer")


def breakdown_rows(b):
    """[(phase, what, calls per step, ms per step)] in print order; each phase's rows sum to the phase's time."""
    rows = []
    for phase in _PHASES:
        if phase not in b["phase_s"]:
            continue
        ops = sorted({op for (p, op) in b["op_s"] if p == phase}, key=lambda op: -b["op_s"][(phase, op)])
        inside_ops = 0.0
        for op in ops:
            core = {name: s for (p, o, name), s in b["core_s"].items() if p == phase and o == op}
            op_total = b["op_s"][(phase, op)]
            inside_ops += op_total
            for name, s in sorted(core.items(), key=lambda kv: -kv[1]):
                rows.append((phase, f"{op}: _core.{name}", b["core_calls"][(phase, op, name)], s * 1e3))
            rows.append((phase, f"{op}: Python", b["op_calls"][(phase, op)], (op_total - sum(core.values())) * 1e3))
        outside = {name: s for (p, o, name), s in b["core_s"].items() if p == phase and o is None}
        for name, s in sorted(outside.items(), key=lambda kv: -kv[1]):
            rows.append((phase, f"_core.{name} (outside ops)", b["core_calls"][(phase, None, name)], s * 1e3))
        rest = b["phase_s"][phase] - inside_ops - sum(outside.values())
        rows.append((phase, "Python/autograd overhead (modules, checks, tape, engine)", None, rest * 1e3))
    return rows


def print_breakdown(name, b, top=None):
    """Prints the breakdown of one case (the dict measure_breakdown returned)."""
    total = b["instrumented_s"]
    pct = lambda s: 100.0 * s / total  # noqa: E731
    print(f"\n-- breakdown: {name} ({b['clock']} ms per step; {b['threads']} threads) --")
    print(f"step {b['plain_s'] * 1e3:.3f} ms plain, {total * 1e3:.3f} ms instrumented (the hooks' cost, "
          f"~{b['hooks_s'] * 1e3:.3f} ms, is in the Python rows)")
    print(f"{'phase':10s} {'what':60s} {'calls':>6s} {'ms':>9s} {'share':>7s}")
    python_ms = cpp_ms = 0.0
    for phase in _PHASES:
        if phase in b["phase_s"]:
            s = b["phase_s"][phase]
            print(f"{phase:10s} {'(phase total)':60s} {'':>6s} {s * 1e3:9.3f} {pct(s):6.1f}%")
        for p, what, calls, ms in breakdown_rows(b):
            if p != phase:
                continue
            if "_core." in what:
                cpp_ms += ms
            else:
                python_ms += ms
            if top is not None and ms < top:
                continue
            print(f"{'':10s} {what[:60]:60s} {'' if calls is None else format(calls, '.0f'):>6s} {ms:9.3f} "
                  f"{pct(ms / 1e3):6.1f}%")
    print(f"{'':10s} {'all C++ calls (kernels + allocation + binding)':60s} {'':>6s} {cpp_ms:9.3f} "
          f"{pct(cpp_ms / 1e3):6.1f}%")
    print(f"{'':10s} {'all Python (ops bodies + modules + tape + engine + hooks)':60s} {'':>6s} {python_ms:9.3f} "
          f"{pct(python_ms / 1e3):6.1f}%")
    python_only = python_ms - b["hooks_s"] * 1e3
    print(f"{'':10s} {'  of which Python without the hooks (estimate)':60s} {'':>6s} {python_only:9.3f} "
          f"{pct(python_only / 1e3):6.1f}%")
    if b["kernel_phases"]:
        print("C++ phase timer (thread-ms per step: summed over threads, so a scope two threads run at once for 1 ms "
              "counts 2 ms; top-level scopes run on the calling thread and are wall time):")
        for phase, (s, calls) in sorted(b["kernel_phases"].items()):
            print(f"{'':10s} {phase[:60]:60s} {calls:6.0f} {s * 1e3:9.3f} {pct(s):6.1f}%")
    if top is not None:
        print(f"(rows under {top} ms left out)")


def breakdown_json(b):
    """The breakdown as JSON-ready rows."""
    return dict(plain_ms=b["plain_s"] * 1e3, instrumented_ms=b["instrumented_s"] * 1e3, hooks_ms=b["hooks_s"] * 1e3,
                phases_ms={k: v * 1e3 for k, v in b["phase_s"].items()},
                rows=[dict(phase=p, what=w, calls=c, ms=ms) for p, w, c, ms in breakdown_rows(b)],
                kernel_phases_thread_ms={k: s * 1e3 for k, (s, _) in b["kernel_phases"].items()})
