"""The background saver never spends more than its share of the time saving, however fast changes come."""

from __future__ import annotations

import time

from service.core.saver import FolderSaver


def test_saves_under_constant_changes_leave_the_cpu_to_searches_most_of_the_time():
    starts: list[float] = []

    def save() -> None:  # a save that takes 0.1 s, as a large folder does
        starts.append(time.monotonic())
        time.sleep(0.1)

    saver = FolderSaver(save, interval=0.0, every=1, busy_share=0.25)  # every change due at once, but for the share
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        saver.changed()
        time.sleep(0.01)
    saver.close()
    gaps = [b - a for a, b in zip(starts, starts[1:-1])]  # the last is the shutdown's, at once
    assert len(starts) >= 3 and all(gap >= 0.1 + 0.3 - 0.02 for gap in gaps), gaps
    assert saver.pending == 0 and saver.last_duration >= 0.1
