"""Reverse-mode autograd over a tape.

Each differentiable op is a `Function` subclass. `Function.apply` runs `forward` (on the raw `_core.Array`s for the
internal ops, on Tensors under no_grad for a user's own op: see Function), wraps the outputs as Tensors whose `_node`
is the Function instance (the ctx), and records the inputs.
`backward` walks the nodes in reverse topological order, hands each node the gradients of its outputs and
accumulates the gradients it returns into its inputs (sums when a tensor is used more than once).
Nothing below this layer knows about gradients; ops only provide "the backward kernels of op X".
"""
from __future__ import annotations

import functools
import inspect
import threading

from . import _core
from .hooks import RemovableHandle
from .tensor import FLOATING, Tensor

_Array = _core.Array
_new_tensor = object.__new__


class _State(threading.local):
    # A class default, so that reading the flag on a thread that never set it is an attribute lookup: through
    # getattr(local, "enabled", True) it raised and caught an AttributeError inside, ~1 us on every op.
    enabled = True


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


class _GradMode:
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        self.previous = is_grad_enabled()
        _state.enabled = self.enabled

    def __exit__(self, *exc):
        _state.enabled = self.previous
        return False

    def __call__(self, fn):
        """As a decorator: each call keeps its own previous mode (a nested, recursive call must not overwrite the
        outer call's), set and restored around fn without building a context object per call (Optimizer.step)."""
        enabled = self.enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            previous = _state.enabled
            _state.enabled = enabled
            try:
                return fn(*args, **kwargs)
            finally:
                _state.enabled = previous

        return wrapper


def no_grad(fn=None):
    """Context manager and decorator (`@no_grad()` or `@no_grad`): ops inside record no graph."""
    return _GradMode(False) if fn is None else _GradMode(False)(fn)


def enable_grad(fn=None):
    return _GradMode(True) if fn is None else _GradMode(True)(fn)


class Function:
    """Base of every differentiable op, in two spellings: PyTorch's public one, and the internal one over arrays.

    The public form (a user's own op; PyTorch's `torch.autograd.Function`): static methods over Tensors.

        class Softsign(gradcore.Function):
            # y = scale * x / (1 + |x|);  dy/dx = scale / (1 + |x|)^2

            @staticmethod
            def forward(ctx, x, scale=1.0):
                ctx.save_for_backward(x)    # Tensors backward needs
                ctx.scale = scale           # anything else: a plain attribute of ctx
                return scale * x / (1 + x.abs())        # ops here record no graph (forward runs under no_grad)

            @staticmethod
            def backward(ctx, grad_y):
                (x,) = ctx.saved_tensors
                grad_x = grad_y * ctx.scale / (1 + x.abs()) ** 2 if ctx.needs_input_grad[0] else None
                return grad_x, None         # one gradient per argument of forward; None for scale

        y = Softsign.apply(x, 2.0)          # call it through apply, never forward() directly
        gradcore.gradcheck(Softsign.apply, [x, 2.0])   # float64 finite differences check backward

    forward(ctx, *args) gets the Tensors as given (and any other arguments) and returns a Tensor or a tuple of
    Tensors; it runs under no_grad(), and apply marks its outputs as made by this Function. backward(ctx,
    *grad_outputs) gets one gradient Tensor per output and returns one per positional argument of forward: a
    Tensor of that argument's shape, or None (no gradient, or a non-Tensor argument). It may use any gradcore
    op; it also runs under no_grad() (no double backward). `ctx.needs_input_grad[i]` says which gradients are
    wanted, `ctx.save_for_backward(*tensors)` / `ctx.saved_tensors` keep Tensors for backward (an in-place
    change to one before backward raises), `ctx.mark_non_differentiable(*outputs)` marks outputs (indices, masks)
    that get no gradient. A backward returning the wrong number of gradients, a non-Tensor, or a gradient of
    the wrong shape or device raises RuntimeError/TypeError naming the Function and the position.

    The internal form (the ops in gradcore.ops): instance methods, `forward(self, *args)` over `_core.Array`s
    (Tensors arrive unwrapped) and `backward(self, *grad_outputs)` over Arrays, the instance being the ctx;
    `self.saved` returns the saved Arrays. It skips the wrapping and checks, which matters for per-op overhead.
    Which form a subclass uses is decided once, when the class is made: a @staticmethod forward is the public one.
    """

    __slots__ = ("inputs", "needs_input_grad", "saved_arrays", "saved_versions", "output_meta", "released",
                 "__dict__")
    _tensor_api = False  # set per subclass by __init_subclass__
    # Gradient ownership (internal form only; see _propagate). fresh_gradients: a class's promise that every Array
    # its backward returns was allocated by that backward, is kept nowhere else (not in the ctx) and is returned
    # for one input only, so that the engine may hand it on without a copy (into a leaf's .grad) or let the next
    # node overwrite it. grad_owned: set on a node while its backward runs when the engine holds the only
    # reference to its (single) output's gradient, which backward may then overwrite in place.
    fresh_gradients = False
    grad_owned = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._tensor_api = isinstance(inspect.getattr_static(cls, "forward"), staticmethod)

    def save_for_backward(self, *tensors):
        """Keeps Tensors (or Arrays, or None) for backward, with their version counters: one written in place
        before backward (fill_, copy_, an optimizer step) would give a wrong gradient, so backward then raises."""
        arrays, versions = [], []
        for index, t in enumerate(tensors):
            if type(t) is not _Array:  # (the internal ops save Arrays: one type test, no isinstance chain)
                if isinstance(t, Tensor):
                    t = t._data
                elif t is None:
                    arrays.append(None)
                    versions.append(None)
                    continue
                elif not isinstance(t, _Array):
                    raise TypeError(f"{type(self).__name__}.save_for_backward: argument {index}: expected a Tensor "
                                    f"or None, got {type(t).__name__} (keep other values as attributes of ctx)")
            arrays.append(t)
            versions.append(t._version)
        self.saved_arrays = tuple(arrays)
        self.saved_versions = tuple(versions)

    @property
    def saved(self):
        if self.released:
            raise RuntimeError(
                f"{type(self).__name__}: backward through this graph a second time; its saved values were freed. "
                "Pass retain_graph=True to the first backward() to keep them."
            )
        for index, (a, version) in enumerate(zip(self.saved_arrays, self.saved_versions)):
            if version is not None and a._version != version:
                raise RuntimeError(
                    f"{type(self).__name__}: one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: saved value {index}, of shape {tuple(a.shape)} and dtype {a.dtype}, "
                    f"is at version {a._version}; expected version {version} instead. Clone it before modifying it "
                    "in place, or modify it after backward().")
        return self.saved_arrays

    @property
    def saved_tensors(self):
        """What save_for_backward kept, as Tensors (None stays None)."""
        return tuple(None if a is None else Tensor(a) for a in self.saved)

    def mark_non_differentiable(self, *outputs):
        """Outputs of forward that get no gradient (indices, masks): they come out with requires_grad=False, and
        backward receives zeros for them."""
        for index, out in enumerate(outputs):
            if not isinstance(out, Tensor):
                raise TypeError(f"{type(self).__name__}.mark_non_differentiable: argument {index}: expected an "
                                f"output Tensor of forward, got {type(out).__name__}")
        self.__dict__.setdefault("_non_differentiable", set()).update(id(out._data) for out in outputs)

    @classmethod
    def apply(cls, *args, **kwargs):
        if cls._tensor_api:
            return _apply_tensor_function(cls, args, kwargs)
        ctx = cls()
        ctx.saved_arrays = ctx.saved_versions = ()
        ctx.released = False
        # The arguments in one loop (two comprehensions cost two more frames), and a single output's own path below:
        # this runs for every op.
        raw, needs = [], []
        for a in args:
            if isinstance(a, Tensor):
                raw.append(a._data)
                needs.append(a._requires_grad)
            else:
                raw.append(a)
                needs.append(False)
        ctx.needs_input_grad = needs = tuple(needs)
        record = True in needs and _state.enabled
        result = ctx.forward(*raw, **kwargs)
        if type(result) is _Array:
            # An int64 or bool output (a comparison, argmax's indices) is not differentiable: never part of the graph.
            # The Tensor is filled here, not through __init__, which would check the Array and its dtype again.
            out = _new_tensor(Tensor)
            out._data = result
            out.grad = None
            out._output_index = 0
            if record:
                dtype = result.dtype
                ctx.inputs = args
                ctx.output_meta = ((result.shape, dtype, result.device),)
                if dtype in FLOATING:
                    out._requires_grad = True
                    out._node = ctx
                    return out
            out._requires_grad = False
            out._node = None
            return out
        if not isinstance(result, tuple):
            return Tensor(result)  # (not an Array: raises, naming what Tensor takes)
        outputs = tuple([Tensor(a, requires_grad=record and a.dtype in FLOATING) for a in result])
        if record:
            ctx.inputs = args
            ctx.output_meta = tuple((a.shape, a.dtype, a.device) for a in result)
            for index, out in enumerate(outputs):
                if out._requires_grad:
                    out._node = ctx
                    out._output_index = index
        return outputs

    def forward(self, *args):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, *grad_outputs):  # pragma: no cover - abstract
        raise NotImplementedError


def _apply_tensor_function(cls, args, kwargs):
    """Function.apply for the public form: forward over Tensors under no_grad, outputs wrapped as this node's."""
    name = cls.__name__
    for key, value in kwargs.items():
        if isinstance(value, Tensor) and value.requires_grad:
            raise TypeError(f"{name}.apply: argument {key!r} is a Tensor that requires grad, passed by keyword; "
                            "pass Tensors positionally, so that backward can return their gradients")
    ctx = cls()
    ctx.saved_arrays = ctx.saved_versions = ()
    ctx.released = False
    needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    ctx.needs_input_grad = needs
    record = is_grad_enabled() and any(needs)
    with no_grad():
        result = cls.forward(ctx, *args, **kwargs)
    multiple = isinstance(result, tuple)
    returned = result if multiple else (result,)
    for index, out in enumerate(returned):
        if not isinstance(out, Tensor):
            raise TypeError(f"{name}.forward: expected it to return a Tensor or a tuple of Tensors, got "
                            f"{type(out).__name__}" + (f" at position {index}" if multiple else ""))
    # New Tensor objects over the same storage: an input returned as it is becomes an output of this node
    # without its own identity (a leaf, say) changing.
    # Outputs marked non-differentiable, and integer or bool ones (indices, masks), get no gradient.
    constant = ctx.__dict__.pop("_non_differentiable", set())
    outputs = tuple(Tensor(out._data, requires_grad=record and id(out._data) not in constant
                           and out.dtype in FLOATING) for out in returned)
    if record:
        ctx.inputs = args
        ctx.output_meta = tuple((out.shape, out.dtype, out.device) for out in returned)
        for index, out in enumerate(outputs):
            if out.requires_grad:
                out._node = ctx
                out._output_index = index
    return outputs if multiple else outputs[0]


def _call_tensor_backward(node, grads):
    """backward of a public-form Function: Tensors in, its returned gradients checked and unwrapped to Arrays."""
    cls = type(node)
    name = cls.__name__
    with no_grad():
        result = cls.backward(node, *(Tensor(g) for g in grads))
    if not isinstance(result, tuple):
        result = (result,)
    expected = len(node.inputs)
    if len(result) > expected and all(g is None for g in result[expected:]):
        result = result[:expected]  # PyTorch's rule: trailing Nones beyond the arguments are allowed
    if len(result) != expected:
        raise RuntimeError(f"{name}.backward returned {len(result)} gradient{'s' if len(result) != 1 else ''}; "
                           f"expected {expected}, one per argument of forward (None for an argument without one)")
    arrays = []
    for index, (g, inp) in enumerate(zip(result, node.inputs)):
        if g is None:
            arrays.append(None)
            continue
        if not isinstance(g, Tensor):
            raise TypeError(f"{name}.backward: gradient {index}: expected a Tensor or None, got {type(g).__name__}")
        if not isinstance(inp, Tensor):
            raise RuntimeError(f"{name}.backward: gradient {index}: returned a Tensor for argument {index} of "
                               f"forward, which is a {type(inp).__name__}, not a Tensor; return None for it")
        if g.shape != inp.shape:
            raise RuntimeError(f"{name}.backward: gradient {index}: has shape {g.shape}; expected {inp.shape}, the "
                               f"shape of argument {index} of forward")
        if g.device != inp.device:
            raise RuntimeError(f"{name}.backward: gradient {index}: is on {g.device}; expected {inp.device}, the "
                               f"device of argument {index} of forward")
        data = g._data
        if g.dtype != inp.dtype:  # PyTorch casts a gradient to its input's dtype
            data = data.astype(inp.dtype)
        arrays.append(data)
    return tuple(arrays)


def _accumulate(current, incoming):
    if current is None:
        return incoming
    return _core.binary(current, incoming, _core.BinaryOp.add)


def _topological_nodes(roots):
    """Nodes reachable from the roots, each after every node that consumes its outputs."""
    order, visited = [], set()
    for root in roots:
        if root._node is None or id(root._node) in visited:
            continue
        stack = [(root._node, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for inp in node.inputs:  # (isinstance first: getattr(3, "_node", None) raises and catches inside)
                if isinstance(inp, Tensor) and inp._node is not None and id(inp._node) not in visited:
                    stack.append((inp._node, False))
    order.reverse()
    return order


_backward_callbacks = {}  # key -> fn, run once at the end of the next backward that fills `.grad`


def queue_callback(key, fn):
    """Runs fn() once when the next backward into `.grad` has finished (PyTorch's engine queue_callback; how
    DistributedDataParallel averages gradients once they are all final). One callback per key: queueing again
    under the same key replaces it."""
    _backward_callbacks[key] = fn


# ---- post-accumulate-grad hooks ------------------------------------------------------------------------------
# How the engine knows a leaf's gradient is complete: before propagating, it counts for every hooked leaf the
# edges into it, one per (node, input position) among the nodes this backward visits, plus one per time the leaf
# is itself an output. Each node visited in topological order, whether it ran or received no gradient, then
# settles its edges; the leaf's count reaching zero means no later node can add to its `.grad`, so its hooks run
# then, once per backward, while the rest of backward still runs (what DistributedDataParallel overlaps with).
_live_post_hooks = 0  # hooks registered and not removed: zero keeps the engine on its plain path


def _post_hook_removed():
    global _live_post_hooks
    _live_post_hooks -= 1


def _register_post_accumulate_grad_hook(self, hook):
    """Calls hook(tensor) once per backward, after the gradient of this leaf has been fully accumulated into
    `.grad` (every use of the leaf counted), as PyTorch's Tensor.register_post_accumulate_grad_hook; it may read
    and change `.grad` in place. Not called when no gradient reached the leaf, nor by autograd.grad() (which
    leaves `.grad` alone). Hooks run in registration order. Returns a handle whose remove() unregisters it."""
    global _live_post_hooks
    if not callable(hook):
        raise TypeError(f"hook: expected a callable hook(tensor), got {type(hook).__name__}")
    if not self.requires_grad:
        raise RuntimeError("register_post_accumulate_grad_hook: cannot register a hook on a tensor that does not "
                           "require grad")
    if self._node is not None:
        raise RuntimeError("register_post_accumulate_grad_hook: post accumulate grad hooks cannot be registered on "
                           "non-leaf tensors")
    hooks = getattr(self, "_post_accumulate_grad_hooks", None)
    if hooks is None:
        hooks = self._post_accumulate_grad_hooks = {}
    _live_post_hooks += 1
    return RemovableHandle(hooks, hook, on_remove=_post_hook_removed)


Tensor.register_post_accumulate_grad_hook = _register_post_accumulate_grad_hook


class _LeafWatch:
    """The hooked leaves of one backward: edges still to come per leaf, and which leaves got a gradient."""

    def __init__(self, outputs, nodes):
        self.pending, self.received = {}, set()
        for out in outputs:
            self._count(out)
        for node in nodes:
            for inp in node.inputs:
                self._count(inp)

    def _count(self, t):
        if (isinstance(t, Tensor) and t._node is None and t._requires_grad
                and getattr(t, "_post_accumulate_grad_hooks", None)):
            key = id(t)
            self.pending[key] = self.pending.get(key, 0) + 1

    def settle(self, t, got_gradient):
        """One edge into t is done (got_gradient: it added to t.grad); runs t's hooks once the last one is."""
        key = id(t)
        left = self.pending.get(key)
        if left is None:
            return
        if got_gradient:
            self.received.add(key)
        if left > 1:
            self.pending[key] = left - 1
            return
        del self.pending[key]
        if key in self.received:
            for hook in list(t._post_accumulate_grad_hooks.values()):
                hook(t)


def run_backward(outputs, grad_outputs, retain_graph=False, capture=None):
    """Propagates grad_outputs from outputs. Leaf gradients go into `.grad`, or, when `capture` maps
    id(tensor) -> None for the tensors wanted, into that dict instead (leaves' `.grad` untouched)."""
    _propagate(outputs, grad_outputs, retain_graph, capture)
    if capture is None and _backward_callbacks:
        callbacks = list(_backward_callbacks.values())
        _backward_callbacks.clear()
        for fn in callbacks:
            fn()


def _propagate(outputs, grad_outputs, retain_graph, capture):
    # Gradients the engine alone holds: ids of the Arrays now in node_grads' slots that came from a backward with
    # fresh_gradients (or from adding two gradients here), whose storage no other Array shares and which went
    # nowhere else (not into `capture`). A leaf takes such a gradient as its .grad without the copy that a shared
    # one needs (PyTorch steals it likewise), and a node gets it to overwrite (grad_owned). An id leaves the set
    # when its Array leaves the slot, before the Array can be freed and its id reused.
    owned = set()
    node_grads = {}
    leaf_outputs = []
    for out, g in zip(outputs, grad_outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"outputs: expected Tensors, got {type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError("backward: the output does not require grad (no input requires grad, or it was "
                               "computed under no_grad())")
        if capture is not None and id(out) in capture:  # an output that is also an input: d out / d out = seed
            capture[id(out)] = _accumulate(capture[id(out)], g)
        if out._node is None:  # a leaf was passed as output
            if capture is None:
                out._accumulate_grad(g)
                leaf_outputs.append(out)
            continue
        slots = node_grads.setdefault(id(out._node), [None] * len(out._node.output_meta))
        slots[out._output_index] = _accumulate(slots[out._output_index], g)

    order = _topological_nodes(outputs)
    watch = _LeafWatch(outputs, order) if capture is None and _live_post_hooks else None
    if watch is not None:
        for out in leaf_outputs:
            watch.settle(out, True)
    for node in order:
        slots = node_grads.pop(id(node), None)
        if slots is None:
            if watch is not None:  # no gradient reached this node: its edges into leaves are settled empty
                for inp in node.inputs:
                    watch.settle(inp, False)
            continue
        grad_owned = False
        if len(slots) == 1 and slots[0] is not None:  # the usual single output that received its gradient
            grads = slots
            if owned and id(slots[0]) in owned:
                owned.discard(id(slots[0]))
                grad_owned = True
        else:
            if owned:
                for g in slots:
                    owned.discard(id(g))
            grads = [
                g if g is not None else _core.zeros(shape, dtype, device)
                for g, (shape, dtype, device) in zip(slots, node.output_meta)
            ]
        if node._tensor_api:
            input_grads = _call_tensor_backward(node, grads)
        elif grad_owned:
            node.grad_owned = True
            try:
                input_grads = node.backward(*grads)
            finally:
                node.grad_owned = False
        else:
            input_grads = node.backward(*grads)
        del grads, slots  # (an overwritten gradient's memory goes back now)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if not retain_graph:
            node.saved_arrays = node.saved_versions = ()
            node.released = True
        fresh = node.fresh_gradients
        for inp, g in zip(node.inputs, input_grads):
            if g is None or not isinstance(inp, Tensor) or not inp._requires_grad:
                continue
            if not _core.same_layout(g, inp._data):  # shape, dtype and device in one call
                raise RuntimeError(f"{type(node).__name__}.backward returned a gradient of shape {g.shape}, "
                                   f"{g.dtype} on {g.device} for an input of shape {inp.shape}, {inp.dtype} "
                                   f"on {inp.device}")
            sole = fresh and g._storage_users == 1
            if capture is not None and id(inp) in capture:
                capture[id(inp)] = _accumulate(capture[id(inp)], g)
                sole = False  # (capture may now hold g itself)
            if inp._node is None:
                if capture is None:
                    inp._accumulate_grad(g, sole)
            else:
                producer = inp._node
                slots = node_grads.get(id(producer))
                if slots is None:
                    slots = node_grads[id(producer)] = [None] * len(producer.output_meta)
                current = slots[inp._output_index]
                if current is None:
                    slots[inp._output_index] = g
                    if sole:
                        owned.add(id(g))
                else:
                    owned.discard(id(current))
                    slots[inp._output_index] = summed = _accumulate(current, g)
                    owned.add(id(summed))  # a new Array that only this slot holds
        if watch is not None:  # after the whole node, so a leaf used twice by it counts both gradients first
            for inp, g in zip(node.inputs, input_grads):
                watch.settle(inp, g is not None)
            for inp in node.inputs[len(input_grads):]:
                watch.settle(inp, False)


def grad(outputs, inputs, grad_outputs=None, retain_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as a tuple of Tensors (`.grad` untouched).

    `outputs` is a Tensor or a sequence; a scalar output needs no grad_outputs. An input that the outputs do not
    depend on raises, unless allow_unused=True, which returns None for it (PyTorch's rule).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    if not single and not isinstance(inputs, (list, tuple)):
        raise TypeError(f"inputs: expected a Tensor or a sequence of Tensors, got {type(inputs).__name__}")
    inputs = [inputs] if single else list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"inputs[{i}]: expected a Tensor, got {type(t).__name__}")
    grad_outputs = _seed_grads(outputs, grad_outputs)
    capture = {id(t): None for t in inputs}
    run_backward(outputs, grad_outputs, retain_graph=retain_graph, capture=capture)
    result = []
    # Ops pass a gradient on without copying (add hands g to both operands), so two results, or a result and a
    # caller's grad_output, may share memory: copy those, so updating one gradient in place never changes another.
    taken = {seed.data_ptr for seed in grad_outputs if seed.numel}
    for i, t in enumerate(inputs):
        g = capture[id(t)]
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"inputs[{i}]: the outputs do not depend on this tensor; pass allow_unused=True "
                                   "to get None for it")
            result.append(None)
            continue
        if g.numel and g.data_ptr in taken:
            g = g.clone()
        taken.add(g.data_ptr)
        result.append(Tensor(g))
    return result[0] if single else tuple(result)


def _seed_grads(outputs, grad_outputs, argument="grad_outputs"):
    """The gradient each output starts from: ones for a scalar output, else the given Tensor (checked)."""
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        name = f"{argument}[{i}]" if argument == "grad_outputs" else argument
        if g is None:
            if out.numel != 1:
                raise RuntimeError(f"{name}: needed for a non-scalar output of shape {out.shape} "
                                   "(only a scalar output's gradient defaults to 1)")
            seeds.append(_core.full(list(out.shape), 1.0, out.dtype, out.device))
        else:
            if not isinstance(g, Tensor):
                raise TypeError(f"{name}: expected a Tensor, got {type(g).__name__}")
            if g.shape != out.shape:
                raise ValueError(f"{name}: expected shape {out.shape}, got {g.shape}")
            if g.dtype != out.dtype:
                raise TypeError(f"{name}: expected dtype {out.dtype} (the output's), got {g.dtype}")
            if g.device != out.device:
                raise ValueError(f"{name}: expected device {out.device} (the output's), got {g.device}")
            seeds.append(g._data)
    return seeds


def value_and_grad(fn, argnums=0, has_aux=False):
    """Returns a function computing (fn(*args), gradients of fn with respect to args[argnums]).

    fn must return a scalar Tensor, or (scalar, aux) when has_aux=True. An argument at argnums may be a Tensor
    or a list/tuple/dict of Tensors (a model's parameters), and its gradient has the same structure.
    """

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        args = list(args)
        wanted = []
        for n in nums:
            args[n] = _require_grad_tree(args[n], wanted)
        with enable_grad():
            result = fn(*args, **kwargs)
        value, aux = (result if has_aux else (result, None))
        if not isinstance(value, Tensor) or value.numel != 1:
            raise TypeError("fn: expected a scalar Tensor as the value" + (" (first of (value, aux))" if has_aux else ""))
        grads = grad(value, wanted, allow_unused=True) if wanted else ()
        grads = [g if g is not None else t.zeros_like() for g, t in zip(grads, wanted)]
        it = iter(grads)
        structured = tuple(_rebuild_tree(args[n], it) for n in nums)
        out_grads = structured[0] if isinstance(argnums, int) else structured
        value = value.detach()
        return ((value, aux), out_grads) if has_aux else (value, out_grads)

    return wrapped


def _require_grad_tree(obj, wanted):
    if isinstance(obj, Tensor):
        leaf = obj if (obj.requires_grad and obj._node is None) else obj.detach().requires_grad_(True)
        wanted.append(leaf)
        return leaf
    if isinstance(obj, (list, tuple)):
        return type(obj)(_require_grad_tree(o, wanted) for o in obj)
    if isinstance(obj, dict):
        return {k: _require_grad_tree(v, wanted) for k, v in obj.items()}
    raise TypeError(f"argnums: expected Tensors (or lists/tuples/dicts of them), got {type(obj).__name__}")


def _rebuild_tree(obj, it):
    if isinstance(obj, Tensor):
        return next(it)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_rebuild_tree(o, it) for o in obj)
    return {k: _rebuild_tree(v, it) for k, v in obj.items()}


def _tensor_backward(self, gradient=None, retain_graph=False):
    """Accumulates d(self)/d(leaf) into every leaf's `.grad`. A non-scalar self needs `gradient`."""
    seeds = _seed_grads([self], None if gradient is None else [gradient], argument="gradient")
    run_backward([self], seeds, retain_graph=retain_graph)


Tensor.backward = _tensor_backward  # attached here: the tape builds on Tensor, not the other way round
