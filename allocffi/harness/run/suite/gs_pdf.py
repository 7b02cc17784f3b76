"""ghostscript interpreting a generated PDF of text-heavy pages, with no output device (-dNODISPLAY).

As the peers' gs benchmark does (ghostscript over a large PDF with -dNODISPLAY). Why not render to a
raster device: ghostscript keeps its PostScript/PDF objects in its own chunk allocator and its
rendered glyphs in its glyph cache, so rendering these pages to ppmraw at 150 dpi makes 16 thousand
malloc calls in all (measured here), too few for the allocator to matter. Without a device the
glyph cache is not used, and each glyph shown is loaded again through FreeType, whose memory comes
from malloc: a few allocation calls per glyph, 1.7 million in all.

The PDF: PAGES pages of OPERATIONS drawing operations each, mostly text runs (TJ arrays in the six
standard fonts at sizes from 5 to 40 points), the rest filled polygons and stroked curves. The
file is uncompressed PDF 1.4, with its cross-reference table, written byte for byte the same on
every machine.
"""

from __future__ import annotations

import random
from pathlib import Path

from allocffi.harness.run.suite import SuiteProgram, Tool, scaled_allocations

PAGES = 20  # at scale 1
OPERATIONS = 1000  # per page
SEED = 5
ALLOCATIONS = 1_700_000  # counted here at scale 1 (1,678,264)
FONTS = ("Times-Roman", "Helvetica-Bold", "Courier", "Times-Italic", "Helvetica", "Courier-Bold")
WORDS = ("allocator", "arena", "slab", "page", "free list", "segment", "heap", "chunk", "thread")


def _point(rng: random.Random, x: float, y: float, spread: float) -> str:
    return f"{x + rng.uniform(-spread, spread):.1f} {y + rng.uniform(-spread, spread):.1f}"


def _page_content(rng: random.Random, page: int) -> str:
    ops = []
    for i in range(OPERATIONS):
        ops.append(f"{rng.random():.3f} {rng.random():.3f} {rng.random():.3f} rg")
        kind = rng.randrange(5)
        if kind == 0:
            points = [_point(rng, 306, 396, 306) for _ in range(rng.randint(3, 10))]
            ops.append(f"{points[0]} m " + " ".join(f"{p} l" for p in points[1:]) + " h f")
        elif kind == 1:
            x, y = rng.uniform(0, 612), rng.uniform(0, 792)
            controls = " ".join(_point(rng, x, y, 99) for _ in range(3))
            ops.append(f"{rng.uniform(0.5, 5):.1f} w {x:.1f} {y:.1f} m {controls} c S")
        else:
            words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))
            ops.append(
                f"BT /F{rng.randrange(len(FONTS))} {rng.randint(5, 40)} Tf "
                f"{rng.uniform(0, 560):.1f} {rng.uniform(0, 780):.1f} Td "
                f"[(Page {page}) -120 ({words}) 80 (item {i})] TJ ET"
            )
    return "\n".join(ops)


def generate_pdf(scale: float = 1.0, seed: int = SEED) -> bytes:
    """The PDF: objects 1 catalog, 2 page tree, then the fonts, then (page, contents) pairs."""
    rng = random.Random(seed)
    pages = max(1, round(PAGES * scale))
    first_page = 3 + len(FONTS)
    objects = {1: "<< /Type /Catalog /Pages 2 0 R >>"}
    kids = " ".join(f"{first_page + 2 * p} 0 R" for p in range(pages))
    objects[2] = f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>"
    for i, font in enumerate(FONTS):
        objects[3 + i] = f"<< /Type /Font /Subtype /Type1 /BaseFont /{font} >>"
    font_resources = " ".join(f"/F{i} {3 + i} 0 R" for i in range(len(FONTS)))
    for p in range(pages):
        page, contents = first_page + 2 * p, first_page + 2 * p + 1
        objects[page] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << {font_resources} >> >> /Contents {contents} 0 R >>"
        )
        stream = _page_content(rng, p + 1)
        objects[contents] = f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number in sorted(objects):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{objects[number]}\nendobj\n".encode("ascii")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode("ascii")
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return bytes(out + trailer.encode("ascii"))


def program(scale: float = 1.0) -> SuiteProgram:
    """The program at ``scale`` (1: the suite's run); its allocation figures scale with it."""

    def write(workdir: Path) -> None:
        (workdir / "pages.pdf").write_bytes(generate_pdf(scale))

    def argv(workdir: Path) -> list[str]:
        return ["gs", "-q", "-dNODISPLAY", "-dBATCH", "-dNOPAUSE", "-dSAFER", str(workdir / "pages.pdf")]

    allocations, bound = scaled_allocations(ALLOCATIONS, scale)
    return SuiteProgram(
        name="gs",
        description=f"ghostscript -dNODISPLAY on a generated {PAGES}-page PDF, {OPERATIONS} text runs, "
        "polygons and curves a page in the six standard fonts",
        allocations=allocations,
        min_allocations=bound,
        tools=(Tool("gs", "ghostscript"),),
        write_inputs=write,
        argv=argv,
    )


PROGRAM = program()
