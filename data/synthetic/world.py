"""Generation of the synthetic demo world: results, needs, enterprises, funds and ground truth.

Everything is drawn from named ``random.Random`` streams derived from the seed (never global
state, never ``hash()``), so a seed always yields the same world, byte for byte, on any machine
and under any ``PYTHONHASHSEED``.  Results come from one sequential stream, so
``iter_results(seed, n)`` is a prefix of ``iter_results(seed, m)`` for ``n < m`` and the world's
results are exactly ``list(iter_results(seed, n_results))``.

The latent structure (which concept and which aspects a record is about) drives the ground truth
but is not written into the records: a matcher has to recover it from text.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import TypeVar

from . import vocabulary as V
from .vocabulary import Concept, Subtopic, Vocabulary, load_vocabulary

__all__ = ["TRANSFERABLE_RATE", "World", "generate_world", "iter_results"]

#: Share of results the technology managers picked as easy to transfer (1,400 of 30,000).
TRANSFERABLE_RATE = 0.047

_T = TypeVar("_T")


def _rng(seed: int, stream: str) -> random.Random:
    """An independent generator per purpose, so adding draws to one stream never shifts another."""
    return random.Random(f"techmatch-synthetic/{seed}/{stream}")


def _cum(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(rng: random.Random, items: Sequence[_T], cum: Sequence[float]) -> _T:
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


def _weighted(rng: random.Random, pairs: Sequence[tuple[_T, float]]) -> _T:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _width(n: int, minimum: int) -> int:
    return max(minimum, len(str(n)))


# --------------------------------------------------------------------------------------------------
# Seed-level latent structure shared by every part of the world
# --------------------------------------------------------------------------------------------------


@dataclass
class _Structure:
    vocab: Vocabulary
    supply_cum: list[float]
    demand: list[float]
    teams: list[list[tuple[str, str]]]  # per subtopic: (college, team)


@lru_cache(maxsize=8)
def _structure(seed: int) -> _Structure:
    """Concept popularity on both sides and the research teams: fixed by the seed alone."""
    vocab = load_vocabulary()
    rng = _rng(seed, "structure")
    field_w = {f.name: V.FIELD_WEIGHTS.get(f.name, 1.0) for f in vocab.fields}
    sub_w = [rng.lognormvariate(0.0, 0.3) for _ in vocab.subtopics]
    supply: list[float] = []
    demand: list[float] = []
    for c in vocab.concepts:
        s = math.sqrt(field_w[c.subtopic.field.name]) * sub_w[c.subtopic.idx] * rng.lognormvariate(0.0, 0.7)
        supply.append(s)
        # Demand is only loosely tied to supply: hot academic topics are not always what industry asks.
        demand.append(math.exp(0.5 * math.log(s) + rng.gauss(0.0, 0.8)))
    used: set[str] = set()
    teams: list[list[tuple[str, str]]] = []
    for st in vocab.subtopics:
        colleges = st.field.colleges
        col_cum = _cum([1.0 / (k + 1) for k in range(len(colleges))])
        group = []
        for _ in range(rng.randint(5, 10)):
            college = _pick(rng, colleges, col_cum)
            while True:
                name = _person(rng)
                title = _weighted(rng, V.TEAM_TITLES)
                team = f"{name}{title}团队"
                if team not in used:
                    used.add(team)
                    break
            group.append((college, team))
        teams.append(group)
    return _Structure(vocab, _cum(supply), demand, teams)


def _person(rng: random.Random) -> str:
    given = rng.choice(V.GIVEN_CHARS)
    if rng.random() < 0.7:
        given += rng.choice(V.GIVEN_CHARS)
    return rng.choice(V.SURNAMES) + given


# --------------------------------------------------------------------------------------------------
# Results (university side)
# --------------------------------------------------------------------------------------------------

_CATEGORY_BY_KIND: dict[str, tuple[tuple[str, float], ...]] = {
    "M": (("专利", 0.62), ("论文", 0.30), ("样机", 0.08)),
    "D": (("专利", 0.60), ("论文", 0.25), ("样机", 0.15)),
    "S": (("专利", 0.50), ("论文", 0.30), ("样机", 0.06), ("软件著作权", 0.14)),
    "P": (("专利", 0.62), ("论文", 0.30), ("样机", 0.08)),
}
_TRL_BASE = {"论文": 2.4, "专利": 3.7, "样机": 5.9, "软件著作权": 5.0}
_YEARS = list(range(2010, 2026))
_YEAR_CUM = _cum([1.0 + 0.22 * (y - 2010) if y < 2025 else 2.2 for y in _YEARS])
_PROTO = {"M": "中试样品", "D": "工程样机", "S": "原型系统", "P": "中试工艺包"}


@dataclass
class _Latent:
    concept: int
    mask: int
    trl: int
    ip: str


class _ResultMaker:
    """Builds one result at a time; kept as a class so the hot loop touches only local lookups."""

    def __init__(self, st: _Structure) -> None:
        self.st = st
        self.concepts = st.vocab.concepts
        self.cat_tables = {
            k: ([c for c, _ in v], _cum([w for _, w in v])) for k, v in _CATEGORY_BY_KIND.items()
        }

    def make(self, rng: random.Random, rid: str) -> tuple[dict, _Latent]:
        c = _pick(rng, self.concepts, self.st.supply_cum)
        sub = c.subtopic
        cats, cat_cum = self.cat_tables[c.kind]
        category = _pick(rng, cats, cat_cum)
        year = _pick(rng, _YEARS, _YEAR_CUM)
        trl, ip = _maturity(rng, category, year)
        college, team = rng.choice(self.st.teams[sub.idx])
        acad = c.acad[0] if rng.random() < 0.35 else rng.choice(c.acad)
        method = rng.choice(sub.methods)
        n_asp = 1 if rng.random() < 0.55 else 2
        asp = rng.sample(range(len(sub.aspects)), n_asp)
        mask = 0
        for a in asp:
            mask |= 1 << a
        effects = [rng.choice(sub.aspects[a].effects).fill(rng) for a in asp]
        problem = rng.choice(sub.aspects[asp[0]].problems).fill(rng)
        if category == "专利":
            title, abstract = _patent(rng, c, sub, acad, method, effects, problem, asp)
        elif category == "论文":
            title, abstract = _paper(rng, c, sub, acad, method, effects, problem, asp)
        elif category == "样机":
            title, abstract = _prototype(rng, c, sub, acad, method, effects)
        else:
            title, abstract = _software(rng, sub, acad, method, effects)
        keywords = [c.name]
        if acad != c.name:
            keywords.append(acad)
        keywords.append(method)
        keywords.extend(sub.aspects[a].key for a in asp)
        if rng.random() < 0.5:
            keywords.append(rng.choice(sub.terms))
        keywords = list(dict.fromkeys(keywords))
        record = {
            "id": rid,
            "title": title,
            "abstract": abstract,
            "keywords": keywords,
            "institution": college,
            "team": team,
            "field": sub.field.name,
            "trl": trl,
            "ip_status": ip,
            "year": year,
            "category": category,
        }
        return record, _Latent(c.idx, mask, trl, ip)


def _maturity(rng: random.Random, category: str, year: int) -> tuple[int, str]:
    """TRL and IP status: prototypes are mature, papers rarely protected, old patents granted."""
    age = 2025 - year
    trl = round(_TRL_BASE[category] + 0.07 * age + rng.gauss(0.0, 0.9))
    trl = min(9, max(1, trl))
    u = rng.random()
    if category == "专利":
        p_granted = min(0.92, 0.08 + 0.2 * age)  # examination takes 2-3 years
        ip = "none" if u < 0.03 else ("granted" if rng.random() < p_granted else "pending")  # none: lapsed
    elif category == "论文":
        ip = "none" if u < 0.80 else ("pending" if u < 0.92 else "granted")
    elif category == "样机":
        ip = "granted" if u < 0.55 else ("pending" if u < 0.85 else "none")
    else:
        ip = "granted" if u < 0.92 else "none"
    return trl, ip


def _two(rng: random.Random, items: Sequence[str]) -> tuple[str, str]:
    a, b = rng.sample(range(len(items)), 2)
    return items[a], items[b]


def _sibling(rng: random.Random, c: Concept) -> str | None:
    others = [o for o in c.subtopic.concepts if o is not c]
    return rng.choice(rng.choice(others).acad) if others else None


_TITLE_SUFFIXES = {
    "M": ("及其制备方法", "的制备方法", "及其制备方法和应用", "、制备方法及其应用", "及其在{app}中的应用"),
    "D": ("", "及其控制方法", "及其制造方法", "系统及其运行方法", "结构", "装置及方法"),
    "S": ("方法", "方法及系统", "方法、系统、设备及存储介质", "方法及装置", "系统"),
    "P": ("方法", "工艺", "方法及装置", "工艺及其应用", "工艺参数优化方法"),
}
_TAIL_WORDS = ("系统", "方法", "工艺", "装置", "结构", "设备", "平台")
_COSTLY = ("成本", "国产", "经济性", "能耗物耗")


def _join_title(acad: str, suffix: str) -> str:
    """Avoid 电池管理系统系统 when the academic form already ends with the suffix's head word."""
    for word in _TAIL_WORDS:
        if acad.endswith(word) and suffix.startswith(word):
            return acad + suffix[len(word) :]
    return acad + suffix


def _patent_title(
    rng: random.Random, c: Concept, sub: Subtopic, acad: str, method: str, asp: list[int]
) -> str:
    """一种 + optional qualifier + technology + kind-specific claim suffix (as patent titles go)."""
    app = rng.choice(sub.apps)
    term = rng.choice(sub.terms)
    k = rng.randrange(9)
    if k == 0:
        prefix = ""
    elif k == 1:
        prefix = f"基于{term}的"
    elif k <= 3:
        prefix = f"基于{method}的"
    elif k == 4:
        prefix = f"{rng.choice(('用于', '面向', '适用于'))}{app}的"
    elif k == 5:
        prefix = {
            "M": f"{rng.choice(('含', '掺杂'))}{term}的",
            "D": f"集成{term}的",
            "S": f"融合{term}信息的",
            "P": f"采用{method}的",
        }[c.kind]
    elif k == 6:
        keys = [sub.aspects[a].key for a in asp]
        if any(w in keys[0] for w in _COSTLY):
            prefix = "低成本"
        elif len(keys) == 2:
            prefix = f"兼顾{keys[0]}与{keys[1]}的"
        else:
            prefix = f"提高{keys[0]}的"
    elif k == 7:
        prefix = rng.choice(("新型", "改进型", "高效", "复合"))
        if prefix in acad:
            prefix = "新型"
    else:
        prefix = f"基于{method}与{rng.choice(sub.methods)}的"
    suffix = rng.choice(_TITLE_SUFFIXES[c.kind])
    if "{app}" in suffix:
        suffix = suffix.replace("{app}", app if k != 4 else rng.choice(sub.apps))
    return "一种" + prefix + _join_title(acad, suffix)


def _patent(
    rng: random.Random,
    c: Concept,
    sub: Subtopic,
    acad: str,
    method: str,
    effects: list[str],
    problem: str,
    asp: list[int],
) -> tuple[str, str]:
    title = _patent_title(rng, c, sub, acad, method, asp)
    t1, t2 = _two(rng, sub.terms)
    parts = [f"本发明公开了{title}，属于{sub.name}技术领域。"]
    if rng.random() < 0.5:
        parts.append(f"本发明旨在解决现有技术中{acad}{problem}的问题。")
    if c.kind == "M":
        ratio = rng.choice(("摩尔比", "质量比"))
        mix = rng.choice(("搅拌", "球磨", "超声分散"))
        heat = rng.choice(("煅烧", "热处理", "保温反应"))
        post = rng.choice(("洗涤、干燥", "研磨、过筛", "冷却、破碎"))
        parts.append(
            f"所述制备方法包括以下步骤：S1、将{t1}与{t2}按{rng.randint(1, 5)}:{rng.randint(1, 5)}的{ratio}"
            f"混合，{mix}{rng.randint(1, 12)}h；S2、采用{method}处理，在{rng.randrange(300, 1201, 10)}℃下"
            f"{heat}{rng.randint(1, 24)}h；S3、经{post}后得到所述{acad}。"
        )
    elif c.kind == "D":
        t3 = rng.choice([t for t in sub.terms if t not in (t1, t2)])
        rel = rng.choice(("固定连接", "相对设置", "同轴布置", "通过连接件相连"))
        pos = rng.choice(("一侧", "内部", "外周", "上方"))
        parts.append(
            f"所述装置包括{t1}、{t2}和{t3}，所述{t1}与{t2}{rel}，所述{t3}设置于{t2}的{pos}；"
            f"通过{method}对所述{t1}进行{rng.choice(('优化设计', '实时调控', '状态感知'))}。"
        )
    elif c.kind == "S":
        model = rng.choice(("预测模型", "识别模型", "优化模型", "评估模型"))
        parts.append(
            f"所述方法包括：S1、获取{t1}和{t2}数据并进行预处理；S2、基于{method}构建{model}，"
            f"提取{rng.choice(('多尺度特征', '时空特征', '关键特征'))}；S3、根据{model}的输出"
            f"{rng.choice(('生成控制指令', '得到诊断结果', '完成决策优化', '输出评估结果'))}。"
        )
    else:
        param = rng.choice(("温度", "压力", "功率", "时间", "pH值"))
        parts.append(
            f"所述方法包括预处理、{method}和后处理步骤，其中{method}阶段的{param}按预设曲线控制，"
            f"并引入{t1}以改善{t2}的{rng.choice(('均匀性', '稳定性', '转化效率'))}。"
        )
    if rng.random() < 0.2:
        sib = _sibling(rng, c)
        if sib:
            parts.append(f"所述{acad}还可与{sib}配合使用。")
    apps = "、".join(_two(rng, sub.apps))
    parts.append(f"与现有技术相比，{'，'.join(effects)}，可广泛应用于{apps}等领域。")
    return title, "".join(parts)


def _paper(
    rng: random.Random,
    c: Concept,
    sub: Subtopic,
    acad: str,
    method: str,
    effects: list[str],
    problem: str,
    asp: list[int],
) -> tuple[str, str]:
    key = sub.aspects[asp[0]].key
    app = rng.choice(sub.apps)
    term = rng.choice(sub.terms)
    k = rng.randrange(8)
    title = (
        f"基于{method}的{acad}{rng.choice(('性能研究', '设计与实现', '机理研究', '优化研究'))}",
        f"{acad}的{key}提升方法研究",
        f"面向{app}的{acad}关键技术研究",
        f"{method}对{acad}{key}的影响研究",
        f"{term}调控{acad}{key}的机理研究",
        f"{acad}在{app}中的应用研究",
        f"基于{method}与{rng.choice(sub.methods)}的{acad}研究",
        f"{acad}{key}的{rng.choice(('建模与分析', '实验研究', '数值模拟研究'))}",
    )[k]
    t1, t2 = _two(rng, sub.terms)
    mid = (
        f"通过{t1}与{t2}的协同作用，系统研究了关键参数对{key}的影响规律",
        f"建立了考虑{t1}的理论模型，揭示了{key}的演化机理",
        f"对比分析了不同{t2}条件下的性能差异，确定了最优参数组合",
    )[rng.randrange(3)]
    scheme = rng.choice(("方法", "策略", "设计方案"))
    basis = rng.choice(("理论依据", "技术支撑", "新思路"))
    abstract = (
        f"针对{acad}{problem}的问题，本文提出了一种基于{method}的{acad}{scheme}。{mid}。"
        f"实验结果表明，{'，'.join(effects)}。该研究为{app}提供了{basis}。"
    )
    return title, abstract


def _prototype(
    rng: random.Random, c: Concept, sub: Subtopic, acad: str, method: str, effects: list[str]
) -> tuple[str, str]:
    proto = _PROTO[c.kind]
    title = (
        f"{acad}{proto}",
        f"面向{rng.choice(sub.apps)}的{acad}{proto}",
        f"基于{method}的{acad}{proto}",
        f"{rng.choice(('新一代', '国产化', '高性能', '低成本'))}{acad}{proto}",
    )[rng.randrange(4)]
    t1, t2 = _two(rng, sub.terms)
    stage = rng.choice(("实验室环境验证", "中试验证", "用户现场试用"))
    ready = rng.choice(("小批量试制", "产业化推广", "工程化应用"))
    abstract = (
        f"本成果面向{rng.choice(sub.apps)}需求，研制了{acad}{proto}。该{proto}采用{method}，"
        f"集成了{t1}、{t2}等关键部件。经第三方测试，{'，'.join(effects)}。"
        f"目前已完成{stage}，具备{ready}条件。"
    )
    return title, abstract


def _software(
    rng: random.Random, sub: Subtopic, acad: str, method: str, effects: list[str]
) -> tuple[str, str]:
    ver = f"V{rng.randint(1, 3)}.{rng.randint(0, 5)}"
    title = (f"{acad}软件{ver}", f"基于{method}的{acad}平台{ver}")[rng.randrange(2)]
    abstract = (
        f"本软件基于{method}实现了{acad}功能，主要包括数据接入、模型计算、结果可视化等模块，"
        f"支持{rng.choice(sub.terms)}等数据的在线处理。{'，'.join(effects)}。适用于{rng.choice(sub.apps)}。"
    )
    return title, abstract


def _iter_results_latent(seed: int, n: int) -> Iterator[tuple[dict, _Latent]]:
    st = _structure(seed)
    maker = _ResultMaker(st)
    rng = _rng(seed, "results")
    w = _width(n, 6)
    for i in range(1, n + 1):
        yield maker.make(rng, f"R{i:0{w}d}")


def iter_results(seed: int, n: int) -> Iterator[dict]:
    """Stream ``n`` results with O(1) memory, for corpus sizes (800k) a world cannot hold.

    Identical to the results of ``generate_world(seed, n_results=n)``; prefix-stable in ``n``
    except that ids widen beyond 999,999.
    """
    for record, _ in _iter_results_latent(seed, n):
        yield record


# --------------------------------------------------------------------------------------------------
# Enterprises and their needs (industry side)
# --------------------------------------------------------------------------------------------------


def _phone(rng: random.Random, region: V.Region) -> str:
    first = "8" if region.code == "029" else str(rng.randint(5, 8))
    rest = "".join(str(rng.randrange(10)) for _ in range(region.digits - 1))
    return f"{region.code}-{first}{rest}"


def _make_enterprises(seed: int, n: int, vocab: Vocabulary) -> list[dict]:
    rng = _rng(seed, "enterprises")
    fields = list(vocab.fields)
    f_cum = _cum([V.FIELD_WEIGHTS.get(f.name, 1.0) for f in fields])
    r_cum = _cum([r.weight for r in V.REGIONS])
    w = _width(n, 3)
    used: set[str] = set()
    out = []
    for i in range(1, n + 1):
        f = _pick(rng, fields, f_cum)
        region = _pick(rng, V.REGIONS, r_cum)
        size = _weighted(rng, V.SIZES)
        for attempt in itertools.count():
            prefix = region.short if rng.random() < 0.7 else ""
            stem = "".join(rng.sample(V.NAME_STEMS, 2))
            if attempt > 20:
                stem += rng.choice(V.NAME_STEMS)
            suffix = _weighted(rng, V.ENTERPRISE_SUFFIXES)
            if suffix == "集团有限公司" and size != "大型":
                suffix = "科技有限公司"
            trade = rng.choice(f.trade)
            if trade.endswith(("科技", "技术")) and suffix.startswith(("科技", "技术")):
                suffix = suffix[2:]
            name = f"{prefix}{stem}{trade}{suffix}"
            if name not in used:
                used.add(name)
                break
        lo, hi = V.SIZE_STAFF[size]
        tags = sorted(rng.sample(V.ENTERPRISE_TAGS[:5], rng.randint(0, 2)), key=V.ENTERPRISE_TAGS.index)
        if size == "大型" and rng.random() < 0.3:
            tags.append("上市公司")
        eid = f"E{i:0{w}d}"
        out.append(
            {
                "id": eid,
                "name": name,
                "industry": rng.choice(f.industries),
                "field": f.name,
                "region": region.label,
                "size": size,
                "staff": rng.randint(lo, hi),
                "founded": rng.randint(1993, 2012) if size in ("大型", "中型") else rng.randint(2005, 2023),
                "tags": tags,
                "contact": {
                    "name": _person(rng),
                    "title": rng.choice(V.CONTACT_TITLES),
                    "phone": _phone(rng, region),
                    "email": f"{eid.lower()}.liaison@example.com",
                },
            }
        )
    return out


def _need_counts(rng: random.Random, enterprises: list[dict], n_needs: int) -> list[int]:
    """About n_needs / n_enterprises each (~10), more for larger firms, at least one where possible."""
    m = len(enterprises)
    counts = [0] * m
    if m == 0 or n_needs <= 0:
        return counts
    if n_needs < m:
        for k in rng.sample(range(m), n_needs):
            counts[k] = 1
        return counts
    counts = [1] * m
    weights = [V.SIZE_NEED_WEIGHT[e["size"]] * rng.lognormvariate(0.0, 0.35) for e in enterprises]
    for k in rng.choices(range(m), weights=weights, k=n_needs - m):
        counts[k] += 1
    return counts


def _round_budget(x: float) -> int:
    step = 5 if x < 50 else (10 if x < 500 else 50)
    return max(step, int(round(x / step)) * step)


def _need_text(
    rng: random.Random, c: Concept, asp: list[int], ent: dict, budget: int, trl_req: int
) -> tuple[str, str]:
    sub = c.subtopic
    aspects = [sub.aspects[a] for a in asp]
    product = rng.choice(c.ent)
    if len(aspects) == 1:
        a = aspects[0]
        pains = [p.fill(rng) for p in rng.sample(a.pains, min(2, len(a.pains)))]
        goals = [g.fill(rng) for g in rng.sample(a.goals, min(2, len(a.goals)))]
    else:
        pains = [rng.choice(a.pains).fill(rng) for a in aspects]
        goals = [rng.choice(a.goals).fill(rng) for a in aspects]
    pain = pains[0]
    k = rng.randrange(8)
    title = (
        f"{product}{pain}问题亟待解决",
        f"如何解决{product}{pain}的问题",
        f"寻求{product}{pain}的技术解决方案",
        f"{product}技术升级：{pain}",
        f"关于{product}{aspects[0].key}提升的技术需求",
        f"{pain}，急需{product}相关技术",
        f"{product}{rng.choice(('降本增效', '提质增效', '国产化替代'))}技术需求",
        f"{product}{pain}难题攻关",
    )[k]
    f = sub.field
    staff = ent["staff"]
    revenue = max(0.1, round(staff * rng.uniform(0.001, 0.004), 1))
    fact = rng.choice(V.COMPANY_FACTS).fill(rng).format(staff=staff, revenue=revenue)
    business = ent["industry"]
    if ent["field"] != f.name:  # a need outside the firm's main field (25%): say why it asks
        business += f"，近年来向{f.name}领域拓展业务"
    hint = ""
    u = rng.random()
    if u < 0.35:
        hint = f"，可考虑{rng.choice(c.acad)}等技术路线"
    elif u < 0.5:
        hint = "，技术路线不限"
    goals.append(rng.choice(V.GENERIC_GOALS).fill(rng))
    goal_text = "；".join(f"{k}、{g}" for k, g in enumerate(goals, 1))
    cons = [x.fill(rng) for x in rng.sample(V.CONSTRAINTS, rng.randint(1, 2))]
    if trl_req > 1:
        cons.insert(0, V.TRL_CONSTRAINTS[trl_req])
    basis = rng.choice(V.BASES).fill(rng)
    description = (
        f"需求内容：我公司是一家专注于{business}的{rng.choice(V.COMPANY_KINDS)}，{fact}。"
        f"公司{product}产品主要应用于{rng.choice(sub.apps)}，目前存在{'、'.join(pains)}等问题，"
        f"{rng.choice(V.CONSEQUENCES)}。现寻求{product}方面的{rng.choice(V.SEEK_PHRASES)}{hint}。"
        f"预期目标：{goal_text}。约束条件：{'；'.join(cons)}。工作基础：{basis}。"
        f"拟投入资金：{budget}万元。合作方式：{rng.choice(V.COOPERATION)}。"
    )
    return title, description


@dataclass
class _NeedLatent:
    concept: int
    mask: int
    trl_req: int
    budget: int


def _make_needs(
    seed: int, n: int, enterprises: list[dict], st: _Structure, has_results: list[bool]
) -> tuple[list[dict], list[_NeedLatent]]:
    rng = _rng(seed, "needs")
    vocab = st.vocab
    counts = _need_counts(rng, enterprises, n)
    slots = [k for k, cnt in enumerate(counts) for _ in range(cnt)]
    rng.shuffle(slots)
    any_results = any(has_results)

    def pool(concepts: Sequence[Concept]) -> tuple[list[Concept], list[float]]:
        cs = [c for c in concepts if has_results[c.idx] or not any_results]
        return cs, _cum([st.demand[c.idx] for c in cs])

    by_field = {f.name: pool([c for s in f.subtopics for c in s.concepts]) for f in vocab.fields}
    fallback = pool(vocab.concepts)
    w = _width(n, 5)
    needs: list[dict] = []
    latent: list[_NeedLatent] = []
    for j, k in enumerate(slots, 1):
        ent = enterprises[k]
        fname = ent["field"]
        related = vocab.field_by_name(fname).related
        if related and rng.random() < 0.25:
            fname = rng.choice(related)
        cs, cum = by_field[fname]
        if not cs:
            cs, cum = fallback
        c = _pick(rng, cs, cum)
        n_asp = 1 if rng.random() < 0.5 else 2
        asp = rng.sample(range(len(c.subtopic.aspects)), n_asp)
        mask = sum(1 << a for a in asp)
        trl_req = _weighted(rng, ((1, 0.35), (3, 0.15), (4, 0.2), (5, 0.2), (6, 0.1)))
        lo, hi = V.SIZE_BUDGET[ent["size"]]
        budget = _round_budget(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        title, description = _need_text(rng, c, asp, ent, budget, trl_req)
        needs.append(
            {
                "id": f"N{j:0{w}d}",
                "title": title,
                "description": description,
                "enterprise": ent["id"],
                "enterprise_name": ent["name"],
                "industry": ent["industry"],
                "region": ent["region"],
                "budget": budget,
                "field": c.subtopic.field.name,
                "trl_required": trl_req,
            }
        )
        latent.append(_NeedLatent(c.idx, mask, trl_req, budget))
    return needs, latent


# --------------------------------------------------------------------------------------------------
# Funds
# --------------------------------------------------------------------------------------------------


def _make_funds(seed: int, n: int, vocab: Vocabulary) -> list[dict]:
    rng = _rng(seed, "funds")
    names = [f.name for f in vocab.fields]
    weights = [V.FIELD_WEIGHTS.get(x, 1.0) for x in names]
    r_cum = _cum([r.weight**0.8 for r in V.REGIONS])
    w = _width(n, 3)
    used: set[str] = set()
    out = []
    for i in range(1, n + 1):
        region = _pick(rng, V.REGIONS, r_cum)
        k = _weighted(rng, ((1, 0.2), (2, 0.35), (3, 0.3), (4, 0.15)))
        sectors: list[str] = []
        while len(sectors) < k:
            s = rng.choices(names, weights=weights)[0]
            if s not in sectors:
                sectors.append(s)
        stages = list(_weighted(rng, V.STAGE_OPTIONS))
        if "B" in stages or stages == ["A"]:
            tmin = rng.choice((300, 500, 800, 1000))
            tmax = rng.choice((2000, 2500, 3000))
        elif "A" in stages:
            tmin = rng.choice((100, 200, 300, 500))
            tmax = rng.choice((1000, 1500, 2000, 3000))
        else:
            tmin = rng.choice((50, 50, 100, 200, 300))
            tmax = rng.choice((300, 500, 800, 1000, 1500))
        tmax = max(tmax, tmin * 2)
        for attempt in itertools.count():
            prefix = region.short if rng.random() < 0.6 else ""
            stem = "".join(rng.sample(V.NAME_STEMS, 2 if attempt < 20 else 3))
            name = f"{prefix}{stem}{_weighted(rng, V.FUND_KINDS)}"
            if name not in used:
                used.add(name)
                break
        stage_text = "、".join(V.STAGE_LABELS[s] for s in stages)
        prefs = "；".join(rng.sample(V.FUND_PREFS, 2))
        thesis = (
            f"{rng.choice(V.FUND_MOTTOS)}。重点关注{'、'.join(sectors)}等领域的高校科技成果转化项目，"
            f"以{stage_text}为主，单笔投资{tmin}-{tmax}万元。{prefs}。"
        )
        out.append(
            {
                "id": f"F{i:0{w}d}",
                "name": name,
                "type": _weighted(rng, V.FUND_TYPES),
                "sectors": sectors,
                "stages": stages,
                "ticket_min": tmin,
                "ticket_max": tmax,
                "aum": round(math.exp(rng.uniform(math.log(0.5), math.log(50))), 1),
                "thesis": thesis,
                "region": region.label,
            }
        )
    return out


# --------------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------------


def _qrels(
    seed: int,
    needs: list[dict],
    need_lat: list[_NeedLatent],
    results: list[dict],
    res_lat: list[_Latent],
    vocab: Vocabulary,
) -> dict[str, dict[str, int]]:
    """Graded judgments from the latent structure.

    3: same concept, an aspect the need asks for, and mature enough (trl >= required);
    2: same concept otherwise; 1: a sample of same-subtopic results (other concepts);
    0: a sample of judged-but-irrelevant candidates from the same field.  Unjudged = irrelevant.
    """
    rng = _rng(seed, "qrels")
    by_concept: dict[int, list[int]] = {}
    by_sub: dict[int, list[int]] = {}
    by_field: dict[int, list[int]] = {}
    concepts = vocab.concepts
    for i, lat in enumerate(res_lat):
        c = concepts[lat.concept]
        by_concept.setdefault(c.idx, []).append(i)
        by_sub.setdefault(c.subtopic.idx, []).append(i)
        by_field.setdefault(c.subtopic.field.idx, []).append(i)

    def sample_other(pool: list[int], k: int, exclude: set[int], reject) -> list[int]:
        got: list[int] = []
        if not pool:
            return got
        for _ in range(k * 6):
            i = pool[rng.randrange(len(pool))]
            if i in exclude or reject(i):
                continue
            exclude.add(i)
            got.append(i)
            if len(got) == k:
                break
        return got

    everything = list(range(len(results)))
    out: dict[str, dict[str, int]] = {}
    for need, nl in zip(needs, need_lat, strict=True):
        c = concepts[nl.concept]
        judged: dict[str, int] = {}
        seen: set[int] = set()
        for i in by_concept.get(c.idx, []):
            rl = res_lat[i]
            judged[results[i]["id"]] = 3 if (rl.mask & nl.mask and rl.trl >= nl.trl_req) else 2
            seen.add(i)
        same_sub = sample_other(by_sub.get(c.subtopic.idx, []), 12, seen, lambda i: False)
        for i in same_sub:
            judged[results[i]["id"]] = 1
        in_sub = partial(_in_subtopic, concepts, res_lat, c.subtopic.idx)
        neg = sample_other(by_field.get(c.subtopic.field.idx, []), 5, seen, in_sub)
        neg += sample_other(everything, 2, seen, in_sub)
        for i in neg:
            judged[results[i]["id"]] = 0
        out[need["id"]] = dict(sorted(judged.items()))
    return out


def _in_subtopic(concepts: Sequence[Concept], res_lat: list[_Latent], sub_idx: int, i: int) -> bool:
    return concepts[res_lat[i].concept].subtopic.idx == sub_idx


_IP_SCORE = {"granted": 1.0, "pending": 0.5, "none": 0.0}


def _transferable(
    seed: int, results: list[dict], res_lat: list[_Latent], need_lat: list[_NeedLatent]
) -> set[str]:
    """Top ~4.7% by a latent score: market pull, maturity, IP protection, and noise."""
    if not results:
        return set()
    rng = _rng(seed, "transferable")
    demand: dict[int, list[tuple[int, float]]] = {}
    for nl in need_lat:
        demand.setdefault(nl.concept, []).append((nl.mask, math.log1p(nl.budget)))
    pulls = []
    for rl in res_lat:
        pull = 0.0
        for mask, wt in demand.get(rl.concept, ()):
            pull += wt if mask & rl.mask else 0.4 * wt
        pulls.append(math.log1p(pull))
    top_pull = max(pulls) or 1.0
    scored = []
    for r, rl, pull in zip(results, res_lat, pulls, strict=True):
        score = 1.0 * pull / top_pull + 0.8 * (rl.trl - 1) / 8 + 0.5 * _IP_SCORE[rl.ip] + rng.gauss(0.0, 0.15)
        scored.append((-score, r["id"]))
    scored.sort()
    k = max(1, round(TRANSFERABLE_RATE * len(results)))
    return {rid for _, rid in scored[:k]}


# --------------------------------------------------------------------------------------------------
# The world
# --------------------------------------------------------------------------------------------------


@dataclass
class World:
    """A complete demo world; records are plain dicts in the JSONL contract formats."""

    results: list[dict]
    needs: list[dict]
    enterprises: list[dict]
    funds: list[dict]
    qrels: dict[str, dict[str, int]]
    transferable: set[str]
    seed: int = 7
    params: dict[str, int] = field(default_factory=dict)


def generate_world(
    seed: int = 7,
    n_results: int = 30000,
    n_needs: int = 2500,
    n_enterprises: int = 241,
    n_funds: int = 204,
) -> World:
    """Generate the demo world at the harbour's scale (or smaller, same proportions) for a seed."""
    for name, val in (("n_results", n_results), ("n_needs", n_needs), ("n_enterprises", n_enterprises)):
        if val < 0:
            raise ValueError(f"{name} must be >= 0")
    if n_needs > 0 and n_enterprises == 0:
        raise ValueError("needs require at least one enterprise")
    st = _structure(seed)
    vocab = st.vocab
    results: list[dict] = []
    res_lat: list[_Latent] = []
    for rec, lat in _iter_results_latent(seed, n_results):
        results.append(rec)
        res_lat.append(lat)
    has_results = [False] * len(vocab.concepts)
    for lat in res_lat:
        has_results[lat.concept] = True
    enterprises = _make_enterprises(seed, n_enterprises, vocab)
    needs, need_lat = _make_needs(seed, n_needs, enterprises, st, has_results)
    funds = _make_funds(seed, max(0, n_funds), vocab)
    qrels = _qrels(seed, needs, need_lat, results, res_lat, vocab)
    transferable = _transferable(seed, results, res_lat, need_lat)
    params = {
        "n_results": n_results,
        "n_needs": n_needs,
        "n_enterprises": n_enterprises,
        "n_funds": n_funds,
    }
    return World(results, needs, enterprises, funds, qrels, transferable, seed, params)
