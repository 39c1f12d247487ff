"""Chinese domain building blocks of the synthetic demo world.

The technology taxonomy (field -> subtopic -> concept, with per-subtopic aspects) lives in
``domains.txt`` so that long Chinese phrases need not fit a Python line; this module parses it once
into frozen dataclasses and adds the generic phrase banks (regions, names, enterprise and fund
wording) that do not belong to a single field.

Two vocabularies per concept are the point of the exercise: ``acad`` forms are how a university
names a technology (高比能量三元正极材料), ``ent`` forms how an enterprise names the product or
problem (动力电池正极材料).  Aspects carry the same split: enterprise ``pains``/``goals`` vs.
academic ``effects``/``problems``.  Matching therefore needs more than surface overlap.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from functools import lru_cache
from importlib import resources

__all__ = [
    "Aspect",
    "Concept",
    "Field",
    "Phrase",
    "Region",
    "Subtopic",
    "Vocabulary",
    "load_vocabulary",
]

_NUM = re.compile(r"\{(-?\d+)-(-?\d+)\}")
_KINDS = frozenset("MDSP")


class Phrase:
    """A phrase with ``{a-b}`` integer slots, pre-parsed so that filling it is cheap."""

    __slots__ = ("text", "_parts")

    def __init__(self, text: str) -> None:
        self.text = text
        parts: list[str | tuple[int, int]] = []
        pos = 0
        for m in _NUM.finditer(text):
            parts.append(text[pos : m.start()])
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise ValueError(f"bad range {m.group(0)} in {text!r}")
            parts.append((lo, hi))
            pos = m.end()
        parts.append(text[pos:])
        self._parts: tuple[str | tuple[int, int], ...] | None = tuple(parts) if len(parts) > 1 else None

    def fill(self, rng: random.Random) -> str:
        """Return the phrase with every numeric slot drawn from ``rng``."""
        if self._parts is None:
            return self.text
        out = []
        for p in self._parts:
            if isinstance(p, str):
                out.append(p)
            else:
                out.append(str(rng.randint(p[0], p[1])))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Phrase({self.text!r})"


@dataclass(frozen=True)
class Aspect:
    """One performance dimension of a subtopic (能量密度, 循环寿命 ...), worded for both sides."""

    key: str
    pains: tuple[Phrase, ...]
    goals: tuple[Phrase, ...]
    effects: tuple[Phrase, ...]
    problems: tuple[Phrase, ...]


@dataclass(frozen=True, eq=False)
class Concept:
    """A specific technology: the unit of relevance in the ground truth."""

    idx: int
    name: str
    acad: tuple[str, ...]
    ent: tuple[str, ...]
    kind: str
    subtopic: Subtopic = dc_field(repr=False)


@dataclass(frozen=True, eq=False)
class Subtopic:
    """A group of concepts sharing methods, terms, application scenarios and aspects."""

    idx: int
    name: str
    kind: str
    methods: tuple[str, ...]
    terms: tuple[str, ...]
    apps: tuple[str, ...]
    aspects: tuple[Aspect, ...]
    concepts: list[Concept] = dc_field(repr=False)
    field: Field = dc_field(repr=False)


@dataclass(frozen=True, eq=False)
class Field:
    """A technology field: a result's ``field``, a fund sector, an enterprise's main line."""

    idx: int
    name: str
    colleges: tuple[str, ...]
    industries: tuple[str, ...]
    trade: tuple[str, ...]
    related: tuple[str, ...]
    subtopics: list[Subtopic] = dc_field(repr=False)


@dataclass(frozen=True)
class Vocabulary:
    """The parsed taxonomy, in file order (order matters for determinism)."""

    fields: tuple[Field, ...]
    subtopics: tuple[Subtopic, ...]
    concepts: tuple[Concept, ...]

    def field_by_name(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def _items(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(";") if s.strip())


def _phrases(text: str) -> tuple[Phrase, ...]:
    return tuple(Phrase(s) for s in _items(text))


def parse_domains(text: str) -> Vocabulary:
    """Parse the ``domains.txt`` mini-language (see the header of that file)."""
    fields: list[Field] = []
    subtopics: list[Subtopic] = []
    concepts: list[Concept] = []
    cur_f: dict | None = None
    cur_s: dict | None = None

    def close_subtopic() -> None:
        nonlocal cur_s
        if cur_s is None:
            return
        assert cur_f is not None
        st = Subtopic(
            idx=len(subtopics),
            name=cur_s["name"],
            kind=cur_s["kind"],
            methods=cur_s["methods"],
            terms=cur_s["terms"],
            apps=cur_s["apps"],
            aspects=tuple(cur_s["aspects"]),
            concepts=[],
            field=cur_f["obj"],
        )
        if len(st.aspects) < 2 or len(cur_s["concepts"]) < 2 or not (st.methods and st.terms and st.apps):
            raise ValueError(f"subtopic {st.name} is incomplete")
        for name, acad, ent, kind in cur_s["concepts"]:
            c = Concept(idx=len(concepts), name=name, acad=acad, ent=ent, kind=kind, subtopic=st)
            concepts.append(c)
            st.concepts.append(c)
        subtopics.append(st)
        cur_f["obj"].subtopics.append(st)
        cur_s = None

    def close_field() -> None:
        nonlocal cur_f
        close_subtopic()
        cur_f = None

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("@field "):
                close_field()
                cur_f = {"name": line[7:].strip(), "attrs": {}}
                continue
            if line.startswith("@subtopic "):
                assert cur_f is not None, "subtopic outside a field"
                if "obj" not in cur_f:
                    a = cur_f["attrs"]
                    cur_f["obj"] = Field(
                        idx=len(fields),
                        name=cur_f["name"],
                        colleges=a["colleges"],
                        industries=a["industries"],
                        trade=a["trade"],
                        related=a.get("related", ()),
                        subtopics=[],
                    )
                    fields.append(cur_f["obj"])
                close_subtopic()
                name, kind = line[10:].split()
                assert kind in _KINDS, f"bad kind {kind}"
                cur_s = {"name": name, "kind": kind, "aspects": [], "concepts": []}
                continue
            key, _, value = line.partition(":")
            key = key.strip()
            if cur_s is None:
                assert cur_f is not None, f"{key} outside a field"
                cur_f["attrs"][key] = _items(value)
            elif key in ("methods", "terms", "apps"):
                cur_s[key] = _items(value)
            elif key == "aspect":
                parts = [p.strip() for p in value.split("|")]
                assert len(parts) == 5, "aspect needs 5 sections"
                cur_s["aspects"].append(
                    Aspect(parts[0], *(_phrases(p) for p in parts[1:]))  # type: ignore[arg-type]
                )
            elif key == "concept":
                parts = [p.strip() for p in value.split("|")]
                assert len(parts) in (3, 4), "concept needs 3 or 4 sections"
                kind = parts[3] if len(parts) == 4 else cur_s["kind"]
                assert kind in _KINDS, f"bad kind {kind}"
                acad = (parts[0],) + tuple(a for a in _items(parts[1]) if a != parts[0])
                cur_s["concepts"].append((parts[0], acad, _items(parts[2]), kind))
            else:
                raise AssertionError(f"unknown key {key!r}")
        except (AssertionError, ValueError, KeyError) as exc:
            raise ValueError(f"domains.txt:{lineno}: {exc}") from exc
    close_field()
    names = [c.name for c in concepts]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate concept names: {dup}")
    known = {f.name for f in fields}
    for f in fields:
        unknown = [r for r in f.related if r not in known]
        if unknown:
            raise ValueError(f"field {f.name}: unknown related fields {unknown}")
    return Vocabulary(tuple(fields), tuple(subtopics), tuple(concepts))


@lru_cache(maxsize=1)
def load_vocabulary() -> Vocabulary:
    """Load and cache the packaged taxonomy (parsing takes a few milliseconds, once)."""
    text = resources.files(__package__).joinpath("domains.txt").read_text(encoding="utf-8")
    return parse_domains(text)


# --------------------------------------------------------------------------------------------------
# Generic banks (not tied to one field)
# --------------------------------------------------------------------------------------------------


def _compile(*texts: str) -> tuple[Phrase, ...]:
    return tuple(Phrase(t) for t in texts)


@dataclass(frozen=True)
class Region:
    """A city where enterprises and funds sit; ``digits`` is the local landline length."""

    province: str
    city: str
    code: str
    digits: int
    weight: float

    @property
    def label(self) -> str:
        return self.city if self.province == self.city else f"{self.province}{self.city}"

    @property
    def short(self) -> str:
        return self.city.removesuffix("市")


# 陕西/西安 heavy (the harbour's partners are mostly local), the rest nationwide.
REGIONS: tuple[Region, ...] = (
    Region("陕西省", "西安市", "029", 8, 46.0),
    Region("陕西省", "咸阳市", "029", 8, 4.0),
    Region("陕西省", "宝鸡市", "0917", 7, 3.0),
    Region("陕西省", "渭南市", "0913", 7, 2.0),
    Region("陕西省", "榆林市", "0912", 7, 2.5),
    Region("陕西省", "汉中市", "0916", 7, 1.5),
    Region("陕西省", "铜川市", "0919", 7, 0.8),
    Region("陕西省", "延安市", "0911", 7, 1.0),
    Region("陕西省", "安康市", "0915", 7, 0.7),
    Region("陕西省", "商洛市", "0914", 7, 0.5),
    Region("北京市", "北京市", "010", 8, 4.0),
    Region("上海市", "上海市", "021", 8, 3.5),
    Region("广东省", "深圳市", "0755", 8, 3.5),
    Region("广东省", "广州市", "020", 8, 1.5),
    Region("广东省", "东莞市", "0769", 8, 1.0),
    Region("江苏省", "苏州市", "0512", 8, 2.5),
    Region("江苏省", "南京市", "025", 8, 1.5),
    Region("江苏省", "无锡市", "0510", 8, 1.2),
    Region("江苏省", "常州市", "0519", 8, 1.5),
    Region("浙江省", "杭州市", "0571", 8, 2.0),
    Region("浙江省", "宁波市", "0574", 8, 1.2),
    Region("安徽省", "合肥市", "0551", 8, 1.5),
    Region("四川省", "成都市", "028", 8, 1.8),
    Region("湖北省", "武汉市", "027", 8, 1.5),
    Region("重庆市", "重庆市", "023", 8, 1.2),
    Region("天津市", "天津市", "022", 8, 1.0),
    Region("山东省", "青岛市", "0532", 8, 1.0),
    Region("山东省", "济南市", "0531", 8, 0.8),
    Region("湖南省", "长沙市", "0731", 8, 1.0),
    Region("河南省", "郑州市", "0371", 8, 1.0),
    Region("甘肃省", "兰州市", "0931", 7, 0.8),
    Region("宁夏回族自治区", "银川市", "0951", 7, 0.6),
    Region("山西省", "太原市", "0351", 7, 0.8),
    Region("辽宁省", "沈阳市", "024", 8, 0.7),
)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬鹏辉斌宇浩凯健俊帆帅旭宁龙林欣晨睿"
    "博文轩昊然子涵思远嘉怡梓航志诚建国永康立新卫东晓光海波振宏瑞峰晋阳铭哲楠宏伟少华德明春雨雪梅秋实天佑"
)

TEAM_TITLES = (("教授", 0.62), ("研究员", 0.12), ("副教授", 0.18), ("青年拔尖人才", 0.08))
CONTACT_TITLES = ("技术总监", "研发经理", "总工程师", "副总经理", "技术部部长", "项目经理", "董事长助理")

NAME_STEMS = "华中瑞泰鼎恒博瀚隆科创源鑫晟航德力合达远威宏金天安信智新盛通卓越明辉腾凯坤乾嘉诚拓宇星辰海润峰"
ENTERPRISE_SUFFIXES = (
    ("科技有限公司", 0.42),
    ("技术有限公司", 0.18),
    ("股份有限公司", 0.16),
    ("有限公司", 0.12),
    ("科技股份有限公司", 0.08),
    ("集团有限公司", 0.04),
)
SIZES = (("大型", 0.14), ("中型", 0.30), ("小型", 0.40), ("微型", 0.16))
SIZE_STAFF = {"大型": (1000, 12000), "中型": (300, 999), "小型": (20, 299), "微型": (5, 19)}
SIZE_BUDGET = {"大型": (100, 2000), "中型": (50, 800), "小型": (20, 300), "微型": (5, 80)}
SIZE_NEED_WEIGHT = {"大型": 1.8, "中型": 1.25, "小型": 0.85, "微型": 0.55}
ENTERPRISE_TAGS = (
    "高新技术企业",
    "专精特新中小企业",
    "科技型中小企业",
    "瞪羚企业",
    "省级企业技术中心",
    "上市公司",
)

# Field weights for enterprise main lines and fund sectors (hard tech around a Xi'an campus).
FIELD_WEIGHTS = {
    "新能源": 1.3,
    "储能": 1.2,
    "集成电路": 1.0,
    "人工智能": 1.0,
    "量子科学": 0.4,
    "生物制造": 0.7,
    "新材料": 1.1,
    "先进制造": 1.4,
    "能源动力": 1.0,
    "电力装备": 1.3,
    "环境工程": 0.9,
    "生物医药": 0.9,
    "工业互联网": 1.0,
    "航空航天": 0.9,
}

# ---- enterprise need wording -------------------------------------------------------------------
COMPANY_KINDS = (
    "高新技术企业",
    "国家级专精特新“小巨人”企业",
    "省级专精特新企业",
    "科技型中小企业",
    "行业骨干企业",
)
COMPANY_FACTS: tuple[Phrase, ...] = _compile(
    "现有员工约{staff}人，其中研发人员占比约{10-35}%",
    "年销售收入约{revenue}亿元，产品销往全国{10-31}个省市",
    "拥有省级企业技术中心和{1-3}条生产线",
    "已获授权专利{10-120}项，与多所高校建立了合作关系",
    "产品已进入{3-20}家行业头部客户的供应链",
)
CONSEQUENCES = (
    "影响了产品的市场竞争力",
    "客户投诉逐年增多",
    "制约了产能的进一步提升",
    "导致毛利率持续下滑",
    "难以满足下游客户的新要求",
    "已成为公司发展的主要技术瓶颈",
    "在招投标中处于不利地位",
)
SEEK_PHRASES = ("技术合作", "成熟的技术解决方案", "可产业化的技术成果", "高校科研团队的技术支持", "联合攻关")
GENERIC_GOALS: tuple[Phrase, ...] = _compile(
    "形成可稳定量产的工艺方案，良品率不低于{90-98}%",
    "完成{1-3}台套样机或中试验证",
    "申请发明专利{1-5}项",
    "在{6-24}个月内完成技术导入",
    "新增产值{500-5000}万元",
    "产品通过第三方检测认证",
    "形成企业标准{1-2}项",
    "综合成本降低{10-30}%",
)
CONSTRAINTS: tuple[Phrase, ...] = _compile(
    "需兼容公司现有生产线，改造投入可控",
    "项目周期不超过{12-24}个月",
    "新增设备投资不超过{50-500}万元",
    "不得引入高毒、高污染原料",
    "成果知识产权归属需双方协商明确",
    "需派驻技术人员到现场指导",
    "需满足行业相关国家标准",
)
TRL_CONSTRAINTS = {
    3: "要求技术已完成原理验证（技术成熟度不低于3级）",
    4: "要求技术已完成实验室小试验证（TRL不低于4级）",
    5: "要求技术已完成中试或相关环境验证（TRL不低于5级）",
    6: "要求已有样机或示范应用，可快速导入产线（TRL不低于6级）",
}
BASES: tuple[Phrase, ...] = _compile(
    "公司现有中试线{1-3}条，研发人员{10-200}人",
    "已与下游客户建立稳定合作关系，具备市场推广渠道",
    "公司具备完善的检测平台和试验条件",
    "前期已开展{1-3}年的自主研发，积累了一定数据",
    "公司厂房和配套设施齐全，可提供试验场地",
)
COOPERATION = ("技术转让", "技术许可", "合作开发", "委托开发", "共建联合实验室", "技术入股")

# ---- fund wording ------------------------------------------------------------------------------
FUND_KINDS = (
    ("天使投资基金", 0.20),
    ("种子基金", 0.16),
    ("创业投资基金", 0.20),
    ("科创投资合伙企业（有限合伙）", 0.14),
    ("硬科技创业投资基金", 0.12),
    ("成果转化基金", 0.10),
    ("产业投资基金", 0.08),
)
FUND_TYPES = (("市场化基金", 0.55), ("政府引导基金", 0.2), ("高校成果转化基金", 0.1), ("产业资本", 0.15))
FUND_MOTTOS = (
    "投早、投小、投长期、投硬科技",
    "投早、投小、投长期、投硬科技",
    "投早、投小、投硬科技",
    "投早投小、长期陪伴",
    "专注硬科技、做耐心资本",
)
FUND_PREFS = (
    "偏好教授领衔、具有核心知识产权的团队",
    "关注已完成样机或小试验证的项目",
    "重视技术壁垒和国产化替代空间",
    "可协助对接产业链上下游资源",
    "优先支持陕西本地落地转化的项目",
    "接受“先使用后付费”等灵活的成果转化方式",
    "看重团队的产业化意愿和执行力",
)
STAGE_OPTIONS = (
    (("seed", "angel"), 0.28),
    (("seed",), 0.10),
    (("angel",), 0.12),
    (("angel", "A"), 0.22),
    (("seed", "angel", "A"), 0.14),
    (("A",), 0.05),
    (("A", "B"), 0.09),
)
STAGE_LABELS = {"seed": "种子轮", "angel": "天使轮", "A": "A轮", "B": "B轮"}
