"""Fused Adam, AdamW and SGD against the numpy references in tests/reference/optim.py: 20 steps over tensors from one
element to 1M, float32 and float64, with and without clipping, plus groups, state_dict, schedules, non-finite
gradients, determinism and bad input."""
import math

import numpy as np
import pytest

import gradcore as gc
from reference.optim import AdamReference, SGDReference, clip_grads_by_norm
from tolerance import DEVICES, DTYPES, assert_close, assert_cuda_matches_cpu

STEPS = 20
SMALL = [(1,), (3, 5), (65537,)]          # 65537 elements span three chunks of the multi-tensor table
UP_TO_1M = SMALL + [(1024, 1024)]
# 20 steps from the same rounded inputs: the CPU uses under 20% (float32) and 1% (float64) of these.
TOL = {"float32": dict(atol=5e-6, rtol=5e-5), "float64": dict(atol=1e-13, rtol=1e-12)}


def problem(sizes, dtype, seed=0, steps=STEPS, grad_scale=1.0):
    """Initial parameters and per-step gradients, rounded to dtype (the reference then runs on the rounded values)."""
    rng = np.random.default_rng(seed)
    rounded = lambda a: a.astype(dtype).astype(np.float64)  # noqa: E731
    init = [rounded(rng.standard_normal(s)) for s in sizes]
    grads = [[rounded(grad_scale * rng.standard_normal(s)) for s in sizes] for _ in range(steps)]
    return init, grads


def run_ours(make_optimizer, init, grads, dtype, device):
    params = [gc.nn.Parameter(gc.tensor(x, dtype=dtype, device=device)) for x in init]
    opt = make_optimizer(params)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = gc.tensor(g, dtype=dtype, device=device)
        opt.step()
    return [p.numpy().astype(np.float64) for p in params], opt


def run_reference(reference, init, grads, clip_norm=None, clip_value=None, per_tensor=False):
    params = [x.copy() for x in init]
    for step_grads in grads:
        if clip_norm is not None:
            step_grads, _ = clip_grads_by_norm(step_grads, clip_norm, per_tensor=per_tensor)
        if clip_value is not None:
            step_grads = [np.clip(g, -clip_value, clip_value) for g in step_grads]
        for i, (p, g) in enumerate(zip(params, step_grads)):
            reference.step(i, p, g)
    return params


# (id, our constructor's kwargs, reference kwargs, clipping kwargs shared by both, sizes)
ADAM_CASES = [
    ("adam", dict(lr=1e-2), dict(lr=1e-2), {}, UP_TO_1M),
    ("adam-amsgrad-l2", dict(lr=1e-2, amsgrad=True, weight_decay=0.1), dict(lr=1e-2, amsgrad=True, weight_decay=0.1),
     {}, SMALL),
    ("adam-maximize-l2", dict(lr=3e-3, maximize=True, weight_decay=0.05, betas=(0.8, 0.99), eps=1e-6),
     dict(lr=3e-3, maximize=True, weight_decay=0.05, betas=(0.8, 0.99), eps=1e-6), {}, SMALL),
    ("adam-clipnorm", dict(lr=1e-2), dict(lr=1e-2), dict(clip_norm=1.0), UP_TO_1M),
    ("adam-clipnorm-per-tensor", dict(lr=1e-2), dict(lr=1e-2), dict(clip_norm=2.0, per_tensor=True), SMALL),
    ("adam-clipvalue", dict(lr=1e-2), dict(lr=1e-2), dict(clip_value=0.5), SMALL),
    ("adamw", dict(lr=1e-2, decoupled=True), dict(lr=1e-2, weight_decay=1e-2, decoupled=True), {}, SMALL),
    ("adamw-amsgrad-clipnorm", dict(lr=1e-2, decoupled=True, amsgrad=True, weight_decay=0.1),
     dict(lr=1e-2, decoupled=True, amsgrad=True, weight_decay=0.1), dict(clip_norm=5.0), SMALL),
]


def _adam_factory(kwargs, clip):
    kwargs = dict(kwargs)
    cls = gc.optim.AdamW if kwargs.pop("decoupled", False) else gc.optim.Adam
    clip = dict(clip)
    if "per_tensor" in clip:
        clip["clip_per_tensor"] = clip.pop("per_tensor")
    return lambda params: cls(params, **kwargs, **clip)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,ours,ref,clip,sizes", ADAM_CASES, ids=[c[0] for c in ADAM_CASES])
def test_adam_matches_reference(name, ours, ref, clip, sizes, dtype, device):
    init, grads = problem(sizes, dtype, seed=len(name))
    got, _ = run_ours(_adam_factory(ours, clip), init, grads, dtype, device)
    expected = run_reference(AdamReference(**ref), init, grads, **clip)
    for i, (a, e) in enumerate(zip(got, expected)):
        assert_close(a, e, name=f"{name} param {i} {sizes[i]}", **TOL[dtype])


SGD_CASES = [
    ("sgd", dict(lr=0.1), {}, UP_TO_1M),
    ("sgd-momentum", dict(lr=0.05, momentum=0.9), {}, SMALL),
    ("sgd-momentum-dampening-l2", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2), {}, SMALL),
    ("sgd-nesterov-l2", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2), {}, SMALL),
    ("sgd-maximize-momentum-clipnorm", dict(lr=0.05, momentum=0.5, maximize=True), dict(clip_norm=1.0), UP_TO_1M),
    ("sgd-clipvalue", dict(lr=0.1, momentum=0.9), dict(clip_value=0.3), SMALL),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kwargs,clip,sizes", SGD_CASES, ids=[c[0] for c in SGD_CASES])
def test_sgd_matches_reference(name, kwargs, clip, sizes, dtype, device):
    init, grads = problem(sizes, dtype, seed=len(name))
    got, _ = run_ours(lambda params: gc.optim.SGD(params, **kwargs, **clip), init, grads, dtype, device)
    expected = run_reference(SGDReference(**kwargs), init, grads, **clip)
    for i, (a, e) in enumerate(zip(got, expected)):
        assert_close(a, e, name=f"{name} param {i} {sizes[i]}", **TOL[dtype])


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,ours,ref,clip,sizes", ADAM_CASES, ids=[c[0] for c in ADAM_CASES])
def test_adam_cuda_matches_cpu(name, ours, ref, clip, sizes, dtype):
    init, grads = problem(sizes, dtype, seed=len(name))
    cpu, _ = run_ours(_adam_factory(ours, clip), init, grads, dtype, "cpu")
    cuda, _ = run_ours(_adam_factory(ours, clip), init, grads, dtype, "cuda")
    # On the emulated device the host compiler builds the kernel as it builds the CPU twin, and both run one
    # per-element rule (fused_adam.h): the bits must agree (the CPU's float sqrt once resolved to C's double sqrt).
    # Not with clipping by norm (the devices sum the norm in different fixed orders), and not on a GPU, whose own
    # contraction into FMAs may round differently.
    if gc.cuda.is_emulated() and "clip_norm" not in clip:
        for i, (a, e) in enumerate(zip(cuda, cpu)):
            np.testing.assert_array_equal(a, e, err_msg=f"{name} param {i}")
    else:
        assert_cuda_matches_cpu(cuda, cpu, dtype, name=f"{name} params")


def test_adam_step_increments_and_state_layout():
    p = gc.nn.Parameter(gc.zeros(4))
    opt = gc.optim.Adam([p], amsgrad=True)
    p.grad = gc.ones(4)
    opt.step()
    opt.step()
    state = opt.state_dict()["state"][0]
    assert state["step"] == 2.0
    assert set(state) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}


@pytest.mark.parametrize("device", DEVICES)
def test_table_is_reused_while_the_buffers_stay(device):
    params = [gc.nn.Parameter(gc.zeros(n, device=device)) for n in (3, 40000)]
    for p in params:
        p.grad = gc.ones(p.shape, device=device)
    opt = gc.optim.Adam(params, clip_norm=1.0)
    for _ in range(3):
        opt.step()
    tables = list(opt._tables.values())
    assert len(tables) == 1 and tables[0].builds == 1
    assert opt._norm_table.builds == 1
    keep = [p.grad for p in params]  # the old buffers stay alive, so the new ones live elsewhere
    for p in params:
        p.grad = gc.ones(p.shape, device=device)
    opt.step()
    assert tables[0].builds == 2 and opt._norm_table.builds == 2
    del keep


@pytest.mark.parametrize("device", DEVICES)
def test_empty_parameters_count_steps_like_the_others(device):
    params = [gc.nn.Parameter(gc.zeros(0, device=device)), gc.nn.Parameter(gc.zeros(5, device=device))]
    opt = gc.optim.Adam(params)
    for _ in range(3):
        for p in params:
            p.grad = gc.ones(p.shape, device=device)
        opt.step()
    assert [s["step"] for s in opt.state_dict()["state"].values()] == [3.0, 3.0]


def test_training_loop_reduces_the_loss():
    gen = gc.Generator(0)
    x = gc.randn(64, 3, dtype="float64", generator=gen)
    target = (x * gc.tensor([[1.5, -2.0, 0.5]], dtype="float64")).sum(axis=1)
    w = gc.nn.Parameter(gc.zeros(1, 3, dtype="float64"))
    opt = gc.optim.AdamW([w], lr=0.1, weight_decay=0.0, clip_norm=10.0)
    sched = gc.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=200)
    for _ in range(200):
        loss = (((x * w).sum(axis=1) - target) ** 2).mean()   # forward, loss
        opt.zero_grad()
        loss.backward()                                       # backward
        opt.step()                                            # clip and update
        sched.step()
    assert_close(w, [[1.5, -2.0, 0.5]], atol=1e-3, rtol=0)


def test_params_without_grad_are_left_alone():
    a, b = gc.nn.Parameter(gc.ones(3)), gc.nn.Parameter(gc.ones(3))
    opt = gc.optim.Adam([a, b], lr=0.1)
    a.grad = gc.ones(3)
    opt.step()
    assert_close(b, np.ones(3), atol=0, rtol=0)
    assert b not in opt.state
    assert not np.allclose(a.numpy(), 1.0)


def test_zero_grad():
    p = gc.nn.Parameter(gc.ones(3))
    opt = gc.optim.SGD([p], lr=0.1)
    p.grad = gc.ones(3)
    opt.zero_grad(set_to_none=False)
    assert_close(p.grad, np.zeros(3), atol=0, rtol=0)
    opt.zero_grad()
    assert p.grad is None


# ---- parameter groups ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_param_groups_use_their_own_hyperparameters(dtype):
    init, grads = problem([(5,), (70000,), (2, 3)], dtype, seed=3)
    groups_ours = lambda ps: gc.optim.AdamW([  # noqa: E731
        {"params": ps[:1]},
        {"params": ps[1:2], "lr": 0.05, "weight_decay": 0.0},
        {"params": ps[2:], "lr": 0.001, "amsgrad": True},
    ], lr=0.01, weight_decay=0.1)
    got, _ = run_ours(groups_ours, init, grads, dtype, "cpu")
    refs = [AdamReference(lr=0.01, weight_decay=0.1, decoupled=True),
            AdamReference(lr=0.05, weight_decay=0.0, decoupled=True),
            AdamReference(lr=0.001, weight_decay=0.1, amsgrad=True, decoupled=True)]
    for i in range(3):
        expected = run_reference(refs[i], [init[i]], [[g[i]] for g in grads])[0]
        assert_close(got[i], expected, name=f"group {i}", **TOL[dtype])


def test_many_groups_split_into_launches_and_share_the_global_clip():
    # 70 groups exceed one launch's 64: the global norm still covers every group.
    init, grads = problem([(3,)] * 70, "float64", seed=4)
    make = lambda ps: gc.optim.SGD([{"params": [p], "lr": 0.01 * (i + 1)} for i, p in enumerate(ps)],  # noqa: E731
                                   clip_norm=1.0)
    got, _ = run_ours(make, init, grads, "float64", "cpu")
    params = [x.copy() for x in init]
    for step_grads in grads:
        clipped, _ = clip_grads_by_norm(step_grads, 1.0)
        for i, (p, g) in enumerate(zip(params, clipped)):
            SGDReference(lr=0.01 * (i + 1)).step(i, p, g)
    for a, e in zip(got, params):
        assert_close(a, e, **TOL["float64"])


# ---- state_dict ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("make", [
    lambda ps: gc.optim.Adam(ps, lr=1e-2, amsgrad=True, clip_norm=1.0),
    lambda ps: gc.optim.AdamW(ps, lr=1e-2),
    lambda ps: gc.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
], ids=["adam-amsgrad-clip", "adamw", "sgd-nesterov"])
def test_state_dict_round_trip_continues_bit_identically(make, device):
    init, grads = problem([(1,), (40000,), (4, 4)], "float32", seed=5)
    params = [gc.nn.Parameter(gc.tensor(x, dtype="float32", device=device)) for x in init]
    opt = make(params)

    def train(opt, params, step_grads_list):
        for step_grads in step_grads_list:
            for p, g in zip(params, step_grads):
                p.grad = gc.tensor(g, dtype="float32", device=device)
            opt.step()

    train(opt, params, grads[:10])
    saved_params = [p.numpy().copy() for p in params]
    saved = opt.state_dict()
    # A fresh optimizer over fresh parameters, restored from the saved copies.
    params2 = [gc.nn.Parameter(gc.tensor(x, dtype="float32", device=device)) for x in saved_params]
    opt2 = make(params2)
    opt2.load_state_dict(saved)
    train(opt, params, grads[10:])
    train(opt2, params2, grads[10:])
    for a, b in zip(params, params2):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    state_a, state_b = opt.state_dict()["state"], opt2.state_dict()["state"]
    for i in state_a:
        for key in state_a[i]:
            np.testing.assert_array_equal(state_a[i][key], state_b[i][key])


def test_load_state_dict_restores_hyperparameters_and_rejects_mismatches():
    p = gc.nn.Parameter(gc.zeros(3))
    opt = gc.optim.Adam([p], lr=0.5)
    p.grad = gc.ones(3)
    opt.step()
    saved = opt.state_dict()
    other = gc.optim.Adam([gc.nn.Parameter(gc.zeros(3))], lr=0.1)
    other.load_state_dict(saved)
    assert other.param_groups[0]["lr"] == 0.5
    with pytest.raises(ValueError, match="parameter groups"):
        gc.optim.Adam([{"params": [gc.nn.Parameter(gc.zeros(3))]}, {"params": [gc.nn.Parameter(gc.zeros(1))]}]
                      ).load_state_dict(saved)
    with pytest.raises(ValueError, match="shape"):
        gc.optim.Adam([gc.nn.Parameter(gc.zeros(4))]).load_state_dict(saved)


# ---- non-finite gradients -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_skip_nonfinite_skips_the_step_and_reports_it(bad, device):
    init, grads = problem([(3,), (50000,)], "float64", seed=6, steps=8)
    grads[4][1][123] = bad
    got, opt = run_ours(lambda ps: gc.optim.Adam(ps, lr=1e-2, clip_norm=10.0, skip_nonfinite=True),
                        init, grads, "float64", device)
    assert opt.skipped_steps == 1
    assert not opt.last_step_skipped
    assert opt.state_dict()["state"][0]["step"] == 7.0
    expected = run_reference(AdamReference(lr=1e-2), init, grads[:4] + grads[5:], clip_norm=10.0)
    for a, e in zip(got, expected):
        assert_close(a, e, **TOL["float64"])


def test_last_step_skipped_after_a_bad_step():
    p = gc.nn.Parameter(gc.ones(4))
    opt = gc.optim.SGD([p], lr=0.1, momentum=0.9, skip_nonfinite=True)
    p.grad = gc.tensor([1.0, math.nan, 0.0, 0.0], dtype="float32")
    opt.step()
    assert opt.last_step_skipped and opt.skipped_steps == 1
    assert_close(p, np.ones(4), atol=0, rtol=0)
    assert math.isnan(opt.last_grad_norm.item())


def test_without_skip_nonfinite_a_nan_gradient_reaches_the_parameters():
    p = gc.nn.Parameter(gc.ones(2))
    opt = gc.optim.Adam([p])
    p.grad = gc.tensor([math.nan, 1.0], dtype="float32")
    opt.step()
    assert math.isnan(p.numpy()[0]) and math.isfinite(p.numpy()[1])
    assert not opt.last_step_skipped and opt.skipped_steps == 0


# ---- determinism --------------------------------------------------------------------------------------------------
def test_results_do_not_depend_on_the_thread_count():
    init, grads = problem([(300000,), (7,)], "float32", seed=7, steps=5)
    make = lambda ps: gc.optim.Adam(ps, lr=1e-2, clip_norm=1.0)  # noqa: E731
    threads = gc.get_num_threads()
    try:
        runs = []
        for n in (1, max(2, threads)):
            gc.set_num_threads(n)
            got, opt = run_ours(make, init, grads, "float32", "cpu")
            runs.append((got, opt.last_grad_norm.item()))
    finally:
        gc.set_num_threads(threads)
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


@pytest.mark.cuda
def test_cuda_runs_are_bitwise_reproducible():
    init, grads = problem([(300000,), (7,)], "float32", seed=8, steps=5)
    make = lambda ps: gc.optim.Adam(ps, lr=1e-2, clip_norm=1.0, skip_nonfinite=True)  # noqa: E731
    a, _ = run_ours(make, init, grads, "float32", "cuda")
    b, _ = run_ours(make, init, grads, "float32", "cuda")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# ---- learning-rate schedules --------------------------------------------------------------------------------------
def _lrs(scheduler, steps):
    out = [scheduler.get_last_lr()[0]]
    for _ in range(steps):
        scheduler.optimizer.step()
        scheduler.step()
        out.append(scheduler.get_last_lr()[0])
    return out


def _opt(lr=1.0):
    return gc.optim.SGD([gc.nn.Parameter(gc.zeros(1))], lr=lr)


def test_step_lr():
    got = _lrs(gc.optim.lr_scheduler.StepLR(_opt(0.1), step_size=3, gamma=0.5), 7)
    assert got == pytest.approx([0.1 * 0.5 ** (e // 3) for e in range(8)])


def test_cosine_annealing_lr():
    got = _lrs(gc.optim.lr_scheduler.CosineAnnealingLR(_opt(0.1), T_max=10, eta_min=0.001), 10)
    expected = [0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(11)]
    assert got == pytest.approx(expected)
    assert got[-1] == pytest.approx(0.001)


def test_linear_warmup_then_cosine():
    opt = _opt(0.2)
    warmup = gc.optim.lr_scheduler.LinearWarmup(opt, warmup_steps=4)
    cosine = gc.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=6)
    sched = gc.optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[4])
    got = _lrs(sched, 10)
    expected = [0.2 * e / 4 for e in range(4)] + [0.2 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(7)]
    assert got == pytest.approx(expected)
    assert opt.param_groups[0]["lr"] == pytest.approx(expected[-1])


def test_linear_lr_and_lambda_lr():
    got = _lrs(gc.optim.lr_scheduler.LinearLR(_opt(1.0), start_factor=0.25, total_iters=3), 5)
    assert got == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    got = _lrs(gc.optim.lr_scheduler.LambdaLR(_opt(2.0), lambda e: 1 / (e + 1)), 3)
    assert got == pytest.approx([2.0, 1.0, 2 / 3, 0.5])


def test_schedule_drives_the_update_and_groups_keep_their_ratio():
    p, q = gc.nn.Parameter(gc.zeros(1, dtype="float64")), gc.nn.Parameter(gc.zeros(1, dtype="float64"))
    opt = gc.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=1.0)
    sched = gc.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad, q.grad = gc.ones(1, dtype="float64"), gc.ones(1, dtype="float64")
        opt.step()
        sched.step()
    assert p.item() == pytest.approx(-(1.0 + 0.5 + 0.25))
    assert q.item() == pytest.approx(-(0.5 + 0.25 + 0.125))
    assert sched.get_last_lr() == pytest.approx([0.125, 0.0625])


def test_scheduler_state_dict_resumes():
    opt = _opt(1.0)
    sched = gc.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    for _ in range(3):
        sched.step()
    state = sched.state_dict()
    opt2 = _opt(1.0)
    sched2 = gc.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.1)
    sched2.load_state_dict(state)
    sched.step()
    sched2.step()
    assert sched.get_last_lr() == sched2.get_last_lr()


# ---- bad input ----------------------------------------------------------------------------------------------------
def _p():
    return gc.nn.Parameter(gc.zeros(2))


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=-1e-3), "lr"),
    (dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    (dict(betas=(0.9, -0.1)), r"betas\[1\]"),
    (dict(eps=-1.0), "eps"),
    (dict(weight_decay=-0.1), "weight_decay"),
    (dict(clip_norm=-1.0), "clip_norm"),
    (dict(clip_value=-1.0), "clip_value"),
    (dict(clip_norm=1.0, clip_value=1.0), "clip_norm, clip_value"),
    (dict(clip_per_tensor=True), "clip_per_tensor"),
    (dict(lr=float("nan")), "lr"),
])
def test_adam_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gc.optim.Adam([_p()], **kwargs)


@pytest.mark.parametrize("kwargs,match", [(dict(betas=0.9), "betas"), (dict(lr="0.1"), "lr"), (dict(eps=None), "eps")])
def test_hyperparameters_of_the_wrong_kind_are_type_errors(kwargs, match):
    with pytest.raises(TypeError, match=match):
        gc.optim.Adam([_p()], **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=-0.1), "lr"),
    (dict(momentum=-0.5), "momentum"),
    (dict(nesterov=True), "nesterov"),
    (dict(nesterov=True, momentum=0.9, dampening=0.1), "nesterov"),
    (dict(weight_decay=-1.0), "weight_decay"),
])
def test_sgd_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gc.optim.SGD([_p()], **kwargs)


def test_bad_group_hyperparameter_names_the_argument():
    with pytest.raises(ValueError, match="lr"):
        gc.optim.Adam([{"params": [_p()]}, {"params": [_p()], "lr": -1.0}])


@pytest.mark.parametrize("params,error,match", [
    (lambda: [np.zeros(3)], TypeError, r"params\[0\]: expected a gradcore.nn.Parameter"),
    (lambda: [_p(), "weight"], TypeError, r"params\[1\]"),
    (lambda: gc.nn.Sequential(), TypeError, "model.parameters()"),
    (lambda: 3.0, TypeError, "params"),
    (lambda: [], ValueError, "empty parameter list"),
    (lambda: {_p()}, TypeError, "set"),
    (lambda: [gc.nn.Parameter(gc.zeros(2)) * 2.0], ValueError, "non-leaf"),
    (lambda: [gc.zeros(2, dtype="float32"), gc.zeros(2, dtype="float64")], ValueError, "dtype"),
])
def test_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        gc.optim.Adam(params())


def test_duplicate_parameters_rejected():
    p = _p()
    with pytest.raises(ValueError, match="more than once"):
        gc.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_gradient_of_the_wrong_shape_names_grads():
    p = _p()
    opt = gc.optim.Adam([p])
    p.grad = gc.zeros(3)
    with pytest.raises(ValueError, match="grads"):
        opt.step()


@pytest.mark.cuda
def test_params_on_two_devices_rejected():
    with pytest.raises(ValueError, match="one device"):
        gc.optim.Adam([gc.nn.Parameter(gc.zeros(2)), gc.nn.Parameter(gc.zeros(2, device="cuda"))])


def test_fused_kernels_refuse_a_step_counter_shared_by_two_tensors():
    from gradcore import _core
    params = [_core.zeros([3], "float32", "cpu") for _ in range(2)]
    grads = [_core.zeros([3], "float32", "cpu") for _ in range(2)]
    step = _core.zeros([1], "float64", "cpu")
    with pytest.raises(ValueError, match=r"steps\[1\]: the same step counter as steps\[0\]"):
        _core.fused_sgd(_core.TensorTable(), params, grads, [], [step, step], [0, 0],
                        [(0.1, 0.0, 0.0, 0.0, 0.0, 0.0)])


def test_fused_kernels_refuse_one_buffer_updated_twice():
    from gradcore import _core
    params = [_core.zeros([3], "float32", "cpu") for _ in range(2)]
    grads = [_core.zeros([3], "float32", "cpu") for _ in range(2)]
    steps = [_core.zeros([1], "float64", "cpu") for _ in range(2)]
    hyper = [(0.1, 0.9, 0.999, 1e-8, 0.0, 0.0)]
    with pytest.raises(ValueError, match=r"params\[1\]: the same buffer as params\[0\]"):
        _core.fused_sgd(_core.TensorTable(), [params[0], params[0]], grads, [], steps, [0, 0], hyper)
    state = [_core.zeros([3], "float32", "cpu") for _ in range(2)]
    with pytest.raises(ValueError, match=r"exp_avg_sqs\[1\]: the same buffer as exp_avgs\[1\]"):
        _core.fused_adam(_core.TensorTable(), params, grads, state, [_core.zeros([3], "float32", "cpu"), state[1]],
                         [], steps, [0, 0], hyper, False)
    # a gradient shared by two parameters is only read: allowed
    _core.fused_sgd(_core.TensorTable(), params, [grads[0], grads[0]], [], steps, [0, 0], hyper)
