"""The yardstick of `python -m harness bench`: every path of a Case on a fresh model, plain Keras.

What a person would write without the harness: for each (path, mode) that the harness runs,
build a new model from the Case, compile it for that mode, make the one call, read the number.
It is the harness's own runner (harness.impls.paths.run_case, same Flavor: same modes,
compute-loss variants, unsupported reasons, and numbers read the same way) with the model reuse
policy "path": a new model for every call (the predictions, the regularization pass, each path,
the gradient), and the SGD step on one more new model compiled with SGD(LEARNING_RATE)
(paths.sgd_update; the harness sets the rate on a model it compiled already: paths.sgd_step).
So the two runs make the same calls by construction and differ only in what is kept between
them; nothing is shared between paths except the process (imports stay warm, as in the
harness's worker) and `clear_session()` once per case.

    python -m harness.bench_naive --impl NAME

speaks the worker protocol of harness.worker (header, then one result line per Case line), so
the benchmark drives both through the same driver.Worker pipes. Only the Keras 3 and tf-keras
adapters (a `FLAVOR`) have a naive twin.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from harness.impls import paths


def main(argv: list[str] | None = None) -> int:
    """The worker protocol (harness.worker) with the adapter's flavor run with reuse "path"."""
    from harness import spec, worker

    parser = argparse.ArgumentParser(prog="python -m harness.bench_naive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", required=True)
    args = parser.parse_args(argv)
    out = worker._claim_stdout()
    try:
        adapter = worker.load_adapter(args.impl)
        flavor = dataclasses.replace(adapter.FLAVOR, reuse="path")
        header = worker._header(args.impl, adapter.versions())
    except Exception as exc:  # noqa: BLE001 - reported like the worker's import errors
        worker._write(out, worker._header(args.impl, {}, f"{type(exc).__name__}: {exc}"))
        return worker.IMPORT_ERROR_EXIT
    worker._write(out, header)
    for number, line in enumerate(sys.stdin, start=1):
        if line.strip():
            case = spec.loads(line, source=f"<stdin line {number}>")
            record = paths.run_case(flavor, case).to_json()
            json.dumps(record, allow_nan=False)
            worker._write(out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
