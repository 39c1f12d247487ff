"""The workbench speaks Chinese: labels for stored codes, and the engine's English messages put into Chinese.

The engine and the API keep their English messages (scripts and logs read them); the pages show them
through these tables. A message no pattern knows is shown as it is, never dropped.
"""

from __future__ import annotations

import re

OUTCOMES = {"accepted": "已采纳推送", "rejected": "不匹配", "contacted": "已联系", "signed": "已签约"}
OUTCOME_HINTS = {
    "accepted": "值得推荐给企业（训练时记为较强相关）",
    "rejected": "看过，不相关（训练时记为不相关）",
    "contacted": "已与企业取得联系",
    "signed": "已签订合作合同（最强的相关证据）",
}
IP_STATUS = {"granted": "已授权", "pending": "申请中", "none": "无专利"}
SIGNALS = {"dense": "语义", "bm25": "关键词", "char": "字词", "tfidf": "词频", "word": "词频", "static": "词向量"}
ROLES = {"broker": "技术经理人", "enterprise": "企业用户"}
JOB_STATES = {"queued": "排队中", "running": "计算中", "done": "已完成", "failed": "失败", "interrupted": "已中断"}
KINDS = {"result": "科技成果", "need": "企业需求"}
STAGES = {"seed": "种子轮", "angel": "天使轮", "A": "A 轮", "B": "B 轮"}

ACTIONS = {
    "signin.ok": "登录成功", "signin.failed": "登录失败", "signin.throttled": "登录被限流",
    "key.created": "创建密钥", "key.revoked": "吊销密钥", "user.created": "创建用户", "user.disabled": "停用用户",
    "user.enabled": "启用用户", "user.password_changed": "修改密码", "user.admin": "设为管理员",
    "user.not_admin": "取消管理员", "enterprise.created": "创建企业", "enterprise.disabled": "停用企业",
    "record.created": "新增记录", "record.updated": "修改记录", "record.deleted": "删除记录", "upload": "批量导入",
    "export": "导出", "shortlist.run": "计算短名单", "feedback": "跟进记录", "interest": "感兴趣标记",
    "judgement": "相关性判断", "review.decision": "评审决定",
}

STATUS_TITLES = {
    400: "请求有误", 401: "请先登录", 403: "没有权限", 404: "找不到该页面", 405: "不支持的操作",
    409: "操作冲突", 413: "文件太大", 415: "不支持的文件类型", 422: "内容有误", 500: "系统出错了",
    503: "服务暂不可用",
}


def ip_status(value: object) -> str:
    return IP_STATUS.get(str(value), str(value)) if value not in (None, "") else "—"


_MESSAGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^unknown need id '(.+)'$"), r"没有编号为「\1」的需求（或它不属于您的企业）"),
    (re.compile(r"^unknown result id '(.+)'$"), r"没有编号为「\1」的科技成果"),
    (re.compile(r"^unknown (?:job id|shortlist job) '(.+)'$"), r"没有编号为「\1」的计算任务"),
    (re.compile(r"^is missing or empty$"), "缺失或为空"),
    (re.compile(r"^must be an integer from 1 to 9, got (.+)$"), r"必须是 1 到 9 的整数，实际为 \1"),
    (re.compile(r"^must be a string, got (.+)$"), r"必须是文本，实际为 \1"),
    (re.compile(r"^must be a list of strings.*$"), "必须是文本列表（用 ; 或 、 分隔）"),
    (re.compile(r"^is not a valid list$"), "不是有效的列表"),
    (re.compile(r"^duplicate id '(.+)' \(first at row (\d+)\)$"), r"编号「\1」重复（首次出现在第 \2 行）"),
    (re.compile(r"^duplicate id '(.+)' \(first at line (\d+)\)$"), r"编号「\1」重复（首次出现在第 \2 行）"),
    (re.compile(r"^is not UTF-8 text.*$"), "不是 UTF-8 编码的文本（请另存为 UTF-8 的 CSV 或 .xlsx）"),
    (re.compile(r"^is not valid JSON.*$"), "不是有效的 JSON"),
    (re.compile(r"^is empty: no (need|result) records found$"), "文件是空的，没有找到任何记录"),
    (re.compile(r"^is not a readable Excel workbook.*$"), "无法读取的 Excel 文件（文件损坏或不是 .xlsx）"),
    (re.compile(r"^expected a JSON object.*$"), "应为 JSON 对象"),
    (re.compile(r"^no valid records$"), "没有有效记录"),
    (re.compile(r"^unsupported file type '(.*)'.*$"), r"不支持的文件类型「\1」：请上传 .xlsx、.csv 或 .jsonl"),
    (re.compile(r"^(\d+) (need|result) id\(s\) already exist: (.+?); nothing was written.*$"),
     r"有 \1 个编号已存在：\3。未写入任何内容（如需覆盖，请勾选“覆盖已有编号”）"),
    (re.compile(r"^no results are stored yet.*$"), "还没有任何科技成果：请先导入成果再计算短名单"),
    (re.compile(r"^(\d+) records in one file; the limit is (\d+)$"), r"一个文件有 \1 条记录，上限为 \2 条：请拆分文件"),
    (re.compile(r"^no user '(.*)' \(see .*\)$"), r"没有用户「\1」"),
    (re.compile(r"^user '(.*)' exists already$"), r"用户名「\1」已被使用"),
    (re.compile(r"^invalid username '(.*)'.*$"), r"用户名「\1」无效：2-64 个字母、数字或 . _ @ -，以字母或数字开头"),
    (re.compile(r"^an enterprise (?:user|key) needs --enterprise.*$"), "企业用户或企业密钥必须选择所属企业"),
    (re.compile(r"^a broker (?:sees|key sees) every enterprise.*$"), "技术经理人可查看全部企业，不应选择企业"),
    (re.compile(r"^only a broker can be an admin$"), "只有技术经理人可以设为管理员"),
    (re.compile(r"^unknown role '(.*)'.*$"), r"未知角色「\1」：请选择技术经理人或企业用户"),
    (re.compile(r"^unknown key id '(.*)'.*$"), r"没有编号为「\1」的密钥"),
    (re.compile(r"^--expires-days must be positive$"), "有效期必须为正数天"),
    (re.compile(r"^an enterprise needs a name$"), "请填写企业名称"),
    (re.compile(r"^invalid enterprise id '(.*)'.*$"), r"企业编号「\1」无效：字母、数字或 . _ -，最多 64 个字符"),
    (re.compile(r"^enterprise '(.*)' exists already$"), r"企业编号「\1」已存在"),
]


def message(text: str) -> str:
    """An engine or API message in Chinese where its pattern is known, else as it is."""
    for pattern, replacement in _MESSAGES:
        if pattern.match(text):
            return pattern.sub(replacement, text)
    return text


def location(text: str) -> str:
    """'row 5' / 'line 3' / 'file' as a Chinese place in the uploaded file."""
    found = re.match(r"^(row|line) (\d+)$", text)
    if found:
        return f"第 {found.group(2)} 行"
    return "整个文件" if text == "file" else text


_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^need (\S+)「(.*)」ranks it #(\d+) \(strength ([\d.]+)\)"),
     r"需求 \1「\2」将其排在第 \3 位（强度 \4）"),
    (re.compile(r"^need (\S+)「(.*)」: rank #(\d+) of the needs for this result"),
     r"需求 \1「\2」：在该成果的匹配需求中排第 \3 位"),
    (re.compile(r"^market pull ([\d.]+): (\d+) need\(s\) want it strongly, (\d+) in all; strongest (\S+) "
                r"\(rank #(\d+), strength ([\d.]+)\)"),
     r"市场需求度 \1：\2 个需求强烈需要，共 \3 个需求相关；最强为 \4（第 \5 位，强度 \6）"),
    (re.compile(r"^no need ranks it among its candidates"), "暂无需求将其列为候选"),
    (re.compile(r"^readiness ([\d.]+) \(no trl/ip_status recorded\)"), r"成熟度 \1（未记录 TRL 与知识产权状态）"),
    (re.compile(r"^readiness ([\d.]+): "), r"成熟度 \1："),
    (re.compile(r"; shared terms: "), "；共同关键词："),
    (re.compile(r"^sector (\S+) \(field\); "), r"投资领域 \1（与成果领域一致）；"),
    (re.compile(r"^sector (\S+) \(text mentions\); "), r"投资领域 \1（成果文本提及）；"),
    (re.compile(r"stage (\S+) fits TRL (\d+)"), r"投资阶段 \1 与 TRL \2 相符"),
    (re.compile(r"stage (\S+) is one level from TRL (\d+)"), r"投资阶段 \1 与 TRL \2 相差一级"),
    (re.compile(r"stage (\S+) \(TRL unknown\)"), r"投资阶段 \1（TRL 未知）"),
    (re.compile(r"; ticket ([\d.?]+)-([\d.?]+)万元"), r"；单笔 \1-\2 万元"),
    (re.compile(r"IP granted"), "已授权专利"),
    (re.compile(r"IP pending"), "专利申请中"),
    (re.compile(r"IP none"), "无专利"),
]


def reason(text: str) -> str:
    """A push or shortlist reason (written in English by the triage) in Chinese; unknown parts stay as they are."""
    out = text
    for pattern, replacement in _REASONS:
        out = pattern.sub(replacement, out)
    for code, name in STAGES.items():
        out = re.sub(rf"投资阶段 {re.escape(code)}\b", f"投资阶段 {name}", out)
    return out
