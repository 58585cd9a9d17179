"""`dtx-build`: evaluate, instantiate and build, leaving `result` links, like `nix-build`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from ..gc import add_root_link
from .common import (add_eval_flags, auto_args, make_evaluator, report_errors,
                     select_and_call)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dtx-build",
        description="Build the derivations an expression describes and link the results.")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="files to build ('-' reads standard input); default: ./default.dtx "
                        "or ./default.nix")
    add_eval_flags(p)
    p.add_argument("-o", "--out-link", default="result", metavar="NAME",
                   help="name of the symlink to the output (default: result)")
    p.add_argument("--no-out-link", action="store_true", help="do not create result links")
    p.add_argument("-j", "--max-jobs", type=int, default=1, metavar="N",
                   help="number of builds to run at once")
    p.add_argument("--cores", type=int, default=0, metavar="N",
                   help="cores each builder may use (NIX_BUILD_CORES; 0: all)")
    p.add_argument("-k", "--keep-going", action="store_true",
                   help="keep building what does not depend on a failed build")
    p.add_argument("-K", "--keep-failed", action="store_true",
                   help="keep the build directory of a failed build")
    p.add_argument("--max-silent-time", type=float, default=None, metavar="SECONDS",
                   help="fail a build that prints nothing for this long")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="fail a build that runs longer than this")
    p.add_argument("--check", action="store_true",
                   help="build again and compare with the existing outputs")
    p.add_argument("--dry-run", action="store_true", help="show what would be built")
    p.add_argument("-Q", "--no-build-output", action="store_true",
                   help="do not show the builders' output")
    p.add_argument("--quiet", action="store_true", help="print only the output paths")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return report_errors(lambda: _run(args), args)


def _run(args) -> int:
    from ..build import BuildOptions
    from ..scheduler import Progress, RealiseError, Scheduler
    from .instantiate import derivation_outputs_of, eval_sources

    state = make_evaluator(args)
    state.quiet = args.quiet  # no download progress from the fetchers either
    store = state.store
    opts = BuildOptions(cores=args.cores or os.cpu_count() or 1, keep_failed=args.keep_failed,
                        max_silent_time=args.max_silent_time, timeout=args.timeout,
                        check=args.check)
    progress = Progress(quiet=args.quiet, show_build_output=not args.no_build_output)
    scheduler = Scheduler(store, opts, jobs=args.max_jobs, keep_going=args.keep_going,
                          progress=progress)
    # What evaluation reads from derivation outputs is built with the same options, even on
    # --dry-run, as nix-build does; --check applies to the derivations asked for only.
    state.build_hook = Scheduler(store, dataclasses.replace(opts, check=False),
                                 jobs=args.max_jobs, keep_going=args.keep_going,
                                 progress=progress).realise
    wanted: list[tuple[str, str]] = []  # (drv path, output name)
    autoargs = auto_args(state, args)
    for root in eval_sources(state, args):
        for value in select_and_call(root, args, autoargs):
            wanted += derivation_outputs_of(value, autoargs)

    drvs = list(dict.fromkeys(d for d, _ in wanted))
    if args.dry_run:
        needed = scheduler.dry_run(drvs)
        if needed:
            head = ("this derivation would be built:" if len(needed) == 1 else
                    f"these {len(needed)} derivations would be built:")
            print("\n".join([head] + [f"  {d}" for d in needed]), file=sys.stderr)
        return 0
    try:
        scheduler.realise(drvs)
    except RealiseError as e:
        print(e.render(), file=sys.stderr)
        return e.exit_status()

    counter = 0
    for drv_path, output in wanted:
        path = store.read_derivation(drv_path).outputs[output].path
        if not args.no_out_link and not args.dry_run:
            counter += 1
            link = args.out_link + (f"-{counter}" if counter > 1 else "")
            if output != "out":
                link += f"-{output}"
            add_root_link(store, link, path)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
