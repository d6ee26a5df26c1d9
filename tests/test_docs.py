"""README.md and docs/*.md: relative links resolve, every page is linked from the front page, which
stays short."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def relative_links(text):
    """The targets of markdown links `[text](target)` outside fenced code that are not URLs or anchors."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    targets = re.findall(r"\]\(([^)\s]+)\)", prose)
    return [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:|#", t)]


def broken_links(page, root=ROOT):
    """The relative links of a page whose file does not exist, as 'page: target'."""
    return [
        f"{page.relative_to(root)}: {target}"
        for target in relative_links(page.read_text())
        if not (page.parent / target).exists()
    ]


def test_relative_links_are_found_and_urls_anchors_and_code_skipped(tmp_path):
    text = "[a](docs/x.md) [b](https://e.org) [c](#top) [d](y.md#part)\n```\n[e](in_code.md)\n```\n"
    assert relative_links(text) == ["docs/x.md", "y.md"]
    page = tmp_path / "p.md"
    (tmp_path / "y.md").write_text("")
    page.write_text(text)
    assert broken_links(page, tmp_path) == ["p.md: docs/x.md"]


def test_every_relative_link_in_readme_and_docs_resolves():
    assert len(PAGES) > 5
    assert [b for page in PAGES for b in broken_links(page)] == []


def test_readme_links_every_docs_page():
    linked = {(ROOT / t).resolve() for t in relative_links((ROOT / "README.md").read_text())}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_readme_is_a_short_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) < 150
