"""A real RTSP server on loopback for the tests (GStreamer's gst-rtsp-server).

Runs under Debian's Python with python3-gi and gir1.2-gst-rtsp-server-1.0, not in the project's
environment, hence a separate process:

    /usr/bin/python3 tests/rtsp_server.py --port 8554 cam1=clip.mp4 cam2=other.mp4

serves each H.264 MP4 (H.265 for a file named *.h265.mp4) at rtsp://127.0.0.1:8554/<name>, in
real time, without re-encoding; every
client gets its own session from the file's start. Prints "ready" once listening, then
"session" for each RTSP session set up (a client playing a stream; a bare TCP connection, as
a reachability check, is none). To make a
stream stall without closing its connection, the tests stop the process (SIGSTOP).
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("mounts", nargs="+", metavar="NAME=FILE")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    # One thread per client (the default pool has one thread: clients would wait in turn).
    server.get_thread_pool().set_max_threads(32)
    mounts = server.get_mount_points()
    for mount in args.mounts:
        name, _, path = mount.partition("=")
        factory = GstRtspServer.RTSPMediaFactory()
        codec = "h265" if path.endswith(".h265.mp4") else "h264"
        factory.set_launch(
            f'( filesrc location="{path}" ! qtdemux ! {codec}parse '
            f"! rtp{codec}pay name=pay0 pt=96 config-interval=1 )"
        )
        factory.set_shared(False)
        mounts.add_factory(f"/{name}", factory)

    def on_client(_server, client) -> None:
        client.connect("new-session", lambda *_: print("session", flush=True))

    server.connect("client-connected", on_client)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
