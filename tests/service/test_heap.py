"""What the service loads at startup is kept out of the garbage collector's full passes (service/ops/heap.py)."""

from __future__ import annotations

import gc
from pathlib import Path

from conftest import fixture_rows
from fastapi.testclient import TestClient

from recommender.settings import PipelineSettings
from service.core.config import ServiceSettings
from service.core.security import create_api_key
from service.main import create_app


def _tracked(obj: object) -> bool:
    """Whether a full collection would walk ``obj`` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


def test_the_loaded_index_is_frozen_and_what_writes_add_is_collected_as_usual(tmp_path: Path):
    home = tmp_path / "home"
    plain = ServiceSettings(home=home, freeze_heap=False, pipeline=PipelineSettings())
    with TestClient(create_app(plain)) as client:  # a first start stores the fixture world
        services = client.app.state.services  # type: ignore[attr-defined]
        with services.sessions() as session:
            key = {"X-API-Key": create_api_key(session, "broker")}
        assert client.post("/results/bulk", json=fixture_rows("result"), headers=key).status_code == 201
    try:
        with TestClient(create_app(plain.model_copy(update={"freeze_heap": True}))) as client:
            engine = client.app.state.services.engine  # type: ignore[attr-defined]
            loaded = engine.matcher.side("result").records["R1"]
            assert gc.is_tracked(loaded) and gc.get_freeze_count() > 0 and not _tracked(loaded)
            new = {"id": "R-new", "title": "一种钠离子电池硬碳负极材料的制备方法", "abstract": "硬碳负极"}
            assert client.post("/results/bulk", json=[new], headers=key).status_code == 201
            written = engine.matcher.side("result").records["R-new"]
            assert _tracked(written)
            top = client.post("/match", json={"text": "钠离子电池硬碳负极", "k": 3}, headers=key).json()["matches"]
            assert top[0]["id"] == "R-new"  # a frozen index still searches and changes as before
    finally:
        gc.unfreeze()
