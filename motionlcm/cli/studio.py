"""`motionlcm studio`: the local web studio (motionlcm/studio, docs/studio.md)."""

from __future__ import annotations

import argparse
import sys

from motionlcm.cli._common import Formatter, add_backend_options


def cmd_studio(args: argparse.Namespace) -> int:
    from motionlcm.generate import load_pipeline
    from motionlcm.studio.server import TEXT_CACHE, Studio, make_server

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port: must be in 0..65535, got {args.port}")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"motionlcm: warning: --host {args.host}: the studio is reachable from other machines; it has no "
              "authentication", file=sys.stderr)  # fmt: skip
    from pathlib import Path

    if args.onnx_dir is not None and len(args.model or []) > 1:
        raise ValueError("--onnx-dir: with one --model only (without it each model's graphs come from the cache)")
    pipes = {}
    for model in args.model or [None]:
        pipe = load_pipeline(model, args.device, args.backend, args.onnx_dir)
        if pipe.kind != "student":
            raise ValueError(f"--model {model}: the studio needs a student model folder, got a {pipe.kind} folder")
        pipe.set_fast_paths(pipe.fast_paths.replace(text_cache=TEXT_CACHE))
        name = Path(str(pipe.folder.path)).name
        pipes[name if name not in pipes else f"{name} ({len(pipes) + 1})"] = pipe
    studio = Studio(pipes, queue=args.queue)
    server = make_server(studio, args.host, args.port, quiet=not args.verbose)
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{server.server_address[1]}/"
    print(f"motionlcm studio: {url}  (Ctrl+C to stop)", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "studio",
        help="a local web page: type a prompt and watch the motion change as you type",
        formatter_class=Formatter,
        description="Serve the motion studio on this machine: a prompt box that regenerates about 150 ms after the "
        "last keystroke, a three.js viewer (orbit camera, play / pause / scrub / loop / speed, root trail, follow "
        "camera), seconds / steps / guidance / seed / model controls, a pelvis path drawn on the floor and "
        "draggable keyframe targets (motion control), a timeline lane of prompt blocks made as one take, takes to "
        "keep and compare, and BVH / NPY / JSON / MP4 / GIF downloads. Works offline: every script is served from "
        "the installed package. The HTTP API (/api/generate, /api/timeline, /api/export, /api/health, "
        "/api/openapi.json) is documented in docs/studio.md.",
    )
    p.add_argument(
        "--model",
        action="append",
        default=None,
        help="student model folder (default: the shipped model); repeat it to choose between models on the page",
    )
    p.add_argument("--port", type=int, default=8765, help="TCP port (0: any free port)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default loopback only; 0.0.0.0 exposes the studio to the network and warns)",
    )
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--queue", type=int, default=4, help="generations that may wait while one runs; more get HTTP 503")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    add_backend_options(p, "generate")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    p.set_defaults(func=cmd_studio)
