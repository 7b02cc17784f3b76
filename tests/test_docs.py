"""The docs stay true to the tree: every command line they show parses, every make target they name
exists, and every relative link (with its #anchor) leads somewhere.

Checked files: README.md, CHANGELOG.md and every Markdown file under docs/. A command line is a line
of a fenced code block that starts with ``allocffi `` or ``python -m allocffi `` (a trailing
backslash continues it); it is parsed with the CLI's own parser, never run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from allocffi.harness.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")])
COMMAND_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAM_PREFIXES = (("allocffi",), ("python", "-m", "allocffi"))
COMMAND_STARTS = tuple(" ".join(prefix) + " " for prefix in PROGRAM_PREFIXES)

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MAKE_IN_TEXT = re.compile(r"`make ([A-Za-z0-9_.-]+)")
MAKE_RULE = re.compile(r"^([A-Za-z0-9_./%-]+(?:[ \t]+[A-Za-z0-9_./%-]+)*)[ \t]*:(?!=)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Line:
    """One line of a doc, with whether it sits inside a fenced code block."""

    path: Path
    number: int
    text: str
    in_code: bool

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.number}"


def read_lines(path: Path) -> list[Line]:
    lines, in_code = [], False
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(text):
            in_code = not in_code
            continue
        lines.append(Line(path, number, text, in_code))
    return lines


def command_lines(path: Path) -> list[tuple[str, list[str]]]:
    """(where, argv after the program name) of every allocffi command line in a code block."""
    found: list[tuple[str, list[str]]] = []
    pending: tuple[Line, str] | None = None  # a command line continued by a trailing backslash
    for line in read_lines(path):
        text = line.text.strip().removeprefix("$ ")
        if pending is not None:
            first, text = pending[0], pending[1] + " " + text
        elif line.in_code and text.startswith(COMMAND_STARTS):
            first = line
        else:
            continue
        if line.in_code and text.endswith("\\"):
            pending = (first, text[:-1])
            continue
        pending = None
        words = shlex.split(text, comments=True)
        prefix = next(p for p in PROGRAM_PREFIXES if tuple(words[: len(p)]) == p)
        found.append((first.where(), words[len(prefix) :]))
    return found


ALL_COMMANDS = [command for path in COMMAND_DOCS for command in command_lines(path)]


def test_the_docs_show_command_lines() -> None:
    assert len(ALL_COMMANDS) >= 20, "the docs' examples were not found: is the code-block reader broken?"


@pytest.mark.parametrize(("where", "argv"), ALL_COMMANDS, ids=[where for where, _ in ALL_COMMANDS])
def test_command_line_parses(where: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        error = capsys.readouterr().err.strip()
        pytest.fail(f"{where}: `allocffi {shlex.join(argv)}` does not parse: {error}")


def make_targets() -> set[str]:
    targets: set[str] = set()
    for text in (ROOT / "Makefile").read_text().splitlines():
        match = MAKE_RULE.match(text)
        if match and not text.startswith("\t"):
            targets.update(match.group(1).split())
    return targets


def test_make_targets_named_in_the_docs_exist() -> None:
    targets = make_targets()
    named = []
    for path in DOCS:
        for line in read_lines(path):
            names = MAKE_IN_TEXT.findall(line.text)
            if line.in_code and line.text.strip().startswith("make "):
                names.append(line.text.split()[1])
            named += [(line.where(), name) for name in names]
    assert len(named) >= 10, "no make target found in the docs: is the reader broken?"
    missing = [f"{where}: make {name}" for where, name in named if name not in targets]
    assert not missing, "make targets the Makefile does not have:\n" + "\n".join(missing)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result: set[str] = set()
    for line in read_lines(path):
        match = HEADING.match(line.text)
        if line.in_code or not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def test_relative_links_lead_somewhere() -> None:
    broken, checked = [], 0
    for path in DOCS:
        for line in read_lines(path):
            if line.in_code:
                continue
            for target in LINK.findall(line.text):
                if re.match(r"[a-z]+:", target):  # https:, mailto:
                    continue
                checked += 1
                file_part, _, anchor = target.partition("#")
                destination = (path.parent / file_part).resolve() if file_part else path
                if not destination.exists():
                    broken.append(f"{line.where()}: {target} (no such file)")
                elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
                    broken.append(f"{line.where()}: {target} (no such heading)")
    assert checked >= 20, "no links found in the docs: is the reader broken?"
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)
