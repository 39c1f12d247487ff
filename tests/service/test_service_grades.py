"""Every match the API returns carries the installed grader's grade and probability (issue 6)."""

from __future__ import annotations

from conftest import ServiceHarness, fixture_rows

from recommender.learning.training import train_grader
from recommender.matcher import GRADER_FOLDER
from recommender.records import load_needs
from tests.conftest import EXPECTED, FIXTURES
from tests.test_learning import fixture_qrels


def test_matches_carry_grades_once_a_grader_is_installed(harness: ServiceHarness):
    with harness.running() as client:
        broker = harness.key()
        assert client.post("/results/bulk", json=fixture_rows("result"), headers=broker).status_code == 201
        assert client.post("/needs/bulk", json=fixture_rows("need"), headers=broker).status_code == 201
        before = client.post("/match", json={"text": "冲压零件表面划痕裂纹的视觉自动检测", "k": 3}, headers=broker)
        assert before.status_code == 200
        assert all(m.get("grade") is None for m in before.json()["matches"])  # no grader yet: no grade shown
        engine = harness.services.engine
        grader = train_grader(engine.matcher.results, load_needs(FIXTURES / "needs.jsonl"), fixture_qrels(), seed=0)
        grader.save(engine.folder / GRADER_FOLDER)

    with harness.running() as client:  # a restart picks the installed grader up
        broker = harness.key()
        free_text = client.post("/match", json={"text": "冲压零件表面划痕裂纹的视觉自动检测", "k": 3}, headers=broker)
        stored = client.get("/needs/N3/matches", params={"k": 3}, headers=broker)
        for response in (free_text, stored):
            assert response.status_code == 200, response.text
            matches = response.json()["matches"]
            assert matches and all(m["grade"] in (0, 1, 2, 3) for m in matches)
            assert all(0.0 <= m["grade_probability"] <= 1.0 for m in matches)
        assert stored.json()["matches"][0]["id"] == EXPECTED["N3"]
        assert stored.json()["matches"][0]["grade"] >= 2  # the obvious answer is graded as a strong one
