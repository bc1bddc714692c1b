#!/usr/bin/python3
"""Minimal RTSP server for simulated cameras (GStreamer GstRtspServer, Debian python3-gi).

Each mount point re-serves an RTP/H.264 stream that arrives on a local UDP port (fed by ffmpeg):

    /usr/bin/python3 scripts/rtsp-server.py --port 8554 --mount cam1=5000 --mount cam2=5002

Binds 127.0.0.1 unless --host says otherwise, RTP over TCP (interleaved) only. `--auth
digest:USER:PASSWORD` (or basic:...) makes every mount require those credentials, as real cameras do. A mount's media is
shared by all clients of that mount (one udpsrc per mount). Prints one line "READY <port>" on stdout
when listening; exits 0 on SIGINT/SIGTERM. Errors go to stderr and exit 2.

The RTP is depayloaded and re-payloaded without h264parse: `h264parse config-interval=-1` was seen
corrupting multi-slice I-frames; SPS/PPS travel in-band instead (the sender repeats them before
every keyframe, so a client that joins mid-stream decodes from the next keyframe).
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def parse_mount(text: str) -> tuple[str, int]:
    name, sep, port = text.partition("=")
    name = name.strip("/")
    if not sep or not name or not port.isdigit() or not (1 <= int(port) <= 65535):
        raise argparse.ArgumentTypeError(f'bad --mount "{text}": expected PATH=UDP_PORT, e.g. cam1=5000')
    if not all(c.isalnum() or c in "-_/." for c in name):
        raise argparse.ArgumentTypeError(f'bad --mount path "{name}": use letters, digits, "-", "_", ".", "/"')
    return name, int(port)


def parse_auth(text: str) -> tuple[str, str, str]:
    method, _, rest = text.partition(":")
    user, sep, password = rest.partition(":")
    if method not in ("basic", "digest") or not sep or not user:
        raise argparse.ArgumentTypeError(f'bad --auth "{method}:...": expected basic|digest:USER:PASSWORD')
    return method, user, password


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--mount", type=parse_mount, action="append", required=True, help="PATH=UDP_PORT (repeatable)")
    ap.add_argument("--auth", type=parse_auth, help="basic|digest:USER:PASSWORD")
    args = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    # One thread per client: a DESCRIBE waits (blocking its thread) until the mount's first keyframe
    # brings SPS/PPS for the SDP; with the default single thread, clients of 16 mounts queued behind
    # each other for a GOP each.
    server.get_thread_pool().set_max_threads(64)
    if args.auth:
        method, user, password = args.auth
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "camera-user")
        if method == "digest":
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(user, password, token)
        else:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
    mounts = server.get_mount_points()
    seen = set()
    for name, udp_port in args.mount:
        if name in seen:
            print(f'duplicate --mount path "{name}"', file=sys.stderr)
            return 2
        seen.add(name)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f"( udpsrc address=127.0.0.1 port={udp_port} buffer-size=4194304 "
            'caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96" '
            "! rtph264depay ! rtph264pay name=pay0 pt=96 mtu=1400 )"
        )
        factory.set_shared(True)
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
        if args.auth:
            factory.add_role_from_structure(Gst.Structure.new_from_string(
                "camera-user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"))
        mounts.add_factory("/" + name, factory)

    try:
        source_id = server.attach(None)
    except GLib.Error as e:  # pragma: no cover - depends on the port
        print(f"cannot listen on {args.host}:{args.port}: {e.message}", file=sys.stderr)
        return 2
    if source_id == 0:
        print(f"cannot listen on {args.host}:{args.port} (port in use?)", file=sys.stderr)
        return 2

    loop = GLib.MainLoop()

    def quit_loop(*_a: object) -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, quit_loop)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, quit_loop)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
