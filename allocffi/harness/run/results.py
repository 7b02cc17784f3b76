"""What ``allocffi run`` reports: one row per (program, allocator), as text, JSON, CSV, Markdown, PNG.

A row summarises the repeats of one program under one allocator: medians (robust to one noisy
repeat) with the min and max of the wall time, the ratio to the baseline allocator with its
significance (``significance.compare_samples``, the statistics of ``allocffi compare``), and every
repeat's own figures and RSS curve in ``samples``. A program with a score (its own figure of merit,
score.py) gets the same: median, min, max, the ratio to the baseline (> 1 is better, whichever
direction the score runs) and a verdict. A row fails when any of its runs failed: a non-zero exit,
a timeout, an allocator that did not serve every process, a missing score, a failed driver, or
(suites) an allocation count below the program's bound. Likely misuse (misuse.py) is a warning.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import shlex
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from allocffi.harness.core import machine, outputs, record, significance, units
from allocffi.harness.core.measure import LAUNCHER, MEASURED_BY_LAUNCHER, MEASURED_BY_WAIT4
from allocffi.harness.core.output_tail import DEFAULT_LIMIT as OUTPUT_KEPT
from allocffi.harness.run import misuse, preload
from allocffi.harness.run.programs import Program, RunOptions, Sample


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def _median_int(values: Sequence[int]) -> int:
    return int(statistics.median(values)) if values else 0


@dataclass
class Row:
    """One (program, allocator) over its repeats."""

    program: str
    allocator: str
    library: str
    command: str
    repeats: int
    wall_s: float  # median
    wall_s_min: float
    wall_s_max: float
    user_s: float  # medians from here on
    sys_s: float
    max_rss_bytes: int  # ru_maxrss: the largest single process of the tree
    peak_tree_rss_bytes: int  # the sampled peak of the whole tree (0 without sampling)
    minor_faults: int
    major_faults: int
    voluntary_switches: int
    involuntary_switches: int
    exit_code: int  # the first non-zero exit status among the repeats, else 0
    timed_out: bool
    preload_verified: bool
    python_malloc: bool
    failed: bool
    problems: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # median of user + sys: what a busy machine disturbs least
    speedup_vs_baseline: float | None = None  # baseline median wall / this median (> 1: faster)
    verdict: dict[str, Any] | None = None  # wall time against the baseline allocator
    cpu_speedup_vs_baseline: float | None = None  # the same for cpu_s
    cpu_verdict: dict[str, Any] | None = None
    allocations_counted: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)
    score: float | None = None  # median of the repeats' scores (programs with a score only)
    score_min: float | None = None
    score_max: float | None = None
    score_unit: str = ""
    score_higher_is_better: bool | None = None
    score_vs_baseline: float | None = None  # how many times better than the baseline (> 1: better)
    score_verdict: dict[str, Any] | None = None  # labels "better" / "worse" / no change / too few
    warnings: list[str] = field(default_factory=list)  # likely misuse: not failures

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["preload_check"] = preload.CHECK_METHOD
        return data


def _sample_dict(sample: Sample) -> dict[str, Any]:
    run = sample.run
    return {
        "repeat": sample.repeat,
        "wall_s": run.wall_s,
        "user_s": run.user_s,
        "sys_s": run.sys_s,
        "max_rss_bytes": run.max_rss_bytes,
        "peak_tree_rss_bytes": run.peak_sampled_rss_bytes,
        "minor_faults": run.minor_faults,
        "major_faults": run.major_faults,
        "voluntary_switches": run.voluntary_switches,
        "involuntary_switches": run.involuntary_switches,
        "exit_code": run.exit_code,
        "timed_out": run.timed_out,
        "preload_verified": sample.verification.verified,
        "probed_processes": sample.verification.processes,
        "problems": sample.problems,
        "sampler_cpu_s": round(run.sampler_cpu_s, 6),
        "score": sample.score,
        "warnings": sample.warnings,
        "rss_curve": [[round(t, 3), rss] for t, rss in run.rss_curve],
    }


def summarize(program: Program, allocator: preload.AllocatorChoice, samples: Sequence[Sample]) -> Row:
    runs = [s.run for s in samples]
    walls = [r.wall_s for r in runs]
    problems = list(program.problems)
    for s in samples:
        problems.extend(f"repeat {s.repeat + 1}: {p}" for p in s.problems)
    exit_code = next((r.exit_code for r in runs if r.exit_code != 0), 0)
    warnings = [f"repeat {s.repeat + 1}: {w}" for s in samples for w in s.warnings]
    for i in misuse.outlier_repeats(walls):
        warnings.append(
            f"repeat {samples[i].repeat + 1}: likely misuse: {walls[i]:.3f} s, under 1/{misuse.FAR_FASTER:g} "
            "of the other repeats' median"
        )
    scores = [s.score for s in samples if s.score is not None]
    row = Row(
        program=program.name,
        allocator=allocator.name,
        library=allocator.library,
        command=program.command,
        repeats=len(runs),
        wall_s=_median(walls),
        wall_s_min=min(walls, default=0.0),
        wall_s_max=max(walls, default=0.0),
        user_s=_median([r.user_s for r in runs]),
        sys_s=_median([r.sys_s for r in runs]),
        cpu_s=_median([r.user_s + r.sys_s for r in runs]),
        max_rss_bytes=_median_int([r.max_rss_bytes for r in runs]),
        peak_tree_rss_bytes=_median_int([r.peak_sampled_rss_bytes for r in runs]),
        minor_faults=_median_int([r.minor_faults for r in runs]),
        major_faults=_median_int([r.major_faults for r in runs]),
        voluntary_switches=_median_int([r.voluntary_switches for r in runs]),
        involuntary_switches=_median_int([r.involuntary_switches for r in runs]),
        exit_code=exit_code,
        timed_out=any(r.timed_out for r in runs),
        preload_verified=bool(samples) and all(s.verification.verified for s in samples),
        python_malloc=program.python_malloc,
        failed=bool(problems) or not samples,
        problems=problems,
        allocations_counted=program.allocations_counted,
        samples=[_sample_dict(s) for s in samples],
        warnings=warnings,
    )
    if program.score is not None:
        row.score_unit = program.score.unit
        row.score_higher_is_better = program.score.higher_is_better
        if scores:
            row.score, row.score_min, row.score_max = _median(scores), min(scores), max(scores)
    return row


def _verdict(baseline: str, old: Sequence[float], new: Sequence[float]) -> dict[str, Any]:
    verdict = significance.compare_samples(old, new)
    return {
        "baseline": baseline,
        "ratio": verdict.ratio,
        "low": verdict.low,
        "high": verdict.high,
        "p_value": verdict.p_value,
        "confidence": verdict.confidence,
        "label": verdict.label,
        "significant": verdict.significant,
        "describe": verdict.describe(),
    }


BETTER, WORSE = "better", "worse"


def _score_verdict(
    baseline: str, old: Sequence[float], new: Sequence[float], higher_is_better: bool
) -> dict[str, Any]:
    """The verdict on a score, turned so that "better" follows the score's direction.

    compare_samples judges a lower-is-better quantity; a higher-is-better score is judged with the
    samples swapped (its documented symmetry). ``ratio`` is then how many times better (> 1).
    """
    v = significance.compare_samples(new, old) if higher_is_better else significance.compare_samples(old, new)
    label = {significance.FASTER: BETTER, significance.SLOWER: WORSE}.get(v.label, v.label)
    factor, low, high = _inverse(v.ratio), _inverse(v.high), _inverse(v.low)
    interval = f"[{low:.2f}-{high:.2f}]"
    p = f"p={v.p_value:.3f}" if v.p_value >= 0.001 else "p<0.001"
    if label in (BETTER, WORSE):
        times = factor if label == BETTER else _inverse(factor)
        describe = f"{times:.2f}x {label} ({factor:.2f}x {interval}), {p}"
    else:
        describe = f"{label} ({factor:.2f}x {interval}, {p})"
    return {
        "baseline": baseline,
        "ratio": factor,
        "low": low,
        "high": high,
        "p_value": v.p_value,
        "confidence": v.confidence,
        "label": label,
        "significant": v.significant,
        "higher_is_better": higher_is_better,
        "describe": describe,
    }


def _inverse(x: float) -> float:
    return float("inf") if x == 0 else 1 / x


def _cpu(sample: dict[str, Any]) -> float:
    return float(sample["user_s"]) + float(sample["sys_s"])


def fill_baseline(rows: Sequence[Row], baseline: str) -> None:
    """Speedups and verdicts (wall time, and user+sys CPU time) per program against ``baseline``."""
    base = {r.program: r for r in rows if r.allocator == baseline}
    for row in rows:
        ref = base.get(row.program)
        if ref is None or not row.samples or not ref.samples:
            continue
        row.speedup_vs_baseline = ref.wall_s / row.wall_s if row.wall_s > 0 else None
        row.cpu_speedup_vs_baseline = ref.cpu_s / row.cpu_s if row.cpu_s > 0 else None
        _fill_score(row, ref, baseline)
        if row is ref:
            continue
        row.verdict = _verdict(
            baseline, [s["wall_s"] for s in ref.samples], [s["wall_s"] for s in row.samples]
        )
        row.cpu_verdict = _verdict(baseline, [_cpu(s) for s in ref.samples], [_cpu(s) for s in row.samples])


def _fill_score(row: Row, ref: Row, baseline: str) -> None:
    """The score's ratio (> 1 is better) and verdict against the baseline row."""
    old = [s["score"] for s in ref.samples if s["score"] is not None]
    new = [s["score"] for s in row.samples if s["score"] is not None]
    if row.score_higher_is_better is None or not old or not new or ref.score is None or row.score is None:
        return
    if row.score_higher_is_better:
        row.score_vs_baseline = row.score / ref.score if ref.score > 0 else None
    else:
        row.score_vs_baseline = ref.score / row.score if row.score > 0 else None
    if row is not ref:
        row.score_verdict = _score_verdict(baseline, old, new, row.score_higher_is_better)


@dataclass
class RunReport:
    """Everything one ``allocffi run`` measured, in run order."""

    opts: RunOptions
    allocators: list[preload.AllocatorChoice]
    skipped: dict[str, str]
    programs: list[Program]
    date: str
    load_average_start: tuple[float, float, float]
    started: float
    samples: list[Sample] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    partial: bool = False
    load_average_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    elapsed_s: float = 0.0

    @classmethod
    def start(
        cls,
        opts: RunOptions,
        allocators: list[preload.AllocatorChoice],
        skipped: dict[str, str],
        programs: list[Program],
    ) -> RunReport:
        return cls(
            opts=opts,
            allocators=allocators,
            skipped=skipped,
            programs=programs,
            date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            load_average_start=os.getloadavg(),
            started=time.perf_counter(),
        )

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def finish(self) -> None:
        self.load_average_end = os.getloadavg()
        self.elapsed_s = time.perf_counter() - self.started
        self.rows = []
        for program in self.programs:
            for allocator in self.allocators:
                mine = [
                    s for s in self.samples if s.program == program.name and s.allocator == allocator.name
                ]
                if mine or not self.partial:
                    self.rows.append(summarize(program, allocator, mine))
        fill_baseline(self.rows, self.opts.baseline or preload.BASELINE)

    def failed_rows(self) -> list[Row]:
        return [r for r in self.rows if r.failed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": "allocffi run",
            "command": self.opts.invocation,
            "date": self.date,
            "partial": self.partial,
            "elapsed_s": self.elapsed_s,
            "load_average_start": list(self.load_average_start),
            "load_average_end": list(self.load_average_end),
            "machine": machine.describe(),
            "repeat": self.opts.repeat,
            "baseline_allocator": self.opts.baseline,
            "suite": self.opts.suite,
            "python_malloc": self.opts.python_malloc,
            "sampling_interval_s": 0.01 if self.opts.sample else None,
            "measured_by": MEASURED_BY_LAUNCHER if os.access(LAUNCHER, os.X_OK) else MEASURED_BY_WAIT4,
            "preload_check": preload.CHECK_METHOD,
            "skipped_allocators": self.skipped,
            "programs": [
                {
                    "name": p.name,
                    "command": p.command,
                    "description": p.description,
                    "env": p.env,
                    "allocations_counted": p.allocations_counted,
                    "allocations_stated": p.suite_program.allocations if p.suite_program else None,
                    "min_allocations": p.suite_program.min_allocations if p.suite_program else None,
                    "score": dataclasses.asdict(p.score) if p.score else None,
                    "stdin": p.stdin or "/dev/null",
                    "driver": [shlex.join(c) for c in p.driver.commands] if p.driver else None,
                }
                for p in self.programs
            ],
            "output_kept_bytes": OUTPUT_KEPT,
            "rows": [r.to_dict() for r in self.rows],
        }


COMMAND = "run"  # the command's name in its results record, and the key of its details there


def _metrics(row: Row) -> dict[str, record.Metric]:
    """The quantities of a row as raw samples: wall and CPU time, peak RSS, faults, the score."""
    samples = row.samples
    if not samples:
        return {}
    metrics = {
        "wall": record.Metric([float(s["wall_s"]) for s in samples], "s"),
        "cpu": record.Metric([_cpu(s) for s in samples], "s"),
        "max_rss": record.Metric([float(s["max_rss_bytes"]) for s in samples], "B"),
        "minor_faults": record.Metric([float(s["minor_faults"]) for s in samples], "faults"),
    }
    scores = [float(s["score"]) for s in samples if s["score"] is not None]
    if scores and row.score_higher_is_better is not None:
        better = record.HIGHER if row.score_higher_is_better else record.LOWER
        metrics["score"] = record.Metric(scores, row.score_unit or "points", better)
    return metrics


def to_record(report: RunReport) -> record.Record:
    """The results record: one cell per (program, allocator) with its measured samples; the row as
    this command shows it (medians, its problems, every repeat's figures and RSS curve) under
    details["run"], and the programs and how they were run under the record's details["run"]."""
    everything = report.to_dict()
    cells = [
        record.Cell(row.program, row.allocator, _metrics(row), details={COMMAND: row.to_dict()})
        for row in report.rows
        if row.samples
    ]
    shared = {
        k: v for k, v in everything.items() if k not in ("schema", "command", "date", "machine", "rows")
    }
    saved = record.Record(
        COMMAND,
        shlex.split(report.opts.invocation),
        {"repeat": report.opts.repeat, "suite": report.opts.suite, "baseline": report.opts.baseline},
        datetime.now().astimezone().isoformat(timespec="seconds"),
        everything["machine"],
        cells,
        baseline_allocator=report.opts.baseline or preload.BASELINE,
        load={
            "before": {"load_average": list(report.load_average_start), "cpus": os.cpu_count() or 0},
            "after": {"load_average": list(report.load_average_end), "cpus": os.cpu_count() or 0},
        },
        warnings=[f"{r.program}/{r.allocator}: {w}" for r in report.rows for w in r.warnings],
        partial=report.partial,
        details={COMMAND: shared},
    )
    record.judge(saved)
    return saved


# --------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------


def progress_line(sample: Sample, repeats: int) -> str:
    run = sample.run
    status = "ok" if sample.ok else "FAILED: " + "; ".join(sample.problems)
    score = f", score {_number(sample.score)}" if sample.score is not None else ""
    warned = "".join(f" (warning: {w})" for w in sample.warnings)
    return (
        f"repeat {sample.repeat + 1}/{repeats}  {sample.program}  {sample.allocator}: "
        f"{run.wall_s:.2f} s, max RSS {units.size(run.max_rss_bytes)}{score}, {status}{warned}"
    )


def _number(x: float) -> str:
    """A score as its program would print it: 3 significant digits at least, no exponent."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _speedup(value: float | None, verdict: dict[str, Any] | None) -> str:
    if value is None:
        return "-"
    text = f"{value:.2f}x"
    if verdict is not None and not verdict["significant"]:
        text += " (too few)" if verdict["label"] == significance.TOO_FEW else " (noise)"
    return text


HEADER = [
    "program", "allocator", "wall s (min-max)", "vs base", "user s", "sys s", "cpu vs base", "max RSS",
    "tree peak", "minor faults", "status",
]  # fmt: skip


SCORE_HEADER = ["score (min-max)", "score vs base"]


def _has_scores(report: RunReport) -> bool:
    return any(p.score is not None for p in report.programs)


def header(report: RunReport) -> list[str]:
    """The table's columns: the score's two after the wall time's when a program has a score."""
    return [*HEADER[:4], *SCORE_HEADER, *HEADER[4:]] if _has_scores(report) else list(HEADER)


def _score_cells(r: Row) -> list[str]:
    if r.score is None or r.score_min is None or r.score_max is None:
        return ["-", "-"]
    unit = f" {r.score_unit}" if r.score_unit else ""
    return [
        f"{_number(r.score)}{unit} ({_number(r.score_min)}-{_number(r.score_max)})",
        _speedup(r.score_vs_baseline, r.score_verdict),
    ]


def table_rows(report: RunReport) -> list[list[str]]:
    lines = []
    scored = _has_scores(report)
    for r in report.rows:
        status = "ok" if not r.failed else "FAILED"
        if not r.samples:
            status = "not run"
        elif r.warnings:
            status += ", warned"
        lines.append(
            [
                r.program,
                r.allocator,
                f"{r.wall_s:.2f} ({r.wall_s_min:.2f}-{r.wall_s_max:.2f})",
                _speedup(r.speedup_vs_baseline, r.verdict),
                *(_score_cells(r) if scored else []),
                f"{r.user_s:.2f}",
                f"{r.sys_s:.2f}",
                _speedup(r.cpu_speedup_vs_baseline, r.cpu_verdict),
                units.size(r.max_rss_bytes),
                units.size(r.peak_tree_rss_bytes) if r.peak_tree_rss_bytes else "-",
                f"{r.minor_faults:,}",
                status,
            ]
        )
    return lines


def _footer(report: RunReport) -> list[str]:
    la0, la1 = report.load_average_start, report.load_average_end
    lines = [
        f"{report.opts.repeat} repeats interleaved across allocators; medians; 'vs base' = "
        f"{report.opts.baseline} median wall / this median (> 1 is faster; '(noise)' when the "
        "difference does not survive the Mann-Whitney test and the 5% noise floor; '(too few)': "
        "too few repeats for the test to ever succeed, 4 or more are needed); 'cpu vs base' the "
        "same for user+sys time, which a busy machine disturbs less than wall time.",
        f"load average {la0[0]:.2f} at start, {la1[0]:.2f} at end; {report.elapsed_s:.0f} s in all.",
    ]
    if any(p.python_malloc for p in report.programs):
        lines.append(
            "PYTHONMALLOC=malloc was set for: "
            + ", ".join(p.name for p in report.programs if p.python_malloc)
            + " (CPython's objects go through the allocator under test)."
        )
    counted = [p for p in report.programs if p.allocations_counted is not None]
    if counted:
        lines.append(
            "allocation calls (malloc+calloc+realloc, counted under glibc): "
            + ", ".join(f"{p.name} {p.allocations_counted:,}" for p in counted)
        )
    walls = sum(s.run.wall_s for s in report.samples)
    if walls > 0 and report.opts.sample:
        cpu = sum(s.run.sampler_cpu_s for s in report.samples)
        lines.append(
            f"RSS sampler: {1000 * cpu / walls:.1f} ms of CPU per second of run, in allocffi's own "
            "process (a core the program shares on a busy machine)."
        )
    scored = [p for p in report.programs if p.score is not None]
    if scored:
        lines.append(
            "score: the program's own figure, read from its output: "
            + "; ".join(
                f"{p.name} {p.score.unit or 'score'} "
                f"({'higher' if p.score.higher_is_better else 'lower'} is better, {p.score.where})"
                for p in scored
                if p.score is not None
            )
            + "; 'score vs base' = how many times better than the baseline's median (> 1 is better), "
            "with the same test and noise floor as time."
        )
    for r in report.rows:
        lines += [f"WARNING {r.program} under {r.allocator}: {w}" for w in r.warnings]
    if report.partial:
        lines.append("PARTIAL: interrupted; only the completed runs are reported.")
    return lines


def text_tables(report: RunReport) -> str:
    rows = table_rows(report)
    columns = header(report)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(columns)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*columns), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join([*lines, "", *_footer(report)]) + "\n"


def markdown(report: RunReport) -> str:
    data = report.to_dict()
    out = [
        "# allocffi run" + (" (PARTIAL)" if report.partial else ""),
        "",
        f"`{report.opts.invocation}`, {report.date}",
        "",
        f"Machine: {machine.one_line(data['machine'])}; {machine.libraries_line(data['machine'])}.",
        "",
        "| " + " | ".join(header(report)) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(header(report)) - 3) + ["---"]) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in table_rows(report)]
    out += ["", *_footer(report), ""]
    out += ["## Programs", ""]
    for p in report.programs:
        extra = f"; stdin {p.stdin}" if p.stdin else ""
        if p.driver is not None:
            extra += "; driven by " + "; ".join(f"`{shlex.join(c)}`" for c in p.driver.commands)
        if p.score is not None:
            extra += f"; score `{p.score.pattern}` in {p.score.where}"
        out.append(f"- **{p.name}**: {p.description or 'the given command'} (`{p.command}`{extra})")
    failed = report.failed_rows()
    if failed:
        out += ["", "## Failures", ""]
        out += [f"- {r.program} under {r.allocator}: {'; '.join(r.problems) or 'no run'}" for r in failed]
    out += ["", f"Preload check: {preload.CHECK_METHOD}.", ""]
    return "\n".join(out)


def write_csv(report: RunReport, path: str) -> None:
    fields = [
        "program", "allocator", "repeats", "wall_s", "wall_s_min", "wall_s_max", "user_s", "sys_s",
        "max_rss_bytes", "peak_tree_rss_bytes", "minor_faults", "major_faults", "voluntary_switches",
        "involuntary_switches", "exit_code", "timed_out", "preload_verified", "python_malloc",
        "speedup_vs_baseline", "score", "score_min", "score_max", "score_unit", "score_higher_is_better",
        "score_vs_baseline", "score_verdict", "failed", "warnings",
    ]  # fmt: skip
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(fields)
    for row in report.rows:
        values = {**row.__dict__, "warnings": "; ".join(row.warnings)}
        values["score_verdict"] = row.score_verdict["label"] if row.score_verdict else None
        writer.writerow([values[name] for name in fields])
    outputs.write_atomically(path, text.getvalue(), "--csv")


def write_outputs(report: RunReport, opts: RunOptions) -> None:
    if opts.json_path:
        record.write(to_record(report), opts.json_path)
    if opts.csv_path:
        write_csv(report, opts.csv_path)
    if opts.markdown_path:
        outputs.write_atomically(opts.markdown_path, markdown(report), "--markdown")
    if opts.plot_path:
        write_plot(report, opts.plot_path)


def _median_curve(row: Row) -> list[list[float]]:
    """The RSS curve of the repeat whose wall time is the median one."""
    good = [s for s in row.samples if s["rss_curve"]]
    if not good:
        return []
    good.sort(key=lambda s: s["wall_s"])
    return list(good[len(good) // 2]["rss_curve"])


def _legend(allocator: str, row: Row | None) -> str:
    if row is None:
        return allocator
    score = ""
    if row.score is not None:
        score = f", {_number(row.score)} {row.score_unit}".rstrip()
        if row.score_vs_baseline is not None and row.score_verdict is not None:
            score += f" {row.score_verdict['label']}" if row.score_verdict["significant"] else " (noise)"
    return f"{allocator} ({row.wall_s:.2f} s{score})"


def write_plot(report: RunReport, path: str) -> None:
    """One chart per program: the RSS curve (median-time repeat) of every allocator over time."""
    plt = outputs.require_matplotlib()
    programs = [p.name for p in report.programs]
    cols = min(2, len(programs))
    nrows = (len(programs) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6.5 * cols, 3.8 * nrows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(programs):
        ax = axes[i // cols][i % cols]
        for j, allocator in enumerate(a.name for a in report.allocators):
            row = next((r for r in report.rows if r.program == name and r.allocator == allocator), None)
            curve = _median_curve(row) if row else []
            if curve:
                ax.plot(
                    [t for t, _ in curve],
                    [rss / 2**20 for _, rss in curve],
                    label=_legend(allocator, row),
                    color=cmap(j % 10),
                    linewidth=1.2,
                )
        ax.set_title(name)
        ax.set_xlabel("seconds")
        ax.set_ylabel("RSS of the process tree (MiB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for k in range(len(programs), nrows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(f"allocffi run: RSS every 10 ms, median-time repeat, {report.date}")
    fig.tight_layout()
    outputs.save_figure(fig, path, dpi=110)
    plt.close(fig)
