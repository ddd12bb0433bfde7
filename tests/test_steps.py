"""The phase timer of the sync's logs (daemon/steps.py)."""

from __future__ import annotations

import logging

from mediasaged import steps as steps_module
from mediasaged.steps import Steps


def test_steps_time_one_after_another_and_add_up_repeats(caplog, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(steps_module.time, "perf_counter", lambda: now[0])
    caplog.set_level(logging.DEBUG, "steps-test")
    steps = Steps(logging.getLogger("steps-test"))
    now[0] += 0.25
    steps.once("first")
    now[0] += 1.0
    steps.once("first")  # reached again: counted once, and the next step starts at the first call
    steps("work")
    now[0] += 5.0
    steps.skip()  # this time counts nowhere
    now[0] += 0.5
    steps("work")
    steps.add("inside", 0.125)
    assert steps.took == {"first": 0.25, "work": 1.5, "inside": 0.125}
    assert str(steps) == "first 250 ms, work 1,500 ms, inside 125 ms"
    assert [r.getMessage() for r in caplog.records] == ["first: 250 ms", "work: 1000 ms", "work: 500 ms"]
