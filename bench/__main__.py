"""Run the benchmarks and write bench/results/latest.md: python -m bench [market api stream sentiment admin]"""

import sys
import time

from .common import RESULTS, Scratch, machine, raise_fd_limit

ALL = ("sentiment", "market", "api", "stream", "admin")


def main(names: list[str]) -> None:
    raise_fd_limit()
    scratch = Scratch()
    scratch.setup_django()
    from importlib import import_module

    sections = []
    try:
        for name in names or ALL:
            print(f"== {name}", flush=True)
            started = time.time()
            report = import_module(f"bench.bench_{name}").run(scratch)
            sections.append(report.markdown() + f"\n_{time.time() - started:.0f} s_\n")
    finally:
        scratch.close()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "latest.md"
    out.write_text(f"## Benchmark results\n\nMachine: {machine()}.\n\n" + "\n".join(sections))
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
