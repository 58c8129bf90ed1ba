"""README is a front page and the rest lives in docs/: these tests keep that true. A section moved or a
heading renamed must break a test here, not a reader's click, and README must stay short and keep the
two quick-start commands that users copy and .ci/run runs."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]

# Issue 36: "about 10,000 characters at most". Bytes, as `wc -c` counts them, so the bound is never looser.
README_LIMIT = 10_000
# The first thing a new user types; the issue keeps it unchanged.
RUN_COMMAND = "pip install -e . && python search/dual_weights.py"

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]+`")
# [text](target) and ![alt](target); the text may hold one level of brackets; an optional "title".
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def prose(text: str) -> str:
    """The text a reader sees as Markdown: a [x](y) inside code is an example, not a link."""
    text = FENCE.sub("", text)
    return INLINE_CODE.sub("code", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped except '-' and '_', spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")   # GitHub numbers repeated headings
    return out


def relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page.read_text()))
            if not re.match(r"(?i)(https?:|mailto:)", t)]


def shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def broken(page: Path) -> list[str]:
    out = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            out.append(f"{target}: no such file {shown(dest)}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            out.append(f"{target}: no heading #{anchor} in {shown(dest)}")
    return out


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_resolves(page):
    assert relative_links(page) or page != README, "README links nothing: the link scan is not reading it"
    assert not broken(page), f"{shown(page)}:\n" + "\n".join(broken(page))


def test_the_scan_sees_a_broken_link_and_a_broken_anchor(tmp_path):
    # Guards the checker itself: a regex that matched nothing would let every page pass.
    (tmp_path / "there.md").write_text("# A heading, with `code`\n\n```\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md#a-heading-with-code) [gone](missing.md) [bad](there.md#not-a-heading) "
                    "![img](nope.png) [web](https://example.org/x.md) `[code](ignored.md)` [self](#nowhere)\n")
    problems = broken(page)
    assert [p.split(":")[0] for p in problems] == ["missing.md", "there.md#not-a-heading", "nope.png", "#nowhere"]


@pytest.mark.parametrize("page", [p for p in PAGES if p.parent.name == "docs"],
                         ids=lambda p: p.name)
def test_each_docs_page_leads_back_to_the_front_page(page):
    assert any(t.partition("#")[0] == "../README.md" for t in relative_links(page))


def test_readme_is_a_front_page():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail into docs/ (limit {README_LIMIT})"


def code_lines(page: Path) -> set[str]:
    return {line.strip() for m in FENCE.finditer(page.read_text()) for line in m.group(0).splitlines()}


def test_readme_keeps_the_quick_start_commands():
    # The test command is whatever .ci/run runs ("the README's test command, nothing cleverer"), so the
    # two cannot drift apart silently.
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines()
          if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert len(ci) == 1, ci
    lines = code_lines(README)
    assert RUN_COMMAND in lines
    assert ci[0].strip() in lines
