"""The repository's own documentation: no pointer into ``../shared/docs``, links that resolve, examples that parse.

``../shared`` sits beside the development checkout only; a clone of the repository has none of it, so README.md and
docs/ must not send readers to ``../shared/docs`` (naming ``../shared/data`` as where the optional real test data
goes is fine). Relative Markdown links must name a path of the repository (and, into a Markdown file, one of its
headings). The examples of docs/formats.md marked ``<!-- example: KIND [key=value ...] -->`` are the fenced block
right after the marker; each is parsed with the project's own reader for KIND (``CHECKS``), so the documented
formats cannot drift from the code. Fast: no model, no network, no real data.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from stickypi_assets.formats.annotations import class_for_stroke
from stickypi_assets.formats.itc_database import CREATE_TABLE_SQL, latest_per_tuboid, read_annotations
from stickypi_assets.formats.labels import LabelMap
from stickypi_assets.formats.names import parse_image_name
from stickypi_assets.formats.sim_svg import parse_sim_name, read_sim_svg, write_sim_svg
from stickypi_assets.formats.tuboids import (
    CONTEXT_FILENAME,
    METADATA_FILENAME,
    MIN_FRAMES_TO_WRITE,
    MIN_TILES_TO_READ,
    TUBOID_FILENAME,
    TuboidId,
    count_valid_tiles,
    format_metadata_txt,
    read_metadata_txt,
)
from stickypi_assets.formats.uid_svg import UidSvgError, read_uid_svg, write_uid_svg
from stickypi_assets.ml.checkpoints import is_version
from stickypi_assets.ml.sim.outputs import TRACKS_FILENAME
from stickypi_assets.ml.uid.config import UidConfig
from stickypi_assets.pipeline.raw_images import image_name_of
from stickypi_assets.storage.keys import (
    TILED_TUBOIDS,
    day_start,
    raw_day_prefix,
    raw_image_key,
    tuboid_day_prefix,
    tuboid_folder_key,
    tuboid_key,
)

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
FORMATS = DOCS / "formats.md"

SHARED_DOCS = re.compile(rb"shared/docs")
_FENCED = re.compile(r"^(?P<fence>```+|~~~+).*?^(?P=fence)[ \t]*$", re.M | re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*(?:<(?P<angle>[^>\n]+)>|(?P<target>[^)\s]+))(?:\s+[\"'][^\n]*?[\"'])?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^#{1,6}[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$", re.M)
_MARKER_LINE = re.compile(r"^<!-- example:.*$", re.M)
_EXAMPLE = re.compile(
    r"^<!-- example: (?P<kind>[a-z][\w-]*)(?P<args>(?: [\w-]+=\S+)*) -->[ \t]*\n"
    r"(?:[ \t]*\n)*"
    r"(?P<fence>```+|~~~+)[^\n]*\n(?P<body>.*?\n)(?P=fence)[ \t]*$",
    re.M | re.S,
)


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def _without_code(text: str) -> str:
    """``text`` with fenced blocks and inline code blanked (same length, same lines): neither holds links."""

    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group())

    return _INLINE_CODE.sub(blank, _FENCED.sub(blank, text))


def heading_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file (lower case, punctuation dropped, spaces → ``-``)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for match in _HEADING.finditer(_FENCED.sub("", path.read_text(encoding="utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", match.group("title").strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def relative_links(path: Path) -> list[tuple[int, str]]:
    """``(line, target)`` of every link or image of ``path`` that is not a URL (code spans and blocks excluded)."""
    text = _without_code(path.read_text(encoding="utf-8"))
    out = []
    for match in _LINK.finditer(text):
        target = match.group("angle") or match.group("target")
        if not _SCHEME.match(target):
            out.append((text.count("\n", 0, match.start()) + 1, target))
    return out


def broken_link(source: Path, target: str) -> str | None:
    """Why ``target`` (a relative link in ``source``) is broken, or ``None`` when it resolves."""
    path_part, _, anchor = target.partition("#")
    resolved = (source.parent / unquote(path_part)).resolve() if path_part else source
    if not resolved.is_relative_to(REPO):
        return f"{target}: outside the repository ({resolved})"
    if not resolved.exists():
        return f"{target}: {_rel(resolved)} does not exist"
    if anchor and resolved.suffix == ".md" and unquote(anchor).lower() not in heading_anchors(resolved):
        return f"{target}: no heading #{anchor} in {_rel(resolved)}"
    return None


# -- (1) and (2): README.md and docs/ ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [README, *sorted(p for p in DOCS.rglob("*") if p.is_file())], ids=lambda p: _rel(p)
)
def test_no_path_into_shared_docs(path: Path) -> None:
    data = path.read_bytes()
    lines = [data.count(b"\n", 0, m.start()) + 1 for m in SHARED_DOCS.finditer(data)]
    assert not lines, f"{_rel(path)} points into ../shared/docs (absent from a clone) on line(s) {lines}"


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: _rel(p))
def test_relative_links_resolve(path: Path) -> None:
    broken = [f"line {line}: {why}" for line, target in relative_links(path) if (why := broken_link(path, target))]
    assert not broken, f"{_rel(path)} has broken links:\n" + "\n".join(broken)


def test_link_checker_sees_links_and_ignores_code(tmp_path: Path) -> None:
    """Control for the two tests above: the checker finds what a reader would click, and only that."""
    doc = tmp_path / "x.md"
    doc.write_text("# A title\n[a](b.md#a-title) ![i](<c d.png>) [u](https://e.org) `[n](code)`\n```\n[n](x)\n```\n")
    assert relative_links(doc) == [(2, "b.md#a-title"), (2, "c d.png")]
    assert heading_anchors(doc) == {"a-title"}
    assert broken_link(doc, "b.md") == "b.md: outside the repository (" + str(tmp_path / "b.md") + ")"
    assert broken_link(README, "docs/formats.md#no-such-heading") == (
        "docs/formats.md#no-such-heading: no heading #no-such-heading in docs/formats.md"
    )
    assert broken_link(README, "docs/formats.md#tuboid-folders") is None


# -- (3): the examples of docs/formats.md -------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    kind: str
    args: dict[str, str]
    body: str
    line: int

    def __str__(self) -> str:
        return f"{self.kind}@formats.md:{self.line}"


def formats_examples() -> list[Example]:
    if not FORMATS.is_file():
        return []
    text = FORMATS.read_text(encoding="utf-8")
    return [
        Example(
            kind=m.group("kind"),
            args=dict(arg.split("=", 1) for arg in m.group("args").split()),
            body=m.group("body"),
            line=text.count("\n", 0, m.start()) + 1,
        )
        for m in _EXAMPLE.finditer(text)
    ]


def _lines(body: str) -> list[str]:
    return [line.strip() for line in body.splitlines() if line.strip()]


def check_image_key(ex: Example, _: list[Example], tmp_path: Path) -> None:
    for key in _lines(ex.body):
        name = image_name_of(key, key.split("/")[1])  # the day index's own rule for a raw image key
        assert raw_image_key(name.device, name.stem) == key
        assert key.startswith(raw_day_prefix(name.device, name.datetime.date()))


def check_uid_svg(ex: Example, _: list[Example], tmp_path: Path) -> None:
    name = ex.args.get("name", "example.svg")
    if "name" in ex.args:
        parse_image_name(name, ext="svg")
    doc = read_uid_svg(ex.body, name=name)
    assert doc.warnings == []
    assert len(doc.instances) == int(ex.args["instances"])
    assert doc.decode_image().shape == (doc.height, doc.width, 3)
    palette = UidConfig().palette  # the documented default class: every outline of the example is an "insect"
    assert {class_for_stroke(i.stroke, palette) for i in doc.instances} == {"insect"}
    again = read_uid_svg(write_uid_svg(doc), name=name)  # what the writer makes of it reads the same
    assert again.instances == doc.instances and again.metadata == doc.metadata and again.md5 == doc.md5


def check_uid_svg_refused(ex: Example, _: list[Example], tmp_path: Path) -> None:
    with pytest.raises(UidSvgError, match=r"^refused\.svg: "):
        read_uid_svg(ex.body, name="refused.svg")


def check_sim_svg(ex: Example, _: list[Example], tmp_path: Path) -> None:
    name = ex.args["name"]
    assert parse_sim_name(name) is not None
    pair = read_sim_svg(ex.body, name=name)
    assert pair.warnings == []
    assert len(pair.groups) == int(ex.args["groups"])
    assert pair.frame0.instances and pair.frame1.instances and pair.datetime0 < pair.datetime1
    again = read_sim_svg(write_sim_svg(pair), name=name)
    assert again.groups == pair.groups and again.warnings == []
    assert again.frame0.instances == pair.frame0.instances and again.frame1.instances == pair.frame1.instances


def check_tuboid_keys(ex: Example, _: list[Example], tmp_path: Path) -> None:
    series_with_folders, series_with_tracks = set(), set()
    for key in _lines(ex.body):
        top, series, *rest = key.split("/")
        assert top == TILED_TUBOIDS
        if rest == [TRACKS_FILENAME]:
            series_with_tracks.add(series)
            continue
        folder, filename = rest
        tid = TuboidId.parse(folder)
        assert str(tid) == folder and tid.series_id == series
        assert filename in (METADATA_FILENAME, TUBOID_FILENAME, CONTEXT_FILENAME)
        assert key == tuboid_key(f"{series}/{folder}/{filename}")
        assert key.startswith(tuboid_folder_key(series, folder))
        # the platform's series: one UTC day, named after the SIM version (md5 of its weights)
        assert is_version(tid.version)
        assert tid.start == day_start(tid.start.date()) and tid.end - tid.start == timedelta(days=1)
        assert key.startswith(tuboid_day_prefix(tid.device, tid.start.date()))
        series_with_folders.add(series)
    assert series_with_tracks <= series_with_folders


def check_tuboid_ids(ex: Example, _: list[Example], tmp_path: Path) -> None:
    for line in _lines(ex.body):
        assert str(TuboidId.parse(line)) == line


def check_metadata_txt(ex: Example, _: list[Example], tmp_path: Path) -> None:
    frames = read_metadata_txt(ex.body)
    assert read_metadata_txt(ex.body, device=frames[0].device) == frames
    assert len(frames) >= MIN_FRAMES_TO_WRITE and count_valid_tiles(frames) >= MIN_TILES_TO_READ
    assert format_metadata_txt(frames) == ex.body  # exactly what the writer writes


def check_database_sql(ex: Example, _: list[Example], tmp_path: Path) -> None:
    create = re.search(r"CREATE TABLE .*?\)", ex.body, re.S)
    assert create is not None and create.group().split() == CREATE_TABLE_SQL.split()  # the tool's schema
    path = tmp_path / "database.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(ex.body)
    conn.close()
    rows = read_annotations(path)
    assert rows and all(row.taxon.count(".") == 4 for row in rows)
    winners = latest_per_tuboid(rows)
    if "latest" in ex.args:
        assert {row.user for row in winners.values()} == {ex.args["latest"]}
    if "taxon" in ex.args:
        assert {row.taxon for row in winners.values()} == {ex.args["taxon"]}


def _label_map(ex: Example) -> LabelMap:
    return LabelMap.from_config(yaml.safe_load(ex.body)["LABELS"])


def check_labels_yaml(ex: Example, _: list[Example], tmp_path: Path) -> None:
    label_map = _label_map(ex)
    assert label_map.n_classes == len(yaml.safe_load(ex.body)["LABELS"])


def check_label_taxa(ex: Example, examples: list[Example], tmp_path: Path) -> None:
    """Each ``taxon -> label`` line, under the ``labels-yaml`` example just before this one."""
    config = [e for e in examples if e.kind == "labels-yaml" and e.line < ex.line]
    assert config, "a label-taxa example follows a labels-yaml example"
    label_map = _label_map(config[-1])
    for line in _lines(ex.body):
        taxon, arrow, label = line.rpartition("->")
        assert arrow, f"expected 'taxon -> label', got {line!r}"
        assert label_map.label_for(taxon.strip()) == int(label), line


CHECKS: dict[str, Callable[[Example, list[Example], Path], None]] = {
    "image-key": check_image_key,
    "uid-svg": check_uid_svg,
    "uid-svg-refused": check_uid_svg_refused,
    "sim-svg": check_sim_svg,
    "tuboid-keys": check_tuboid_keys,
    "tuboid-ids": check_tuboid_ids,
    "metadata-txt": check_metadata_txt,
    "database-sql": check_database_sql,
    "labels-yaml": check_labels_yaml,
    "label-taxa": check_label_taxa,
}


def test_formats_has_one_parsed_block_per_marker_and_every_kind() -> None:
    assert FORMATS.is_file(), "docs/formats.md is missing"
    text = FORMATS.read_text(encoding="utf-8")
    examples = formats_examples()
    found = {ex.line for ex in examples}
    orphans = [
        line for m in _MARKER_LINE.finditer(text) if (line := text.count("\n", 0, m.start()) + 1) not in found
    ]
    assert not orphans, f"markers not followed by a fenced block (or malformed) on lines {orphans}"
    assert {ex.kind for ex in examples} == set(CHECKS)


@pytest.mark.parametrize("example", formats_examples(), ids=str)
def test_formats_example_parses(example: Example, tmp_path: Path) -> None:
    assert example.kind in CHECKS, f"no check for example kind {example.kind!r} (add one to CHECKS)"
    CHECKS[example.kind](example, formats_examples(), tmp_path)
