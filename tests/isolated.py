"""Running test code in a child interpreter, so that a crash (segfault, abort) fails one test instead of the run."""
import os
import subprocess
import sys
import textwrap

_SIGNALS = {-6: "SIGABRT", -9: "SIGKILL", -11: "SIGSEGV", -7: "SIGBUS", -8: "SIGFPE"}


def run_isolated(code, timeout=120):
    """Runs `code` (a Python source string) in a fresh interpreter that imports gradcore from this checkout.
    Returns the CompletedProcess; a child killed by a signal has a negative returncode."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def describe_exit(returncode):
    return _SIGNALS.get(returncode, f"exit status {returncode}")


def assert_runs_cleanly(code, timeout=120):
    """The child must exit with status 0; a crash names the signal and shows the child's stderr."""
    result = run_isolated(code, timeout)
    assert result.returncode == 0, (f"child process ended with {describe_exit(result.returncode)}:\n"
                                    f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result.stdout


def outputs_for_thread_counts(code, tmp_path=None, counts=("1", "2", "3")):
    """Runs `code` once per OpenMP thread count, each in a fresh interpreter (OMP_NUM_THREADS is read at start-up),
    and returns each run's output: with tmp_path, the numpy array the code saved to sys.argv[1]; else its stdout."""
    import numpy as np

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    outputs = []
    for threads in counts:
        args = [] if tmp_path is None else [str(tmp_path / f"threads{threads}.npy")]
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                              env=dict(env, OMP_NUM_THREADS=threads), check=True)
        outputs.append(done.stdout if tmp_path is None else np.load(args[0]))
    return outputs
