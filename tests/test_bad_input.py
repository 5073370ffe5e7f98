"""The standing bad-input suite: every call of tests/bad_input_cases.py must raise the listed exception naming the
argument and what was expected (or succeed, for valid edge cases), and must never crash or hang the interpreter.

All calls run in one child process (tests/bad_input_child.py) that reports each outcome as it goes; when a call kills
the child, that call is recorded as a crash and the rest of the batch continues in a fresh child. So a crash fails
exactly one test here, named by its case id, and the suite costs one interpreter start, not one per call.
"""
import json
import os
import subprocess
import sys

import pytest

from bad_input_cases import CASES
from isolated import describe_exit

CHILD = os.path.join(os.path.dirname(__file__), "bad_input_child.py")
BATCH_TIMEOUT = 240  # seconds for the whole table; a call still running then is reported as hanging


def run_cases(cases):
    """{case id: outcome dict} for every case, continuing past calls that kill the child."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    results, pending = {}, [(c.id, c.code) for c in cases]
    while pending:
        proc = subprocess.Popen([sys.executable, CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            stdout, stderr = proc.communicate(json.dumps(pending), timeout=BATCH_TIMEOUT)
            ending = describe_exit(proc.returncode)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            ending = f"a hang (no answer within {BATCH_TIMEOUT} s)"
        running = None
        for line in stdout.splitlines():
            record = json.loads(line)
            if "begin" in record:
                running = record["begin"]
            else:
                results[record["id"]] = record
                running = None
        done = [i for i, (case_id, _) in enumerate(pending) if case_id not in results]
        if running is None:  # the child ended between calls (or finished): nothing to blame on one call
            if done:
                raise RuntimeError(f"bad-input child ended with {ending} outside any call:\n{stderr[-3000:]}")
            break
        results[running] = {"id": running, "outcome": "crashed", "type": None,
                            "message": f"{ending}\n{stderr[-3000:]}"}
        pending = [item for item in pending if item[0] not in results]
    return results


@pytest.fixture(scope="module")
def outcomes():
    return run_cases(CASES)


def test_the_table_is_large_and_its_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert len(CASES) >= 400


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, outcomes):
    result = outcomes[case.id]
    assert result["outcome"] != "crashed", f"{case.code!r} crashed the interpreter: {result['message']}"
    if case.error is None:
        assert result["outcome"] == "returned", (f"{case.code!r} is valid input but raised "
                                                 f"{result['type']}: {result['message']}")
        return
    assert result["outcome"] == "raised", f"{case.code!r} returned instead of raising {case.error}"
    assert result["type"] == case.error, (f"{case.code!r} raised {result['type']}: {result['message']!r}; "
                                          f"expected {case.error}")
    missing = [word for word in case.words if word not in result["message"]]
    assert not missing, f"{case.code!r}: the message {result['message']!r} lacks {missing}"
