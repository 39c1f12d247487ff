"""Judgements on a need's match list through the API: stored, re-ranking the list at once and in
``GET /needs/{id}/matches``; an enterprise judges only its own needs (another's answers like a missing one)."""

from __future__ import annotations

from conftest import ServiceHarness, fixture_rows


def test_a_judgement_re_ranks_the_list_and_is_kept(tmp_path):
    harness = ServiceHarness(f"sqlite:///{tmp_path / 'tm.db'}", tmp_path / "home")
    with harness.running() as client:
        broker = harness.key()
        assert client.post("/results/bulk", json=fixture_rows("result"), headers=broker).status_code == 201
        assert client.post("/needs/bulk", json=fixture_rows("need"), headers=broker).status_code == 201
        own, other = harness.key("enterprise", "E1"), harness.key("enterprise", "E2")
        before = client.get("/needs/N1/matches", params={"k": 8}, headers=broker).json()
        assert before["judgements"] == 0
        top = before["matches"][0]["id"]

        answer = client.post("/needs/N1/judgements", json={"result_id": top, "judgement": "irrelevant", "k": 8},
                             headers=own)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["judgements"] == 1 and top not in [m["id"] for m in body["matches"]]
        again = client.get("/needs/N1/matches", params={"k": 8}, headers=broker).json()
        assert again["judgements"] == 1 and [m["id"] for m in again["matches"]] == [m["id"] for m in body["matches"]]
        assert client.get("/needs/N1/matches", params={"k": 8, "feedback": "false"},
                          headers=broker).json()["matches"][0]["id"] == top

        foreign = client.post("/needs/N1/judgements", json={"result_id": top, "judgement": "relevant"}, headers=other)
        missing = client.post("/needs/NOPE/judgements", json={"result_id": top, "judgement": "relevant"},
                              headers=other)
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json()["detail"].replace("N1", "X") == missing.json()["detail"].replace("NOPE", "X")
        bad = client.post("/needs/N1/judgements", json={"result_id": top, "judgement": "maybe"}, headers=broker)
        assert bad.status_code == 422
        unknown = client.post("/needs/N1/judgements", json={"result_id": "R404", "judgement": "relevant"},
                              headers=broker)
        assert unknown.status_code == 404 and "R404" in unknown.text

        cleared = client.post("/needs/N1/judgements", json={"result_id": top, "judgement": "none", "k": 8},
                              headers=broker).json()
        assert cleared["judgements"] == 0 and cleared["matches"][0]["id"] == top
