"""Run the benchmarks and write bench/results/:

    python -m bench [sentiment market api stream ingest breadth indicators alerts admin capacity storage soak]

Each benchmark writes bench/results/<name>.md; latest.md gathers all of them. `soak` (ten minutes)
runs only when named."""

import sys
import time
from importlib import import_module

from .common import RESULTS, Scratch, machine, raise_fd_limit

ALL = ("sentiment", "market", "api", "stream", "ingest", "breadth", "indicators", "alerts", "admin", "capacity", "storage")
OPTIONAL = ("soak",)


def main(names: list[str]) -> None:
    raise_fd_limit()
    scratch = Scratch()
    scratch.setup_django()
    RESULTS.mkdir(exist_ok=True)
    try:
        for name in names or ALL:
            print(f"== {name}", flush=True)
            started = time.time()
            report = import_module(f"bench.bench_{name}").run(scratch)
            section = report.markdown() + f"\n_{machine()}; took {time.time() - started:.0f} s_\n"
            (RESULTS / f"{name}.md").write_text(section)
    finally:
        scratch.close()
    sections = [(RESULTS / f"{n}.md").read_text() for n in ALL + OPTIONAL if (RESULTS / f"{n}.md").exists()]
    (RESULTS / "latest.md").write_text("## Benchmark results\n\n" + "\n".join(sections))
    print(f"wrote {RESULTS / 'latest.md'}")


if __name__ == "__main__":
    main(sys.argv[1:])
