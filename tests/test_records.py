"""Every bad-input case gets a clear error naming the file, the line or row and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recommender.records import RecordFileError, load_records, parse_record


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def jsonl(*rows: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)


def error_text(path: Path, kind: str = "result") -> str:
    with pytest.raises(RecordFileError) as info:
        load_records(path, kind)  # type: ignore[arg-type]
    return str(info.value)


def test_valid_jsonl_keeps_extra_fields(results_path: Path):
    records, report = load_records(results_path, "result")
    assert len(records) == 8 and not report.skipped
    assert records[0].extra["trl"] == 6 and records[0].keywords == ("三元正极材料", "锂离子电池")


def test_line_that_is_not_json(tmp_path: Path):
    path = write(tmp_path, "r.jsonl", jsonl({"id": "a", "title": "标题"}, "{not json"))
    message = error_text(path)
    assert "r.jsonl" in message and "line 2" in message and "not valid JSON" in message


def test_missing_id_and_title(tmp_path: Path):
    path = write(tmp_path, "r.jsonl", jsonl({"title": "标题"}, {"id": "b", "title": "  "}))
    message = error_text(path)
    assert "line 1, field 'id'" in message and "line 2, field 'title'" in message


def test_duplicate_id(tmp_path: Path):
    path = write(tmp_path, "r.jsonl", jsonl({"id": "a", "title": "一"}, {"id": "a", "title": "二"}))
    message = error_text(path)
    assert "line 2, field 'id'" in message and "duplicate id 'a'" in message and "line 1" in message


def test_wrong_types(tmp_path: Path):
    path = write(
        tmp_path, "r.jsonl",
        jsonl({"id": ["x"], "title": "一"}, {"id": "b", "title": {"t": 1}}, {"id": "c", "title": "三", "keywords": 5},
              {"id": "d", "title": "四", "trl": 12}, {"id": "e", "title": "五", "abstract": ["x"]}),
    )
    message = error_text(path)
    for fragment in ("line 1, field 'id'", "line 2, field 'title'", "line 3, field 'keywords'",
                     "line 4, field 'trl'", "line 5, field 'abstract'"):
        assert fragment in message


def test_unreadable_encoding(tmp_path: Path):
    path = write(tmp_path, "r.jsonl", '{"id": "a", "title": "锂电池"}\n'.encode("gbk"))
    assert "not UTF-8" in error_text(path)
    csv_path = write(tmp_path, "r.csv", "id,title\na,锂电池\n".encode("gbk"))
    assert "not UTF-8" in error_text(csv_path)


def test_empty_file(tmp_path: Path):
    assert "is empty" in error_text(write(tmp_path, "r.jsonl", ""))
    assert "is empty" in error_text(write(tmp_path, "blank.jsonl", "\n\n"))


def test_skip_invalid_reports_exactly_what_was_skipped(tmp_path: Path):
    path = write(tmp_path, "r.jsonl", jsonl({"id": "a", "title": "一"}, "oops", {"id": "a", "title": "二"}))
    records, report = load_records(path, "result", skip_invalid=True)
    assert [r.id for r in records] == ["a"]
    assert [e.location for e in report.skipped] == ["line 2", "line 3"]
    assert "skipped 2" in report.summary()


def test_csv_and_excel_are_read(tmp_path: Path):
    frame = pd.DataFrame([{"id": "001", "title": "碳化硅器件", "keywords": "碳化硅;功率器件", "trl": 5}])
    frame.to_csv(tmp_path / "r.csv", index=False)
    frame.to_excel(tmp_path / "r.xlsx", index=False)
    for name in ("r.csv", "r.xlsx"):
        records, _ = load_records(tmp_path / name, "result")
        assert records[0].id == "001" and records[0].keywords == ("碳化硅", "功率器件")
        assert records[0].extra["trl"] == 5


def test_bad_rows_in_csv_name_the_row(tmp_path: Path):
    pd.DataFrame([{"id": "a", "title": "一"}, {"id": "b", "title": ""}]).to_csv(tmp_path / "r.csv", index=False)
    assert "row 3, field 'title'" in error_text(tmp_path / "r.csv")


def test_unsupported_and_missing_files(tmp_path: Path):
    assert "unsupported file type" in error_text(write(tmp_path, "r.txt", "x"))
    assert "does not exist" in error_text(tmp_path / "nope.jsonl")
    assert "not a readable Excel" in error_text(write(tmp_path, "bad.xlsx", "not a workbook"))


def test_nul_characters_and_unpaired_surrogates_are_dropped_from_every_text():
    """Neither is text, and PostgreSQL stores neither: a record means the same on SQLite and PostgreSQL."""
    raw = {"id": "R\x001", "title": "固态\x00电池", "abstract": "a\ud800b", "field": "新能源\x00",
           "k\x00": ["x\x00", {"y": "\udc00"}]}
    record, problems = parse_record(raw, "result", "f", "line 1")
    assert problems == [] and record is not None
    assert (record.id, record.title, record.body) == ("R1", "固态电池", "a?b")
    assert record.extra == {"field": "新能源", "k": ["x", {"y": "?"}]}
    assert parse_record({"id": "R2", "title": "\x00"}, "result", "f", "line 2")[1][0].field == "title"
