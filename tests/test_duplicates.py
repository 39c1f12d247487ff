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


def test_short_generic_titles_and_a_qualifier_naming_another_material_are_not_grouped() -> None:
    # The read sample (eval/benchmarks/DUPLICATES.md): equal titles under 6 characters were generic names, and a
    # two-character qualifier on a ten-character title (bigram Jaccard 10/12 = 0.833) named a different work.
    groups = DuplicateGroups()
    groups.build([
        ("s1", "打印设备"), ("s2", "打印设备"),
        ("q1", "锂离子电池负极材料研发"), ("q2", "磷烯锂离子电池负极材料研发"),
        ("t1", "生物质气化燃气替代化石燃料技术"), ("t2", "生物质气化燃气替代化石燃料"),  # a generic suffix: 0.857
    ])
    assert groups.groups() == [["t1", "t2"]]
    assert groups.existing_duplicates([("s3", "打印设备"), ("q3", "磷烯锂离子电池负极材料研发")]) == {"q3": ["q2"]}
