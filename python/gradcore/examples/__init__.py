"""Runnable examples: python -m gradcore.examples.<name>."""
import gradcore


def default_device():
    """"cuda" on a real GPU, else "cpu". The emulated device (GRADCORE_CUDA=EMULATE, a test double running CUDA
    kernels on the CPU) is available but far slower than the CPU kernels, so an example asks for it only by name."""
    if gradcore.cuda.is_available() and not gradcore.cuda.is_emulated():
        return "cuda"
    return "cpu"


def start_distributed(enabled):
    """(rank, world size) of this process: after gradcore.distributed.init_process_group("mpi") when `enabled`
    (the examples' --distributed; launch with `mpirun -np N python -m gradcore.examples.<name> --distributed`),
    else (0, 1)."""
    if not enabled:
        return 0, 1
    from gradcore import distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("mpi")
    return dist.get_rank(), dist.get_world_size()


def global_sums(values, distributed):
    """The sums over ranks of a few local numbers (losses, counts), in rank order; the numbers as they are alone."""
    if not distributed:
        return list(values)
    from gradcore import distributed as dist

    t = gradcore.tensor([float(v) for v in values], dtype="float64")
    dist.all_reduce(t)
    return t.tolist()
