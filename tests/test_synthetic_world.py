"""Tests of the synthetic demo world generator (data.synthetic): small worlds, a few seconds."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from data.synthetic import (
    TRANSFERABLE_RATE,
    World,
    generate_world,
    iter_results,
    load_vocabulary,
    write_results,
    write_world,
)

SMALL = {"n_results": 300, "n_needs": 40, "n_enterprises": 10, "n_funds": 8}
MEDIUM = {"n_results": 3000, "n_needs": 250, "n_enterprises": 24, "n_funds": 20}
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small() -> World:
    return generate_world(seed=11, **SMALL)


@pytest.fixture(scope="module")
def medium() -> World:
    return generate_world(seed=5, **MEDIUM)


def _digest(paths: dict[str, Path]) -> dict[str, str]:
    return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in sorted(paths.items())}


# ---- determinism -----------------------------------------------------------------------------


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = write_world(generate_world(seed=3, **SMALL), tmp_path / "a")
    b = write_world(generate_world(seed=3, **SMALL), tmp_path / "b")
    assert set(a) == {"results", "needs", "enterprises", "funds", "qrels", "transferable", "readme"}
    assert _digest(a) == _digest(b)
    for p in a.values():
        assert p.stat().st_size > 0


def test_different_seeds_differ(small: World) -> None:
    other = generate_world(seed=12, **SMALL)
    assert [r["title"] for r in small.results] != [r["title"] for r in other.results]
    assert [n["description"] for n in small.needs] != [n["description"] for n in other.needs]
    assert [e["name"] for e in small.enterprises] != [e["name"] for e in other.enterprises]
    assert [f["name"] for f in small.funds] != [f["name"] for f in other.funds]


def test_independent_of_python_hash_seed(tmp_path: Path) -> None:
    """String hashing is randomised per process; the world must not depend on it."""
    code = (
        "import hashlib,sys;from pathlib import Path;"
        "from data.synthetic import generate_world, write_world;"
        "p=write_world(generate_world(seed=3,n_results=120,n_needs=15,n_enterprises=4,n_funds=3),"
        "Path(sys.argv[1]));"
        "print(''.join(hashlib.sha256(p[k].read_bytes()).hexdigest() for k in sorted(p)))"
    )
    outs = set()
    for i, hs in enumerate(("1", "987654")):
        env = {**os.environ, "PYTHONHASHSEED": hs}
        proc = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / f"w{i}")],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outs.add(proc.stdout.strip())
    assert len(outs) == 1 and len(outs.pop()) == 64 * 7


# ---- the record contract -----------------------------------------------------------------------


def _nonempty_str(x: object) -> bool:
    return isinstance(x, str) and bool(x.strip())


def test_results_valid(small: World) -> None:
    ids = [r["id"] for r in small.results]
    assert len(ids) == SMALL["n_results"] == len(set(ids))
    assert all(re.fullmatch(r"R\d{6}", i) for i in ids)
    vocab = load_vocabulary()
    fields = {f.name for f in vocab.fields}
    colleges = {c for f in vocab.fields for c in f.colleges}
    for r in small.results:
        assert _nonempty_str(r["title"]) and _nonempty_str(r["abstract"])
        assert isinstance(r["keywords"], list) and r["keywords"]
        assert all(_nonempty_str(k) for k in r["keywords"])
        assert r["institution"] in colleges and r["institution"].endswith(("学院", "学部", "研究院"))
        assert _nonempty_str(r["team"]) and r["team"].endswith("团队")
        assert r["field"] in fields
        assert type(r["trl"]) is int and 1 <= r["trl"] <= 9
        assert r["ip_status"] in {"granted", "pending", "none"}
        assert type(r["year"]) is int and 2010 <= r["year"] <= 2025
        assert r["category"] in {"专利", "论文", "样机", "软件著作权"}
    # round-trips through JSON unchanged
    assert json.loads(json.dumps(small.results)) == small.results


def test_needs_and_enterprises_valid(small: World) -> None:
    ents = {e["id"]: e for e in small.enterprises}
    assert len(ents) == SMALL["n_enterprises"]
    assert all(re.fullmatch(r"E\d{3}", i) for i in ents)
    assert len({e["name"] for e in small.enterprises}) == len(ents)
    for e in small.enterprises:
        assert _nonempty_str(e["name"]) and e["name"].endswith("公司")
        assert _nonempty_str(e["industry"]) and _nonempty_str(e["region"])
        assert e["size"] in {"大型", "中型", "小型", "微型"}
        c = e["contact"]
        assert _nonempty_str(c["name"])
        assert re.fullmatch(r"0\d{2,3}-\d{7,8}", c["phone"])
        if c["phone"].startswith("029-"):
            assert re.fullmatch(r"029-8\d{7}", c["phone"])
    ids = [n["id"] for n in small.needs]
    assert len(ids) == SMALL["n_needs"] == len(set(ids))
    assert all(re.fullmatch(r"N\d{5}", i) for i in ids)
    for n in small.needs:
        assert _nonempty_str(n["title"]) and _nonempty_str(n["description"])
        e = ents[n["enterprise"]]
        assert n["enterprise_name"] == e["name"]
        assert n["industry"] == e["industry"] and n["region"] == e["region"]
        assert isinstance(n["budget"], int | float) and n["budget"] > 0
        assert f"拟投入资金：{n['budget']}万元" in n["description"]
        assert _nonempty_str(n["field"])
    # every enterprise poses at least one need when there are enough needs
    assert set(ents) == {n["enterprise"] for n in small.needs}


def test_funds_valid(small: World) -> None:
    fields = {f.name for f in load_vocabulary().fields}
    ids = [f["id"] for f in small.funds]
    assert len(ids) == SMALL["n_funds"] == len(set(ids))
    assert all(re.fullmatch(r"F\d{3}", i) for i in ids)
    for f in small.funds:
        assert _nonempty_str(f["name"]) and _nonempty_str(f["thesis"]) and _nonempty_str(f["region"])
        assert f["sectors"] and set(f["sectors"]) <= fields
        assert f["stages"] and set(f["stages"]) <= {"seed", "angel", "A", "B"}
        assert 50 <= f["ticket_min"] < f["ticket_max"] <= 3000
        assert "投" in f["thesis"]


def test_qrels_reference_existing_ids(small: World) -> None:
    rids = {r["id"] for r in small.results}
    assert set(small.qrels) == {n["id"] for n in small.needs}
    grades: Counter[int] = Counter()
    for judged in small.qrels.values():
        assert set(judged) <= rids
        assert all(g in (0, 1, 2, 3) for g in judged.values())
        assert max(judged.values()) >= 2  # every need has at least one same-concept result
        grades.update(judged.values())
    assert grades[0] > 0 and grades[1] > 0 and grades[3] > 0


def test_qrels_file_format(tmp_path: Path, small: World) -> None:
    paths = write_world(small, tmp_path)
    lines = paths["qrels"].read_text(encoding="utf-8").splitlines()
    assert len(lines) == sum(len(j) for j in small.qrels.values())
    for line in lines[:200]:
        assert re.fullmatch(r"N\d{5} 0 R\d{6} [0-3]", line)
    assert paths["transferable"].read_text(encoding="utf-8").split() == sorted(small.transferable)
    assert "seed 11" in paths["readme"].read_text(encoding="utf-8")


# ---- proportions and latent structure ----------------------------------------------------------


@pytest.mark.parametrize("fixture", ["small", "medium"])
def test_transferable_fraction(fixture: str, request: pytest.FixtureRequest) -> None:
    w: World = request.getfixturevalue(fixture)
    assert w.transferable <= {r["id"] for r in w.results}
    assert abs(len(w.transferable) / len(w.results) - TRANSFERABLE_RATE) < 0.005


def test_transferable_follows_maturity_and_ip(medium: World) -> None:
    tr = [r for r in medium.results if r["id"] in medium.transferable]
    rest = [r for r in medium.results if r["id"] not in medium.transferable]
    assert sum(r["trl"] for r in tr) / len(tr) > sum(r["trl"] for r in rest) / len(rest) + 1
    assert sum(r["ip_status"] == "granted" for r in tr) / len(tr) > 0.8


def test_maturity_correlates_with_category(medium: World) -> None:
    by_cat: dict[str, list[dict]] = {}
    for r in medium.results:
        by_cat.setdefault(r["category"], []).append(r)

    def mean_trl(cat: str) -> float:
        return sum(r["trl"] for r in by_cat[cat]) / len(by_cat[cat])

    assert mean_trl("样机") > mean_trl("专利") > mean_trl("论文")
    papers_none = sum(r["ip_status"] == "none" for r in by_cat["论文"]) / len(by_cat["论文"])
    assert papers_none > 0.6


def test_world_proportions(medium: World) -> None:
    per_ent = Counter(n["enterprise"] for n in medium.needs)
    assert len(per_ent) == MEDIUM["n_enterprises"]
    assert sum(per_ent.values()) / len(per_ent) == pytest.approx(MEDIUM["n_needs"] / MEDIUM["n_enterprises"])
    shaanxi = sum(e["region"].startswith("陕西") for e in medium.enterprises) / len(medium.enterprises)
    assert 0.3 < shaanxi < 0.95
    assert len({r["field"] for r in medium.results}) == len(load_vocabulary().fields)


def test_vocabulary_is_rich() -> None:
    v = load_vocabulary()
    assert len(v.fields) >= 14 and len(v.concepts) >= 300
    assert all(len(c.acad) >= 2 and c.ent for c in v.concepts)
    text = " ".join(
        [s.name for s in v.subtopics] + [a for c in v.concepts for a in c.acad] + [f.name for f in v.fields]
    )
    for term in (
        "三元正极材料",
        "碳化硅",
        "固态电池",
        "工业互联网",
        "钙钛矿",
        "氢燃料电池",
        "锂离子电池",
        "功率半导体",
        "量子密钥分发",
        "合成生物学",
        "集成电路",
        "人工智能",
    ):
        assert term in text, term


# ---- text style and the lexical gap ------------------------------------------------------------


def test_needs_and_results_read_like_their_side(medium: World) -> None:
    for n in medium.needs:
        d = n["description"]
        assert d.startswith("需求内容：") and "预期目标：1、" in d and "拟投入资金：" in d
    titles = [r["title"] for r in medium.results]
    abstracts = [r["abstract"] for r in medium.results]
    assert sum(t.startswith("一种") for t in titles) / len(titles) > 0.5
    assert sum("本发明" in a for a in abstracts) / len(abstracts) > 0.5
    patents = [r for r in medium.results if r["category"] == "专利"]
    assert all(r["abstract"].startswith("本发明公开了一种") and "技术领域" in r["abstract"] for r in patents)
    # enterprises do not write like universities
    assert not any("本发明" in n["description"] for n in medium.needs)
    # titles are varied, not a handful of templates
    assert len(set(titles)) / len(titles) > 0.85


def _chars(s: str) -> set[str]:
    return set(s)


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b)


def test_lexical_gap(medium: World) -> None:
    res = {r["id"]: _chars(r["title"] + r["abstract"]) for r in medium.results}
    rng = random.Random(0)
    all_ids = list(res)
    rel: list[float] = []
    rand: list[float] = []
    for n in medium.needs:
        q = _chars(n["title"] + n["description"])
        strong = [rid for rid, g in medium.qrels[n["id"]].items() if g == 3]
        rel.extend(_jaccard(q, res[rid]) for rid in strong[:5])
        rand.extend(_jaccard(q, res[rng.choice(all_ids)]) for _ in range(3))
    assert len(rel) > 100
    mean_rel = sum(rel) / len(rel)
    mean_rand = sum(rand) / len(rand)
    assert mean_rel < 0.5  # far from copies of each other
    assert mean_rel > mean_rand + 0.02  # but they do share some terminology


# ---- streaming ---------------------------------------------------------------------------------


def test_iter_results_deterministic_and_consistent(small: World) -> None:
    a = list(iter_results(11, 120))
    b = list(iter_results(11, 120))
    assert len(a) == 120 and a == b
    assert a == small.results[:120]  # prefix of the world's results
    assert list(iter_results(12, 5)) != a[:5]
    assert list(iter_results(11, 0)) == []


def test_write_results(tmp_path: Path) -> None:
    p1 = write_results(tmp_path / "r1.jsonl", seed=9, n=80, progress=False)
    p2 = write_results(tmp_path / "r2.jsonl", seed=9, n=80, progress=False)
    assert p1.read_bytes() == p2.read_bytes()
    lines = p1.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 80
    assert [json.loads(x) for x in lines] == list(iter_results(9, 80))
    g1 = write_results(tmp_path / "a" / "r.jsonl.gz", seed=9, n=80, progress=False)
    g2 = write_results(tmp_path / "b" / "r.jsonl.gz", seed=9, n=80, progress=False)
    assert g1.read_bytes() == g2.read_bytes()
    assert gzip.decompress(g1.read_bytes()) == p1.read_bytes()


def test_cli_world(tmp_path: Path) -> None:
    from data.synthetic.__main__ import main

    rc = main(
        ["world", "--out", str(tmp_path), "--seed", "2", "--results", "60", "--needs", "8"]
        + ["--enterprises", "3", "--funds", "2"]
    )
    assert rc == 0
    assert len((tmp_path / "needs.jsonl").read_text(encoding="utf-8").splitlines()) == 8


def test_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        generate_world(n_results=-1)
    with pytest.raises(ValueError):
        generate_world(n_results=10, n_needs=5, n_enterprises=0)
