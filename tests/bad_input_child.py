"""Child process of tests/test_bad_input.py: runs a batch of calls and reports each outcome as one JSON line.

Reads [[case id, code], ...] as JSON on stdin. For each case it prints {"begin": id} before running the code and
{"id", "outcome": "returned" | "raised", "type", "message"} after, flushing both, so that when a call kills the
process the parent knows which one it was. Each call runs in a fresh namespace built by SETUP.
"""
import json
import os
import sys
import warnings

SETUP = """
import math
import numpy as np
import gradcore as gc
F = gc.functional
nn = gc.nn
optim = gc.optim
x = gc.randn(2, 3, 6, 6)            # conv input (N, C_in, H, W)
w = gc.randn(4, 3, 3, 3)            # conv2d weight (C_out, C_in, kH, kW)
b = gc.randn(4)                     # conv2d bias
wt = gc.randn(3, 4, 3, 3)           # conv_transpose2d weight (C_in, C_out, kH, kW)
x64 = gc.randn(2, 3, 6, 6, dtype="float64")
v = gc.randn(5)
m = gc.randn(2, 3)
p = gc.rand(4)                      # probabilities
t = gc.rand(4)                      # targets
rm, rv = gc.zeros(3), gc.ones(3)    # running statistics of 3 channels
pre = gc.randn(2, 8, 4, 4)          # ConvLSTM gate pre-activations, hidden 2
c = gc.randn(2, 2, 4, 4)            # ConvLSTM cell state
param = nn.Parameter(gc.randn(3))
param.grad = gc.randn(3)
model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
data = np.random.default_rng(0).random((8, 3)).astype(np.float32)
"""


def main():
    cases = json.load(sys.stdin)
    base = {}
    exec(SETUP, base)
    warnings.simplefilter("ignore")
    # Reports go to the original stdout; anything the calls print (progress bars, C++ output) goes to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for case_id, code in cases:
        out.write(json.dumps({"begin": case_id}) + "\n")
        out.flush()
        namespace = dict(base)
        try:
            exec(code, namespace)
            result = {"id": case_id, "outcome": "returned", "type": None, "message": ""}
        except BaseException as e:  # noqa: BLE001 - every outcome is reported, SystemExit included
            result = {"id": case_id, "outcome": "raised", "type": type(e).__name__, "message": str(e)[:2000]}
        out.write(json.dumps(result) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
