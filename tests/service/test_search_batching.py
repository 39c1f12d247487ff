"""Concurrent searches are ranked together in one index call, with the same answers as one by one."""

from __future__ import annotations

import threading
import time

from conftest import FIXTURES

from recommender.engine import Engine
from recommender.records import Record, load_results

QUERIES = ["三元正极材料循环寿命", "零件表面划痕裂纹视觉检测", "牛羊无抗饲料配方", "碳化硅功率模块封装损耗"]


def test_waiting_requests_share_one_index_call_and_get_their_own_answers():
    results = load_results(FIXTURES / "results.jsonl")
    alone = Engine.build(results)
    expected = {q: [m.id for m in alone.results_for([Record("q", q)], 3)[0]] for q in QUERIES}
    engine = Engine(alone.matcher, batch_queries=True, parallel_batches=1)  # one batch at a time: queues show
    batcher = engine.batcher
    assert batcher is not None
    answers: dict[str, list[str]] = {}

    def ask(text: str, k: int) -> None:
        answers[text] = [m.id for m in engine.results_for([Record("q", text)], k)[0]]

    with engine._lock.writing():  # an index change in progress: the first request leads and waits, the rest queue
        threads = [threading.Thread(target=ask, args=(q, 3 if i else 2)) for i, q in enumerate(QUERIES)]
        threads[0].start()
        while not batcher._running:
            time.sleep(0.01)
        for t in threads[1:]:
            t.start()
        while len(batcher._pending) < len(QUERIES) - 1:
            time.sleep(0.01)
    for t in threads:
        t.join(timeout=60)
    assert batcher.batches == 2  # the leader's own call, then the three that queued behind it together
    assert answers[QUERIES[0]] == expected[QUERIES[0]][:2]
    assert all(answers[q] == expected[q] for q in QUERIES[1:])
