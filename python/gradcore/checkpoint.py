"""Checkpoints: gradcore.save / gradcore.load in the safetensors format, written atomically.

File layout (one .safetensors file, readable by any safetensors reader):
  tensors   "model/<name>"        every parameter and buffer of the module (or entry of the state dict)
            "optimizer/<n>"       every array found in the optimizer's state_dict(), numbered in walk order
  metadata  "gradcore"            JSON: {"format": 1, "optimizer": <the optimizer state_dict with each array
                                  replaced by {"__tensor__": "optimizer/<n>"}>, "metadata": {user metadata}}
safetensors metadata values must be strings, hence one JSON document. The optimizer's state_dict is stored
structurally (PyTorch's shape: {"state": {index: {name: array}}, "param_groups": [{..., "params": [...]}]}),
with tuples and non-string dictionary keys tagged so that they come back as they went in.

Atomic: the bytes go to a temporary file in the destination's directory, which is flushed and fsync'ed, then
os.replace()d over the destination (atomic on POSIX and Windows) and the directory is fsync'ed. A crash at any
point leaves either the old file or the new one, never a torn file. The temporary file's name holds the writer's
host and process id; the next save() to that path from the same host removes temporary files whose writer is no
longer running (a save killed mid-write would otherwise leave a file as large as the checkpoint behind for ever).
Temporaries of other hosts (a shared file system) are left alone: their process ids mean nothing here.

Data-parallel runs: under gradcore.distributed, save() writes from rank 0 only (the ranks hold the same
weights); the other ranks write nothing and get None back, so every rank may call it, or only rank 0 (a barrier()
before other ranks load it). A DistributedDataParallel model is saved as the module it wraps: its entries carry
no "module." prefix, so the file loads into the plain model, with any world size, or into a wrapped one.
Files written from a wrapped model's own state_dict() (every key "module.<name>") load into a plain model too:
the prefix is dropped, as PyTorch's consume_prefix_in_state_dict_if_present does.

Integrity: the metadata holds a CRC-32 of every tensor's bytes ("checksums") and one of the metadata itself
("header_checksum", over its canonical JSON), verified by load(), so a flipped bit raises instead of loading
silently. Files written before checksums existed load without the check.
"""
from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import warnings
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from . import distributed as dist
from .nn.module import Module
from .nn.parallel import DistributedDataParallel
from .tensor import Tensor, tensor as make_tensor

FORMAT = 1
_MODEL = "model/"
_OPTIM = "optimizer/"


@dataclass
class Checkpoint:
    """What gradcore.load returns: the module state (name -> numpy array), the optimizer's state_dict (or None)
    and the user metadata given to save()."""

    state: "OrderedDict[str, np.ndarray]"
    optimizer: dict | None = None
    metadata: dict = field(default_factory=dict)
    missing_keys: list = field(default_factory=list)     # module entries the checkpoint lacked (strict=False)
    unexpected_keys: list = field(default_factory=list)  # checkpoint entries no module took (strict=False)


# ---- state of modules -----------------------------------------------------------------------------------------
def _unwrapped(module):
    """The module a DistributedDataParallel wraps (what is saved and loaded), else the module itself."""
    return module.module if isinstance(module, DistributedDataParallel) else module


_WRAPPED_PREFIX = "module."


def _without_wrapper_prefix(state, module):
    """A state whose every key is "module.<name>" (a wrapped model's state_dict()) loads into the plain module
    without the prefix, unless that module itself has a child named "module"."""
    if (state and isinstance(module, Module) and "module" not in module._modules
            and all(k.startswith(_WRAPPED_PREFIX) for k in state)):
        return OrderedDict((k[len(_WRAPPED_PREFIX):], v) for k, v in state.items())
    return state


def _module_state(module_or_state):
    """name -> numpy array from a Module, a {prefix: Module} mapping, or a {name: array or Tensor} mapping."""
    module_or_state = _unwrapped(module_or_state)
    if isinstance(module_or_state, Module):
        return OrderedDict((name, _host_array(t, name)) for name, t in module_or_state.state_dict().items())
    if not isinstance(module_or_state, dict):
        raise TypeError(f"module_or_state: expected a gradcore.nn.Module or a dict, got "
                        f"{type(module_or_state).__name__}")
    state = OrderedDict()
    for key, value in module_or_state.items():
        if not isinstance(key, str):
            raise TypeError(f"module_or_state: keys must be strings, got {key!r}")
        if isinstance(value, Module):
            for name, t in _unwrapped(value).state_dict().items():
                state[f"{key}.{name}"] = _host_array(t, f"{key}.{name}")
        else:
            state[key] = _host_array(value, f"module_or_state[{key!r}]")
    return state


def _host_array(value, where):
    if isinstance(value, Tensor):
        return np.array(value.numpy(), copy=True)
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"{where}: expected a numpy array or a gradcore.Tensor, got {type(value).__name__}")


def _contiguous(array):
    """C-contiguous, keeping 0-d arrays 0-d (np.ascontiguousarray would make them 1-d)."""
    return np.require(array, requirements="C")


def _named_modules(module):
    """[(prefix, Module)] of a Module (prefix "") or a {prefix: Module} mapping (wrapped models unwrapped)."""
    if isinstance(module, Module):
        return [("", _unwrapped(module))]
    if not isinstance(module, dict) or not all(isinstance(m, Module) for m in module.values()):
        raise TypeError(f"module: expected a gradcore.nn.Module or a dict of them, got {type(module).__name__}")
    return [(prefix + ".", _unwrapped(m)) for prefix, m in module.items()]


def _check_dtypes(modules, state, strict, path):
    """A checkpoint entry of another dtype than its parameter raises (strict) or is cast with a warning."""
    mismatched = []
    for prefix, m in modules:
        for name, target in list(m.named_parameters()) + list(m.named_buffers()):
            value = state.get(prefix + name)
            if value is not None and value.dtype != np.dtype(target.dtype):
                mismatched.append(f"{prefix + name} ({value.dtype} in the file, {target.dtype} in the module)")
    if not mismatched:
        return
    if strict:
        raise TypeError(f"load: {path!r} holds entries of another dtype than the module's: {', '.join(mismatched)}; "
                        "convert the module (.float() / .double()) first, or pass strict=False to cast them")
    warnings.warn(f"load: {path!r}: cast to the module's dtype: {', '.join(mismatched)}", stacklevel=3)


def _load_into(module, state, strict, path):
    """Loads `state` into a Module or a {prefix: Module} mapping; returns (missing keys, unexpected keys)."""
    modules = _named_modules(module)
    if len(modules) == 1 and modules[0][0] == "":
        state = _without_wrapper_prefix(state, modules[0][1])
    _check_dtypes(modules, state, strict, path)
    missing, claimed = [], set()
    for prefix, m in modules:
        part = OrderedDict((k[len(prefix):], v) for k, v in state.items() if k.startswith(prefix))
        claimed.update(prefix + k for k in part)
        part_missing, _ = m.load_state_dict(part, strict=strict)
        missing += [prefix + k for k in part_missing]
    unexpected = [k for k in state if k not in claimed]
    if strict and unexpected:
        raise KeyError(f"load: checkpoint entries {unexpected} belong to none of the modules "
                       f"{[p.rstrip('.') for p, _ in modules]}")
    if missing or unexpected:
        warnings.warn(f"load: {path!r} with strict=False: missing keys {missing} (left as they were), unexpected "
                      f"keys {unexpected} (ignored)", stacklevel=3)
    return missing, unexpected


# ---- optimizer state: arrays out into tensors, the rest into JSON ------------------------------------------------
def _encode(obj, tensors):
    """A JSON-able copy of obj in which every array is moved into `tensors` and replaced by a reference."""
    if isinstance(obj, (Tensor, np.ndarray)):
        key = f"{_OPTIM}{len(tensors)}"
        tensors[key] = _contiguous(_host_array(obj, "optimizer state"))
        return {"__tensor__": key, "gradcore": isinstance(obj, Tensor)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors) for k, v in obj.items()}
        return {"__items__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    raise TypeError(f"optimizer: state_dict() holds a {type(obj).__name__}, which a checkpoint cannot store")


def _decode(obj, tensors, device):
    if isinstance(obj, list):
        return [_decode(v, tensors, device) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        array = tensors[obj["__tensor__"]]
        if obj.get("gradcore") and array.dtype.kind in "fib":  # a gradcore Tensor of any dtype comes back one
            return make_tensor(array, dtype=array.dtype, device=device)
        return array
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors, device) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {_hashable(_decode(k, tensors, device)): _decode(v, tensors, device) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors, device) for k, v in obj.items()}


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


# ---- atomic file write --------------------------------------------------------------------------------------------
def _process_running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _writer_tag():
    """host-pid of this process, as written into temporary file names (dots and dashes of the host name dropped)."""
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


def _remove_stale_temporaries(directory, base):
    """Removes the temporary files of earlier saves to `base` on this host whose writer (the pid) is gone."""
    pattern = re.compile(r"\." + re.escape(base) + r"\.(\w+)-(\d+)\.[^.]+\.tmp\Z")
    host = _writer_tag().rsplit("-", 1)[0]
    for name in os.listdir(directory):
        match = pattern.match(name)
        if not match or match.group(1) != host:
            continue
        pid = int(match.group(2))
        if pid != os.getpid() and not _process_running(pid):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:  # another process cleaned it first
                pass


def _write_atomic(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    _remove_stale_temporaries(directory, base)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.{_writer_tag()}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save(path, module_or_state, optimizer=None, **metadata):
    """Writes a checkpoint: the module's parameters and buffers (or a {name: array} state, or {prefix: Module}),
    the optimizer's state_dict() when given, and any JSON-serialisable keyword metadata (epoch=..., step=...).

        gradcore.save("ae.safetensors", {"encoder": enc, "decoder": dec}, optimizer=opt, epoch=3)

    Returns the path written; under gradcore.distributed, ranks other than 0 write nothing and return None.
    """
    from safetensors.numpy import save as safetensors_bytes

    path = _path(path)
    if dist.is_initialized() and dist.get_rank() != 0:
        return None  # rank 0 holds the same weights and writes the one file
    tensors = OrderedDict((_MODEL + k, _contiguous(v)) for k, v in _module_state(module_or_state).items())
    header = {"format": FORMAT, "optimizer": None, "metadata": metadata}
    if optimizer is not None:
        if not hasattr(optimizer, "state_dict"):
            raise TypeError(f"optimizer: expected an object with state_dict(), got {type(optimizer).__name__}")
        optim_tensors = OrderedDict()
        header["optimizer"] = _encode(optimizer.state_dict(), optim_tensors)
        header["optimizer_type"] = type(optimizer).__name__
        tensors.update(optim_tensors)
    header["checksums"] = {k: _checksum(v) for k, v in tensors.items()}
    try:
        header["header_checksum"] = _header_checksum(header)
        text = json.dumps(header)
    except TypeError as e:
        raise TypeError(f"metadata: values must be JSON-serialisable ({e})") from None
    _write_atomic(path, safetensors_bytes(dict(tensors), metadata={"gradcore": text}))
    return path


def load(path, module=None, optimizer=None, strict=True, device=None):
    """Reads a checkpoint written by save(). When `module` (a Module or the same {prefix: Module} mapping given to
    save) and/or `optimizer` are passed, their state is restored in place. Returns a Checkpoint.

    Optimizer state arrays that were gradcore Tensors come back as Tensors on `device` (default: the device of
    the module's first parameter, else the CPU)."""
    from safetensors import safe_open

    path = _path(path)
    tensors, header = _read(path)
    state = OrderedDict((k[len(_MODEL):], v) for k, v in tensors.items() if k.startswith(_MODEL))
    if optimizer is not None:  # checked before anything is loaded, so a refused load changes nothing
        if header["optimizer"] is None:
            raise ValueError(f"optimizer: {path!r} holds no optimizer state")
        saved_type = header.get("optimizer_type")
        if saved_type is not None and saved_type != type(optimizer).__name__:
            raise ValueError(f"optimizer: {path!r} holds the state of a {saved_type} optimizer, which a "
                             f"{type(optimizer).__name__} cannot load")
    missing = unexpected = []
    if module is not None:
        missing, unexpected = _load_into(module, state, strict, path)
    if device is None:
        device = _first_device(module)
    optim_state = None
    if header["optimizer"] is not None:
        optim_state = _decode(header["optimizer"], tensors, device)
    if optimizer is not None:
        optimizer.load_state_dict(optim_state)
    return Checkpoint(state=state, optimizer=optim_state, metadata=header.get("metadata", {}),
                      missing_keys=missing, unexpected_keys=unexpected)


def _path(path):
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}") from None


def _header_checksum(header):
    return zlib.crc32(json.dumps(header, sort_keys=True).encode())


def _checksum(array):
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))


def _read(path):
    """(tensors, header) of a checkpoint file; every failure names the file."""
    from safetensors import SafetensorError, safe_open

    if os.path.isdir(path):
        raise IsADirectoryError(f"path: {path!r} is a directory, not a checkpoint file")
    tensors = OrderedDict()
    try:
        with safe_open(path, framework="np") as f:
            text = (f.metadata() or {}).get("gradcore")
            if text is None:
                raise ValueError(f"path: {path!r} is a safetensors file without gradcore metadata")
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
        header = json.loads(text)
    except FileNotFoundError:
        raise FileNotFoundError(f"path: no checkpoint file {path!r}") from None
    except (SafetensorError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"path: {path!r} is not a readable checkpoint (corrupt or truncated?): {e}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise ValueError(f"path: {path!r} has checkpoint format {found!r}, expected {FORMAT}")
    expected_header = header.pop("header_checksum", None)
    if expected_header is not None and _header_checksum(header) != expected_header:
        raise ValueError(f"path: {path!r} is corrupt: its metadata does not match the checksum saved with it")
    for key, expected in (header.get("checksums") or {}).items():
        if key not in tensors or _checksum(tensors[key]) != expected:
            raise ValueError(f"path: {path!r} is corrupt: the checksum of tensor {key!r} does not match the one "
                             "saved with it")
    return tensors, header


def _first_device(module):
    modules = [_unwrapped(module)] if isinstance(module, Module) else list((module or {}).values())
    for m in modules:
        for p in m.parameters():
            return p.device
    return "cpu"
