"""How strong a new password must be: at least 10 characters, not all of one kind (letters only, digits only,
...), and not easy to guess by zxcvbn's estimate (score 2 of 4 or more: no common password, keyboard walk,
repeat or the username itself), the well-kept estimator rather than a hand-made word list."""

from __future__ import annotations

import unicodedata

from zxcvbn import zxcvbn

MIN_CHARS = 10
MAX_CHARS = 200
MIN_SCORE = 2

# code -> (English for the command line, Chinese for the pages)
PROBLEMS = {
    "short": (f"the password must have at least {MIN_CHARS} characters", f"密码至少需要 {MIN_CHARS} 个字符。"),
    "long": (f"the password must have at most {MAX_CHARS} characters", f"密码最多 {MAX_CHARS} 个字符。"),
    "one_class": ("the password must mix kinds of characters (letters, digits, punctuation), not only one",
                  "密码不能只由一类字符组成，请混合使用字母、数字或符号。"),
    "guessable": ("the password is too easy to guess (a common word, pattern or the username): choose another",
                  "密码太容易被猜到（常见密码、键盘序列、重复字符或与用户名相近），请换一个。"),
}


def _kind(char: str) -> str:
    if char.isdigit():
        return "digit"
    if char.isalpha():
        return "upper" if char.isupper() else "letter"
    return "space" if char.isspace() else unicodedata.category(char)[0]


def password_problem(password: str, username: str = "") -> str | None:
    """The first rule the password breaks (a key of ``PROBLEMS``), or None when it is strong enough."""
    if len(password) < MIN_CHARS:
        return "short"
    if len(password) > MAX_CHARS:
        return "long"
    if len({_kind(c) for c in password}) < 2:
        return "one_class"
    if zxcvbn(password, user_inputs=[username] if username else [])["score"] < MIN_SCORE:
        return "guessable"
    return None
