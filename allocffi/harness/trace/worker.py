"""The child process of ``allocffi trace replay``: one replay, one JSON line.

    python -m allocffi.harness.trace.worker --trace PATH --allocator A --touch ends --mode serial

Prints the fields of ``af_trace_replay_result`` (``stats`` nested) plus ``process_peak_rss_bytes``
and exits 0, or prints ``{"error": ..., "code": N}`` and exits 1 when the engine refuses. Like
``allocffi.harness.bench.worker`` it does nothing else between loading the library and printing, so every
(allocator, repeat) is measured in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from allocffi.harness.bench.catalog import TOUCH_POLICIES
from allocffi.harness.bench.worker import process_peak_rss
from allocffi.harness.trace.native import MODES, TraceError, replay_once

EXIT_ENGINE_ERROR = 1
_CODE = re.compile(r"^\[(\d+)\] ")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m allocffi.harness.trace.worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--trace", required=True)
    parser.add_argument("--allocator", required=True)
    parser.add_argument("--touch", choices=TOUCH_POLICIES, default="ends")
    parser.add_argument("--mode", choices=MODES, default="serial")
    args = parser.parse_args(argv)
    try:
        record = replay_once(args.trace, args.allocator, args.touch, args.mode)
    except TraceError as exc:
        text = str(exc)
        match = _CODE.match(text)
        print(
            json.dumps(
                {"error": text[match.end() :] if match else text, "code": int(match.group(1)) if match else 0}
            )
        )
        return EXIT_ENGINE_ERROR
    record["process_peak_rss_bytes"] = process_peak_rss()
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
