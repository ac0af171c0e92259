"""Word's list numbering (w:numbering): level definitions, overrides, and the counters that
turn a paragraph's list membership into the marker Word shows (一、（一）1.)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from lxml import etree

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
NS = {
    "w": W[1:-1],
    "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006",
}
CJK_DIGITS = "零一二三四五六七八九"
MARKER_END = "、.．。)）:："


def chinese_number(n: int) -> str:
    """1 -> 一, 12 -> 十二, 20 -> 二十, 105 -> 一百零五 (as Word's chineseCounting shows them)."""
    if n < 10:
        return CJK_DIGITS[max(n, 0)]
    if n < 20:
        return "十" + (CJK_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return CJK_DIGITS[n // 10] + "十" + (CJK_DIGITS[n % 10] if n % 10 else "")
    if n < 1000:
        rest = n % 100
        tail = "" if not rest else "零" + CJK_DIGITS[rest] if rest < 10 else chinese_number(rest)
        return CJK_DIGITS[n // 100] + "百" + ("一" + tail if 10 <= rest < 20 else tail)
    return str(n)


def _roman(n: int) -> str:
    out = ""
    for value, numeral in zip(
        (1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1),
        ("m", "cm", "d", "cd", "c", "xc", "l", "xl", "x", "ix", "v", "iv", "i"),
        strict=True,
    ):
        count, n = divmod(n, value)
        out += numeral * count
    return out


def format_number(n: int, fmt: str) -> str:
    """A list counter in one of Word's number formats (w:numFmt)."""
    if fmt in ("none", "bullet"):
        return ""
    if fmt.startswith(("chinese", "japanese", "taiwanese", "ideographDigital")):
        return chinese_number(n)
    if fmt == "ideographTraditional":
        return "甲乙丙丁戊己庚辛壬癸"[(n - 1) % 10]
    if fmt == "ideographZodiac":
        return "子丑寅卯辰巳午未申酉戌亥"[(n - 1) % 12]
    if fmt.startswith("decimalEnclosedCircle") and 1 <= n <= 20:
        return chr(0x2460 + n - 1)
    if fmt == "decimalEnclosedParen" and 1 <= n <= 20:
        return chr(0x2474 + n - 1)
    if fmt == "decimalEnclosedFullstop" and 1 <= n <= 20:
        return chr(0x2488 + n - 1)
    if fmt.startswith("decimalFullWidth"):
        return "".join(chr(ord(d) + 0xFEE0) for d in str(n))
    if fmt == "decimalZero":
        return f"{n:02d}"
    if fmt in ("lowerLetter", "upperLetter"):
        letters = chr(ord("a") + (n - 1) % 26) * ((n - 1) // 26 + 1)
        return letters.upper() if fmt == "upperLetter" else letters
    if fmt in ("lowerRoman", "upperRoman"):
        return _roman(n).upper() if fmt == "upperRoman" else _roman(n)
    return str(n)


def val(element: etree._Element | None, path: str) -> str | None:
    """The w:val of the first element at ``path`` below ``element``."""
    if element is None:
        return None
    found = element.find(path, NS)
    return None if found is None else found.get(f"{W}val")


def to_int(value: str | None) -> int | None:
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


class NumberedStyle(Protocol):
    """What list numbering needs of a paragraph style: the list it numbers, if any."""

    num_id: str | None


@dataclass
class Level:
    start: int = 1
    fmt: str = "decimal"
    text: str = ""
    suffix: str = "tab"
    legal: bool = False
    style: str | None = None


def read_level(el: etree._Element) -> Level:
    start = to_int(val(el, "w:start"))
    return Level(
        start=1 if start is None else start,
        fmt=val(el, "w:numFmt") or "decimal",
        text=val(el, "w:lvlText") or "",
        suffix=val(el, "w:suff") or "tab",
        legal=el.find("w:isLgl", NS) is not None,
        style=val(el, "w:pStyle"),
    )


@dataclass
class Num:
    """One list (w:num): its shared definition and what it overrides there."""

    abstract: str
    starts: dict[int, int] = field(default_factory=dict)  # w:startOverride by level
    levels: dict[int, Level] = field(default_factory=dict)  # whole w:lvl overrides


@dataclass
class Lists:
    """Word's list numbering: level definitions, and the counters as the document proceeds."""

    styles: Mapping[str, NumberedStyle]
    abstract: dict[str, dict[int, Level]] = field(default_factory=dict)
    style_links: dict[str, str] = field(default_factory=dict)  # abstractNum -> numbering style
    nums: dict[str, Num] = field(default_factory=dict)
    counters: dict[str, list[int | None]] = field(default_factory=dict)  # by abstractNum
    restarted: set[tuple[str, int]] = field(default_factory=set)  # (numId, level) seen

    @classmethod
    def read(cls, root: etree._Element | None, styles: Mapping[str, NumberedStyle]) -> Lists:
        lists = cls(styles)
        if root is None:
            return lists
        for el in root.findall("w:abstractNum", NS):
            aid = el.get(f"{W}abstractNumId") or ""
            lists.abstract[aid] = {
                to_int(lv.get(f"{W}ilvl")) or 0: read_level(lv) for lv in el.findall("w:lvl", NS)
            }
            link = val(el, "w:numStyleLink")
            if link:
                lists.style_links[aid] = link
        for el in root.findall("w:num", NS):
            num = Num(val(el, "w:abstractNumId") or "")
            for ov in el.findall("w:lvlOverride", NS):
                ilvl = to_int(ov.get(f"{W}ilvl")) or 0
                lvl = ov.find("w:lvl", NS)
                start = to_int(val(ov, "w:startOverride"))
                if lvl is not None:
                    num.levels[ilvl] = read_level(lvl)
                if start is not None:
                    num.starts[ilvl] = start
            lists.nums[el.get(f"{W}numId") or ""] = num
        return lists

    def levels(self, num_id: str, depth: int = 0) -> dict[int, Level]:
        """The level definitions of a list, after overrides and numbering-style links."""
        num = self.nums.get(num_id, Num(""))
        levels = self.abstract.get(num.abstract, {})
        link = self.style_links.get(num.abstract)
        if not levels and link is not None and link in self.styles and depth < 3:
            levels = self.levels(self.styles[link].num_id or "", depth + 1)
        merged = {**levels, **num.levels}
        for ilvl, start in num.starts.items():
            merged[ilvl] = replace(merged.get(ilvl, Level()), start=start)
        return merged

    def level_for_style(self, num_id: str, style_ids: set[str]) -> int:
        """A style-numbered paragraph's level: the one that names its style, else the first."""
        return next((i for i, lv in self.levels(num_id).items() if lv.style in style_ids), 0)

    def marker(self, num_id: str, ilvl: int) -> str:
        """Advance this list's counter at ``ilvl`` and render its w:lvlText, e.g. "（三）"."""
        levels = self.levels(num_id)
        if ilvl not in levels:
            return ""
        num = self.nums.get(num_id, Num(""))
        # As in Word, lists sharing an abstract definition share its count; a list with a
        # startOverride restarts that count where it first appears.
        counts = self.counters.setdefault(num.abstract, [None] * 9)
        current = counts[ilvl]
        if ilvl in num.starts and (num_id, ilvl) not in self.restarted:
            self.restarted.add((num_id, ilvl))
            current = None
        counts[ilvl] = levels[ilvl].start if current is None else current + 1
        for deeper in range(ilvl + 1, len(counts)):
            counts[deeper] = None
        level = levels[ilvl]
        if level.fmt in ("none", "bullet"):
            return ""

        def number(match: re.Match[str]) -> str:
            i = int(match.group(1)) - 1
            lv = levels.get(i, Level())
            n = counts[i] if 0 <= i < len(counts) and counts[i] is not None else lv.start
            return format_number(n or 0, "decimal" if level.legal else lv.fmt)

        text = re.sub(r"%([1-9])", number, level.text).strip()
        if not text or level.suffix == "nothing" or text[-1] in MARKER_END:
            return text
        return text + " "
