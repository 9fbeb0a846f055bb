"""`cflc doc`: Markdown and self-contained HTML reference pages whose links all resolve."""

from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "examples" / "fleet"
CFLC = [sys.executable, "-c", "from cfglang.cli import run; run()"]


def cflc(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CFLC, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


class _Page(HTMLParser):
    """Ids, links, external references and table shapes of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self.external: list[str] = []
        self.headers: list[list[str]] = []
        self._in_th = False
        self._text: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "a" and a.get("href") is not None:
            self.hrefs.append(a["href"] or "")
        for key in ("src", "href"):
            v = a.get(key) or ""
            if v.startswith(("http:", "https:", "//")):
                self.external.append(v)
        if tag == "thead":
            self.headers.append([])
        if tag == "th":
            self._in_th, self._text = True, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_th = False
            self.headers[-1].append("".join(self._text))

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_th:
            self._text.append(data)


def parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def fleet_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    r = cflc("doc", FLEET, "-o", out)
    assert r.returncode == 0, r.stderr
    return out


def test_pages_written(fleet_docs: Path) -> None:
    names = sorted(p.name for p in fleet_docs.iterdir())
    assert names == [
        "index.html",
        "index.md",
        "schemas-service.html",
        "schemas-service.md",
        "std-k8s.html",
        "std-k8s.md",
        "std-net.html",
        "std-net.md",
    ]


def test_html_is_self_contained_and_links_resolve(fleet_docs: Path) -> None:
    pages = {p.name: parse(p) for p in fleet_docs.glob("*.html")}
    checked = 0
    for name, page in pages.items():
        assert "script" not in page.tags and "link" not in page.tags, name
        assert page.external == [], name
        assert "style" in page.tags
        for href in page.hrefs:
            file, _, anchor = href.partition("#")
            target = pages[file] if file else page
            assert not file or file in pages, (name, href)
            if anchor:
                assert anchor in target.ids, (name, href)
            checked += 1
    assert checked > 50


def test_html_structure(fleet_docs: Path) -> None:
    page = parse(fleet_docs / "schemas-service.html")
    assert {"schema-Service", "schema-Database", "schema-Gateway", "type-Env"} <= page.ids
    assert ["Field", "Type", "Default", "Constraints", "Description"] in page.headers
    # values of each target: one column per instance
    assert ["Field", "services.billing", "services.search"] in page.headers
    assert ["Field", "services.gateway"] in page.headers
    text = "".join(page.text)
    assert "Values of Service in targets" in text and "env/prod.cfl" in text
    assert '"http://billing.prod.eu-west-1.internal:8080"' in text
    # cross-module links: Service.port points at std/net's Port
    assert "std-net.html#type-Port" in page.hrefs
    assert "#schema-Database" in page.hrefs
    k8s = parse(fleet_docs / "std-k8s.html")
    assert "schema-Probe" in k8s.ids
    index = parse(fleet_docs / "index.html")
    assert "schemas-service.html#schema-Service" in index.hrefs


def test_markdown_content(fleet_docs: Path) -> None:
    md = (fleet_docs / "schemas-service.md").read_text(encoding="utf-8")
    assert '<a id="schema-Service"></a>' in md and "### schema Service" in md
    assert "| Field | Type | Default | Constraints | Description |" in md
    assert ("| `replicas` | `int` | `1` | `self >= 1` | Number of pods. |") in md
    assert "| `port` | [`net.Port`](std-net.md#type-Port) | `8080` |" in md
    assert "| `db` | [`Database`](#schema-Database)`?` | optional |" in md
    assert "Extends [`Service`](#schema-Service)" in md
    assert '`"disable" \\| "require" \\| "verify-full"`' in md  # pipes escaped in tables
    assert '- `replicas <= 3 || env == "prod"` — more than 3 replicas is for prod only' in md
    assert "Target `env/prod.cfl`" in md
    net = (fleet_docs / "std-net.md").read_text(encoding="utf-8")
    assert "A TCP or UDP port number, 1 to 65535." in net
    assert "type Port = int where 1 <= self && self <= 65535" in net


def test_secrets_are_redacted(tmp_path: Path) -> None:
    r = cflc("init", tmp_path / "proj")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "docs"
    # The scaffold's production password comes from DB_PASSWORD (it has no default).
    r = cflc("doc", tmp_path / "proj", "-o", out, env={"DB_PASSWORD": "Known-Pass-42"})
    assert r.returncode == 0, r.stderr
    md = (out / "schemas-service.md").read_text(encoding="utf-8")
    assert "<secret>" in md
    for f in out.iterdir():
        assert "Known-Pass-42" not in f.read_text(encoding="utf-8"), f.name


def test_single_file_and_errors(tmp_path: Path) -> None:
    r = cflc("doc", ROOT / "stdlib" / "std" / "k8s.cfl", "-o", tmp_path / "k")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "k" / "std-k8s.html").is_file()
    assert (tmp_path / "k" / "std-net.md").is_file()  # imported by k8s: linked to
    r = cflc("doc", tmp_path / "missing.cfl", "-o", tmp_path / "x")
    assert r.returncode == 2 and "does not exist" in r.stderr
    (tmp_path / "bad.cfl").write_text("schema S { x: Nope }\n")
    r = cflc("doc", tmp_path / "bad.cfl", "-o", tmp_path / "y", "--error-format", "json")
    assert r.returncode == 1 and '"code": "E0203"' in r.stderr and "Traceback" not in r.stderr
    r = cflc("doc", "--help")
    assert r.returncode == 0 and "Markdown" in r.stdout


def test_markdown_escapes_html_and_pipes(tmp_path: Path) -> None:
    """Doc comments and values are plain text in the Markdown, as in the HTML: rendered
    by a CommonMark parser with raw HTML on, nothing becomes a tag, link or list, and a
    `|` does not split a table cell."""
    from markdown_it import MarkdownIt

    proj = tmp_path / "proj"
    (proj / "env").mkdir(parents=True)
    (proj / "cfl.toml").write_text('[project]\ntargets = ["env/*.cfl"]\n')
    (proj / "schema.cfl").write_text(
        "## A <script>alert(1)</script> type | with a pipe and *stars*.\n"
        'type Mode = "a|b" | "<b>x</b>"\n'
        "\n"
        "## Holds <img src=x onerror=alert(2)> and [a link](javascript:alert(3)).\n"
        "schema Svc {\n"
        "  ## The mode | pick one <script>alert(4)</script>\n"
        '  mode: Mode = "a|b"\n'
        "  ## - not a list item\n"
        '  name: string = "<script>alert(5)</script>"\n'
        "  ## ``` a fence `` and ticks\n"
        '  tag: string = "`` ` ``"\n'
        "}\n"
    )
    (proj / "env" / "prod.cfl").write_text(
        'import "../schema.cfl" as s\nsvc: s.Svc = { name = "x|y<script>alert(6)</script>" }\n'
    )
    out = tmp_path / "docs"
    r = cflc("doc", proj, "-o", out)
    assert r.returncode == 0, r.stderr
    md = (out / "schema.md").read_text(encoding="utf-8")
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    for tag in ("<script", "<img", "<b>", "<em>", "<strong>", 'href="javascript'):
        assert tag not in rendered, tag
    assert "<li>not a list item" not in rendered
    assert "A &lt;script&gt;alert(1)&lt;/script&gt; type | with a pipe and *stars*." in rendered
    assert "<td><code>&quot;a|b&quot;</code></td>" in rendered
    assert "<td>The mode | pick one &lt;script&gt;alert(4)&lt;/script&gt;</td>" in rendered
    assert "<code>&quot;x|y&lt;script&gt;alert(6)&lt;/script&gt;&quot;</code>" in rendered
    assert "<code>&quot;`` ` ``&quot;</code>" in rendered
    rows = [ln for ln in rendered.splitlines() if ln.startswith("<tr>")]
    assert rows, rendered
    table = rendered.split("<table>")[1]
    assert table.count("<th>") == 5 and table.count("<td>") == 3 * 5
