"""Triage and push (issue 4): shortlist by transferability, push to enterprises and funds, demo world CLI.

Real components throughout: the default hybrid pipeline (e5-small, BM25, char TF-IDF) on hand-written
Chinese records, the CLI in a subprocess, real Excel files.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data.synthetic import generate_world, write_world
from recommender.errors import EmptyIndexError
from recommender.matcher import Matcher, UnknownIdError
from recommender.records import Record, RecordFileError, load_needs, load_results, parse_record
from recommender.settings import PipelineSettings
from recommender.triage import (
    Fund,
    load_enterprises,
    load_funds,
    match_funds,
    push_for_need,
    push_for_result,
    readiness,
    shortlist,
    transferability,
)
from recommender.triage.export import write_csv, write_xlsx
from recommender.triage.market import pull_of
from techmatch.cli import app

FIXTURES = Path(__file__).parent / "fixtures"


def techmatch(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "techmatch", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def result(rid: str, title: str, abstract: str, **extra) -> Record:
    return Record(rid, title, abstract, extra=extra)


# Three enterprises want better cathode materials; nobody asks about quantum key distribution.
HOT = result("HOT", "高镍三元正极材料包覆改性及其制备方法",
             "通过包覆改性提高锂离子电池正极材料的循环寿命和比容量，已中试。",
             field="新能源", trl=7, ip_status="granted")
COLD = result("COLD", "量子密钥分发系统的相位补偿方法", "一种量子通信中实时相位漂移补偿的理论方法。",
              field="量子信息", trl=1, ip_status="granted")
OTHERS = [
    result("SIC", "碳化硅功率模块低损耗封装结构", "降低寄生电感和开关损耗，适用于电驱系统。", field="集成电路", trl=5,
           ip_status="pending"),
    result("FEED", "反刍动物无抗饲料添加剂", "植物提取物复配替代抗生素，提高牛羊日增重。", field="农业", trl=6,
           ip_status="none"),
    result("WATER", "城市污水低碳脱氮工艺", "短程硝化厌氧氨氧化脱氮，降低曝气能耗。", field="环保", trl=4),
]
NEEDS = [
    Record("NA", "动力电池正极材料循环寿命提升", "三元锂电池正极材料循环衰减快，希望提高循环寿命和比容量。",
           extra={"enterprise": "E1", "enterprise_name": "甲电池公司", "budget": 500}),
    Record("NB", "锂离子电池高镍正极包覆技术", "寻求高镍三元正极材料的包覆改性工艺，提升容量保持率。",
           extra={"enterprise": "E2", "enterprise_name": "乙新能源公司", "budget": 200}),
    Record("NC", "三元正极材料量产降本", "高镍正极材料制备工艺放大，提高一致性与循环性能。",
           extra={"enterprise": "E3", "budget": 100}),
]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.build([HOT, COLD, *OTHERS], NEEDS)


# -- ranking ------------------------------------------------------------------------------------------
def test_wanted_mature_result_outranks_unwanted_immature_one(matcher: Matcher):
    entries = shortlist(matcher, NEEDS, top=5, progress=False)
    ranks = {e.result_id: e.rank for e in entries}
    assert ranks["HOT"] == 1 and ranks["HOT"] < ranks["COLD"]
    hot = entries[0]
    assert set(hot.top_need_ids) == {"NA", "NB", "NC"}  # all three needs want it
    assert hot.market_pull > 0.7 and hot.readiness > 0.8
    assert [t.id for t in hot.push if t.kind == "enterprise"][:3] and {t.need_id for t in hot.push} >= {"NA", "NB"}
    assert any("正极" in r or "NA" in r or "NB" in r for r in hot.reasons)
    cold = next(e for e in entries if e.result_id == "COLD")
    assert cold.market_pull < hot.market_pull


@pytest.mark.parametrize("ip", ["granted", "pending", "none", None])
def test_no_pull_trl1_never_beats_strong_pull_trl7_granted(ip):
    """Whatever the unwanted result's IP, and however weak 'strongly wanted by several needs' is taken."""
    cold = result("C", "t", "", trl=1, **({"ip_status": ip} if ip else {}))
    hot = result("H", "t", "", trl=7, ip_status="granted")
    for strength in (0.5, 0.7, 1.0):
        for n_needs in (2, 3, 10):
            wanted = transferability(pull_of([strength] * n_needs), readiness(hot))
            assert wanted > transferability(0.0, readiness(cold))


def test_shortlist_respects_top_and_is_deterministic(matcher: Matcher):
    first = shortlist(matcher, NEEDS, top=2, progress=False)
    assert [e.rank for e in first] == [1, 2]
    again = shortlist(matcher, NEEDS, top=2, progress=False)
    assert [(e.result_id, e.score) for e in first] == [(e.result_id, e.score) for e in again]
    assert len(shortlist(matcher, NEEDS, top=100, progress=False)) == 5  # never more than the corpus


def test_missing_readiness_fields_are_neutral_not_penalised():
    bare = result("B", "t", "")
    assert readiness(bare) == pytest.approx(0.5)
    assert readiness(result("X", "t", "", trl=9, ip_status="已授权")) == pytest.approx(1.0)
    assert readiness(result("Y", "t", "", trl=1, ip_status="none")) == pytest.approx(0.0)


# -- funds --------------------------------------------------------------------------------------------
FUNDS = [
    Fund("F1", "新能源天使基金", ["新能源"], ["angel"], 100, 500, "投早投小"),
    Fund("F2", "生物医药天使基金", ["生物医药"], ["seed", "angel"], 50, 300, ""),
    Fund("F3", "新能源成长基金", ["新能源"], ["B"], 1000, 3000, ""),
    Fund("F4", "新能源种子基金", ["新能源", "先进制造"], ["seed"], 50, 200, ""),
]


def test_funds_are_matched_by_sector_and_stage():
    mature = result("M", "固态电池", "", field="新能源", trl=7)
    targets = match_funds(mature, FUNDS)
    assert [t.id for t in targets] == ["F1", "F3"]  # angel fits TRL 7; B is 7-9; seed and biomedicine do not
    assert all(t.kind == "fund" and "新能源" in t.reason for t in targets)
    early = result("E", "固态电池", "", field="新能源", trl=3)
    assert [t.id for t in match_funds(early, FUNDS)] == ["F4", "F1"]  # seed fits; angel is one level off
    assert match_funds(result("Q", "量子通信", "", field="量子信息", trl=4), FUNDS) == []
    by_text = result("T", "面向新能源汽车的电驱控制", "", trl=5)  # no field: the sector named in its text
    assert "F1" in [t.id for t in match_funds(by_text, FUNDS)]


def test_load_funds_reads_csv_and_reports_bad_rows(tmp_path: Path):
    good = tmp_path / "funds.csv"
    good.write_text("id,name,sectors,stages,ticket_min,ticket_max,thesis\n"
                    "F1,甲基金,新能源;先进制造,种子轮;天使轮,100,500,投早\n", encoding="utf-8")
    (fund,) = load_funds(good)
    assert fund.sectors == ["新能源", "先进制造"] and fund.stages == ["seed", "angel"] and fund.ticket_max == 500
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "F1", "sectors": [], "stages": ["C轮"]}, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    with pytest.raises(RecordFileError) as info:
        load_funds(bad)
    assert "line 1" in str(info.value) and "sectors" in str(info.value) and "unknown stage 'C轮'" in str(info.value)
    with pytest.raises(RecordFileError, match="does not exist"):
        load_funds(tmp_path / "missing.jsonl")


def test_shortlist_pushes_to_funds_and_named_enterprises(matcher: Matcher, tmp_path: Path):
    enterprises = {"E1": {"name": "甲电池股份有限公司"}}
    (hot, *_) = shortlist(matcher, NEEDS, top=1, funds=FUNDS, enterprises=enterprises, progress=False)
    kinds = [t.kind for t in hot.push]
    assert "enterprise" in kinds and "fund" in kinds
    assert "甲电池股份有限公司" in [t.name for t in hot.push]  # name from the enterprises file
    assert "乙新能源公司" in [t.name for t in hot.push]  # else from the need's enterprise_name
    csv_path = write_csv([hot], tmp_path / "s.csv")
    xlsx_path = write_xlsx([hot], tmp_path / "s.xlsx")
    push_sheet = pd.read_excel(xlsx_path, sheet_name="push")
    assert set(push_sheet["target_kind"]) == {"enterprise", "fund"}
    assert pd.read_excel(xlsx_path, sheet_name="shortlist")["result_id"].tolist() == ["HOT"]
    assert csv_path.read_text(encoding="utf-8").startswith("rank,result_id,score,top_need_ids")


def test_enterprise_contacts_are_dropped(tmp_path: Path):
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({"id": "E1", "name": "甲", "contact": {"phone": "029-1"}}) + "\n", encoding="utf-8")
    assert load_enterprises(path) == {"E1": {"id": "E1", "name": "甲"}}


# -- two-way push -------------------------------------------------------------------------------------
def test_push_both_ways(matcher: Matcher):
    targets = push_for_result(matcher, "HOT", funds=FUNDS, k=3)
    enterprises = [t for t in targets if t.kind == "enterprise"]
    assert {t.id for t in enterprises} == {"E1", "E2", "E3"} and {t.need_id for t in enterprises} == {"NA", "NB", "NC"}
    assert all(t.need_id in t.reason for t in enterprises)
    assert [t.id for t in targets if t.kind == "fund"] == ["F1", "F3"]  # TRL 7: angel and B fit, seed does not
    for need in NEEDS:
        assert push_for_need(matcher, need.id, k=3)[0].id == "HOT"
    with pytest.raises(UnknownIdError, match="unknown result id 'R404'"):
        push_for_result(matcher, "R404")
    with pytest.raises(UnknownIdError, match="unknown need id 'N404'"):
        push_for_need(matcher, "N404")
    without_needs = Matcher(matcher.results)
    with pytest.raises(EmptyIndexError, match="holds no needs"):
        push_for_need(without_needs, "NA")
    assert [t.kind for t in push_for_result(without_needs, "HOT", funds=FUNDS)] == ["fund", "fund"]


def test_shortlist_and_push_count_a_duplicate_group_once():
    twin = result("HOT2", "高镍三元正极材料包覆改性及其制备方法。", HOT.text, field="新能源", trl=7,
                  ip_status="granted")  # HOT registered a second time
    matcher = Matcher.build([HOT, twin, COLD, *OTHERS], NEEDS)
    entries = shortlist(matcher, NEEDS, top=6, progress=False)
    ids = [e.result_id for e in entries]
    assert len(ids) == 5 and len({"HOT", "HOT2"} & set(ids)) == 1  # one row for the group
    first = entries[0]
    assert {first.result_id, *first.duplicate_ids} == {"HOT", "HOT2"}
    row = first.to_row()
    assert list(row)[:4] == ["rank", "result_id", "score", "top_need_ids"] and row["duplicate_ids"]
    pushed = push_for_need(matcher, "NA", k=3)
    assert {pushed[0].id, *pushed[0].duplicates} == {"HOT", "HOT2"}
    assert not {"HOT", "HOT2"} <= {m.id for m in pushed}
    assert {"HOT", "HOT2"} <= {m.id for m in push_for_need(matcher, "NA", k=3, collapse=False)}


# -- command line -------------------------------------------------------------------------------------
def test_cli_demo_world_shortlist_and_push(tmp_path: Path):
    world = tmp_path / "world"
    proc = techmatch("demo-world", "--out", str(world), "--results", "400", "--needs", "40", "--enterprises", "6",
                     "--funds", "12", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    again = write_world(generate_world(3, 400, 40, 6, 12), tmp_path / "again")  # same seed: same bytes
    for name in ("results", "needs", "enterprises", "funds", "qrels", "transferable"):
        assert (world / again[name].name).read_bytes() == again[name].read_bytes(), name

    index = tmp_path / "index"
    lexical = PipelineSettings(signals=["bm25", "char"])  # the dense side is covered above; keep this test fast
    Matcher.build(load_results(world / "results.jsonl"), load_needs(world / "needs.jsonl"), lexical).save(index)
    out = tmp_path / "short.csv"
    proc = techmatch("shortlist", "--needs", str(world / "needs.jsonl"), "--results", str(world / "results.jsonl"),
                     "--top", "19", "--out", str(out), "--index", str(index), "--funds", str(world / "funds.jsonl"),
                     "--enterprises", str(world / "enterprises.jsonl"))
    assert proc.returncode == 0, proc.stderr
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 19 and [int(r["rank"]) for r in rows] == list(range(1, 20))
    assert {"rank", "result_id", "score", "top_need_ids"} <= set(rows[0])
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    needs = {json.loads(line)["id"] for line in (world / "needs.jsonl").read_text(encoding="utf-8").splitlines()}
    assert all(set(r["top_need_ids"].split(";")) <= needs for r in rows if r["top_need_ids"])
    workbook = pd.read_excel(out.with_suffix(".xlsx"), sheet_name=None)
    assert set(workbook) == {"shortlist", "push"} and len(workbook["shortlist"]) == 19
    assert not workbook["push"]["reason"].str.contains("@example.com").any()  # contacts never leave

    top_result = rows[0]["result_id"]
    pushed = CliRunner().invoke(app, ["push", "--index", str(index), "--result", top_result, "--funds",
                                      str(world / "funds.jsonl"), "--json"])
    assert pushed.exit_code == 0, pushed.output
    payload = json.loads(pushed.output.strip().splitlines()[-1])
    assert payload["result"] == top_result and {t["kind"] for t in payload["targets"]} == {"enterprise", "fund"}
    proc = techmatch("push", "--index", str(index), "--need", "N_NOPE")
    assert proc.returncode == 2 and "error: unknown need id 'N_NOPE'" in proc.stderr
    assert "Traceback" not in proc.stderr

    # every other user mistake: a clear message (main() prints it and exits 2), never a crash
    runner = CliRunner()
    need_args = ["--needs", str(world / "needs.jsonl"), "--results", str(world / "results.jsonl"), "--top", "3"]
    for bad_args, message in [
        (["push", "--index", str(index), "--result", "R_NOPE"], "unknown result id 'R_NOPE'"),
        (["push", "--index", str(index)], "exactly one of --result or --need"),
        (["push", "--index", str(tmp_path), "--need", "N1"], "not a techmatch index folder"),
        (["shortlist", *need_args[:2], "--results", str(FIXTURES / "results.jsonl"), "--top", "3",
          "--out", str(tmp_path / "x.csv"), "--index", str(index)], "was not built from"),
        (["shortlist", *need_args, "--out", str(tmp_path / "x.txt")], "--out must name a .csv file"),
        (["shortlist", *need_args, "--out", str(tmp_path / "x.csv"), "--train-needs", str(world / "needs.jsonl")],
         "--train-needs and --train-qrels go together"),
        (["shortlist", *need_args, "--out", str(tmp_path / "x.csv"), "--funds", str(world / "qrels.txt")],
         "unsupported file type"),
    ]:
        outcome = runner.invoke(app, bad_args)
        assert outcome.exit_code == 2, (bad_args, outcome.output, outcome.exception)
        assert message in outcome.stderr and outcome.stderr.startswith("error: "), (bad_args, outcome.stderr)


def test_progress_callback_counts_up_to_the_total_and_changes_nothing():
    """on_progress (the web workbench's progress bar) reports needs matched (a batch of 256 at a time) then push
    lists written, ending at done == total, and the shortlist is the same with it as without."""
    world = generate_world(seed=7, n_results=200, n_needs=300)
    results = [parse_record(r, "result", "demo", str(i))[0] for i, r in enumerate(world.results)]
    needs = [parse_record(r, "need", "demo", str(i))[0] for i, r in enumerate(world.needs)]
    built = Matcher.build(results, None, PipelineSettings(signals=["bm25", "char"]))
    calls: list[tuple[int, int]] = []
    with_bar = shortlist(built, needs, top=30, progress=False, on_progress=lambda d, t: calls.append((d, t)))
    plain = shortlist(built, needs, top=30, progress=False)
    assert [(e.result_id, e.score, e.top_need_ids) for e in with_bar] == \
        [(e.result_id, e.score, e.top_need_ids) for e in plain]
    assert calls == [(256, 330), (300, 330), (325, 330), (330, 330)]
