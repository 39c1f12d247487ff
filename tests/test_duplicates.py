"""Duplicate groups: exact (normalised) and near titles, kept in step with adds, updates and deletes, saved."""

from __future__ import annotations

from pathlib import Path

from recommender.duplicates import DuplicateGroups, normalise_title


def test_normalised_title_ignores_width_case_punctuation_and_space() -> None:
    assert normalise_title("ＡＢＣ 高强 微孔，隔热！") == normalise_title("abc高强微孔隔热") == "abc高强微孔隔热"


def test_groups_follow_every_change_and_survive_saving(tmp_path: Path) -> None:
    groups = DuplicateGroups()
    groups.build([
        ("a", "通讯基站风光互补发电系统"), ("b", "通讯基站风光互补发电系统产品"),  # near: bigram Jaccard 10/12
        ("c", "通讯基站，风光互补发电系统"),  # exact after normalising
        ("d", "锂离子电池正极材料制备方法"), ("e", "锂离子电池负极材料制备方法"),  # different works: 8/14 < 0.8
    ])
    assert groups.groups() == [["a", "b", "c"]]
    assert groups.members("b") == ["a", "b", "c"] and groups.group_of("d") == "d"
    groups.upsert([("c", "完全不同的题目")])  # an update moves c out
    assert groups.members("a") == ["a", "b"] and groups.group_of("c") == "c"
    groups.upsert([("f", "锂离子电池正极材料制备方法。")])  # an add joins d
    groups.save(tmp_path)
    loaded = DuplicateGroups()
    loaded.load(tmp_path, {})
    assert sorted(loaded.groups()) == [["a", "b"], ["d", "f"]]
    loaded.delete(["a"])  # a delete after loading (the LSH is rebuilt from the saved keys)
    assert loaded.groups() == [["d", "f"]]
    loaded.upsert([("g", "通讯基站风光互补发电系统")])  # b's near duplicate found again through the rebuilt LSH
    assert sorted(loaded.groups()) == [["b", "g"], ["d", "f"]]
