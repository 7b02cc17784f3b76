"""perl building, sorting and pruning a hash of 250k entries (each an array with a nested hash)."""

from __future__ import annotations

from pathlib import Path

from allocffi.harness.run.suite import SuiteProgram, Tool

ENTRIES = 250_000

SCRIPT = f"""\
use strict; use warnings;
my %h; my $seed = 12345;
for my $i (1 .. {ENTRIES}) {{
  $seed = ($seed * 1103515245 + 12345) % 2147483648;
  $h{{"key-$seed-$i"}} = [$i, "v$i", {{ n => $i }}];
}}
my $total = 0;
$total += $h{{$_}}[0] for sort keys %h;
delete $h{{$_}} for grep {{ /7$/ }} keys %h;
print scalar(keys %h), " $total\\n";
"""


def _write(workdir: Path) -> None:
    (workdir / "hash.pl").write_text(SCRIPT)


def _argv(workdir: Path) -> list[str]:
    return ["perl", str(workdir / "hash.pl")]


PROGRAM = SuiteProgram(
    name="perl",
    description=f"perl: a hash of {ENTRIES:,} keys, each an array with a nested hash; sort the keys, "
    "delete a tenth",
    allocations=1_500_000,
    min_allocations=600_000,
    tools=(Tool("perl", "perl"),),
    write_inputs=_write,
    argv=_argv,
)
