"""`python -m cryptosite.serve [daphne options] cryptosite.asgi:application`: daphne, with every
WebSocket's unsent backlog bounded and the contract's 1008/1009 closes sent as they are
(streaming.transport). Takes exactly daphne's options."""

import sys

from daphne.cli import CommandLineInterface

from streaming.transport import install


def main(argv: list[str] | None = None) -> None:
    install()
    CommandLineInterface().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
