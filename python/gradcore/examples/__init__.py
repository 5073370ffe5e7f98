"""Runnable examples: python -m gradcore.examples.<name>."""
import gradcore


def default_device():
    """"cuda" on a real GPU, else "cpu". The emulated device (GRADCORE_CUDA=EMULATE, a test double running CUDA
    kernels on the CPU) is available but far slower than the CPU kernels, so an example asks for it only by name."""
    if gradcore.cuda.is_available() and not gradcore.cuda.is_emulated():
        return "cuda"
    return "cpu"
