"""`python -m cryptosite.serve [-b HOST] [-p PORT] [--workers N] [--server uvicorn|daphne]`: the
web server, HTTP and WebSocket, as `make run`, compose and the tests start it.

uvicorn (httptools, uvloop) by default, with WEB_CONCURRENCY worker processes sharing one
listening socket; each WebSocket's unsent backlog is bounded (serving.uvicorn_ws).
`--server daphne` (or WEB_SERVER=daphne) runs daphne instead, one process, with the same
guarantees (serving.daphne_ws, serving.daphne_http); options it does not know here are passed on to daphne.
"""

import argparse
import os
import sys

APP = "cryptosite.asgi:application"


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m cryptosite.serve", description=__doc__.splitlines()[0])
    parser.add_argument("-b", "--bind", "--host", dest="host", default=None, help="default: HOST, else 127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=None, help="server processes (default: WEB_CONCURRENCY)")
    parser.add_argument("--server", choices=("uvicorn", "daphne"), default=None, help="default: WEB_SERVER, else uvicorn")
    parser.add_argument("app", nargs="?", default=APP)
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> None:
    args, rest = parse(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cryptosite.settings")
    import django

    django.setup(set_prefix=False)
    from django.conf import settings
    from django.core.management import call_command

    # Settings are checked before anything is served (a zero-second rate window, a bad proxy list).
    call_command("check")
    host = args.host or settings.HOST

    server = args.server or settings.WEB_SERVER
    if server == "daphne":
        from daphne.cli import CommandLineInterface

        from serving.daphne_http import install as bound_request_bodies
        from serving.daphne_ws import install

        install()
        bound_request_bodies()
        CommandLineInterface().run(["-b", host, "-p", str(args.port), *rest, args.app])
        return
    if rest:
        sys.exit(f"unknown options for uvicorn: {' '.join(rest)}")
    import uvicorn

    from serving.uvicorn_ws import BoundedWebSocketProtocol

    uvicorn.run(
        args.app,
        host=host,
        port=args.port,
        workers=args.workers or settings.WEB_CONCURRENCY,
        loop="uvloop",
        http="httptools",
        ws=BoundedWebSocketProtocol,
        ws_max_size=max(1 << 20, 4 * settings.WS_MAX_MESSAGE_BYTES),
        ws_per_message_deflate=False,
        lifespan="off",
        proxy_headers=False,  # TRUSTED_PROXIES decides which X-Forwarded-For hop is the client (core.clientip)
        server_header=False,
        access_log=False,
        backlog=4096,
        log_level=settings.LOG_LEVEL.lower(),
    )


if __name__ == "__main__":
    main()
