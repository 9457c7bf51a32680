"""The documentation holds together: the README is a first screen that gets a newcomer
running, and every relative link in README.md and docs/*.md leads to a file that exists."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))

# Pages other people write (architecture) or generate (config, from the config schema). The
# README links them already; until they land, a link to them may point at nothing.
WRITTEN_ELSEWHERE = {ROOT / "docs" / "architecture.md", ROOT / "docs" / "config.md"}

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*(?:<([^>]*)>|([^)\s]+))(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def links(path: Path) -> list[str]:
    """The link targets of a Markdown file, outside code blocks and code spans."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))
    return [angled or plain for angled, plain in _LINK.findall(text)]


def relative_targets(path: Path) -> list[tuple[str, Path]]:
    """(as written, the file it names) for each relative link: no http:, mailto: or other
    scheme, no bare #anchor; the #fragment of the rest is dropped."""
    out = []
    for target in links(path):
        if _SCHEME.match(target) or target.startswith("#"):
            continue
        file_part = target.split("#", 1)[0].split("?", 1)[0]
        out.append((target, (path.parent / file_part).resolve()))
    return out


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_a_file(page):
    broken = [target for target, resolved in relative_targets(page)
              if not resolved.exists() and resolved not in WRITTEN_ELSEWHERE]
    assert broken == [], f"{page.relative_to(ROOT)} links to missing files: {broken}"


def test_the_link_reader_sees_links_and_skips_code(tmp_path):
    sample = tmp_path / "sample.md"
    text = ("[a](docs/a.md#part) [b](<docs/b c.md>) ![img](pic.png \"title\") [web](https://x.y/z)\n"
            "[mail](mailto:a@torex.ru) [here](#anchor) `[code](not/a/link.md)`\n"
            "```\n[fenced](not/either.md)\n```\n")
    sample.write_text(text, encoding="utf-8")
    assert links(sample) == ["docs/a.md#part", "docs/b c.md", "pic.png", "https://x.y/z",
                             "mailto:a@torex.ru", "#anchor"]
    assert relative_targets(sample) == [("docs/a.md#part", tmp_path / "docs" / "a.md"),
                                        ("docs/b c.md", tmp_path / "docs" / "b c.md"),
                                        ("pic.png", tmp_path / "pic.png")]


def test_readme_first_screen_gets_a_newcomer_running():
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:60])
    for needed in ("make run", "make test", "var/outbox", "Ctrl-C"):
        assert needed in first_screen, f"the README's first 60 lines do not name {needed!r}"


def test_readme_stays_short():
    assert README.stat().st_size < 6 * 1024, "the README is a first screen: the rest belongs in docs/"


def test_readme_lists_every_page():
    linked = {resolved for _, resolved in relative_targets(README)}
    missing = [str(p.relative_to(ROOT)) for p in [*PAGES, *WRITTEN_ELSEWHERE, ROOT / "CHANGELOG.md"]
               if p.resolve() not in linked]
    assert missing == [], f"the README's 'where to read on' does not link {missing}"

