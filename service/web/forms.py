"""Reading the workbench's forms: every field checked with a message in Chinese next to it.

The checks here are about what a person typed (empty title, a budget that is not a number); the rules
of a need itself are the engine's (``parse_record``) and the API's limits, applied when it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field

from pydantic import ValidationError

from recommender.filters import ResultFilters
from service.core.config import MAX_ID_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS
from service.core.workbench import NeedFields

MAX_BUDGET = 10_000_000  # 万元


@dataclass
class NeedForm:
    """The need form as typed (to show it again) and its problems by field."""

    title: str = ""
    description: str = ""
    field: str = ""
    budget: str = ""
    region: str = ""
    enterprise: str = ""
    errors: dict[str, str] = dataclass_field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict) -> NeedForm:
        budget = data.get("budget")
        return cls(title=str(data.get("title") or ""), description=str(data.get("description") or ""),
                   field=str(data.get("field") or ""), budget="" if budget in (None, "") else f"{budget:g}"
                   if isinstance(budget, (int, float)) else str(budget),
                   region=str(data.get("region") or ""), enterprise=str(data.get("enterprise") or ""))

    def check(self, need_enterprise: bool) -> NeedFields | None:
        """The fields to store, or None with ``errors`` filled in."""
        self.title, self.description = self.title.strip(), self.description.strip()
        self.field, self.region, self.enterprise = self.field.strip(), self.region.strip(), self.enterprise.strip()
        if not self.title:
            self.errors["title"] = "请填写需求标题：一句话说明要解决的技术问题"
        elif len(self.title) > MAX_TITLE_CHARS:
            self.errors["title"] = f"标题最多 {MAX_TITLE_CHARS} 个字"
        if len(self.title) + len(self.description) > MAX_TEXT_CHARS:
            self.errors["description"] = f"标题和描述合计最多 {MAX_TEXT_CHARS} 个字"
        for name in ("field", "region"):
            if len(getattr(self, name)) > 200:
                self.errors[name] = "最多 200 个字"
        budget = None
        if self.budget.strip():
            try:
                budget = float(self.budget.strip().replace(",", "").replace("，", ""))
            except ValueError:
                self.errors["budget"] = "预算请填写数字（单位：万元），例如 50"
            else:
                if not 0 <= budget <= MAX_BUDGET or budget != budget:
                    self.errors["budget"] = f"预算应在 0 到 {MAX_BUDGET:,} 万元之间"
        if need_enterprise and not self.enterprise:
            self.errors["enterprise"] = "请填写需求所属企业的编号，例如 E001"
        elif len(self.enterprise) > MAX_ID_CHARS:
            self.errors["enterprise"] = f"企业编号最多 {MAX_ID_CHARS} 个字符"
        if self.errors:
            return None
        return NeedFields(self.title, self.description, self.field or None, budget, self.region or None,
                          self.enterprise or None)


def result_filters(params: dict) -> tuple[ResultFilters, str | None]:
    """ResultFilters from a filter form (empty fields mean no condition), and a message if a value is wrong."""
    names = ("field", "institution", "ip_status", "trl_min", "trl_max")
    given = {name: str(params.get(name) or "").strip() for name in names}
    values = {name: value for name, value in given.items() if value}
    try:
        return ResultFilters(**values), None
    except ValidationError:
        bad = {k: v for k, v in values.items() if k in ("trl_min", "trl_max")}
        try:
            return ResultFilters(**{k: v for k, v in values.items() if k not in bad}), \
                "TRL 应为 1 到 9 的整数，且最低值不大于最高值；已忽略 TRL 条件"
        except ValidationError:
            return ResultFilters(), "筛选条件有误，已忽略"


def page_number(value: object) -> int:
    """A page number from a query string: 1 for anything that is not a positive integer."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return 1
    return max(1, min(number, 100_000))


@dataclass
class Pager:
    """Which slice of a list a page shows."""

    page: int
    size: int
    total: int = 0

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last(self) -> int:
        return min(self.total, self.offset + self.size)
