#!/usr/bin/env python3
"""A stand-in RTSP camera for Lookout's video tests: GStreamer's RTSP server serving
a live H.264 test pattern at rtsp://127.0.0.1:PORT/cam (1 keyframe per second).

Usage: rtsp_server.py PORT   (prints "ready" on stdout once listening)
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 "
    "! x264enc tune=zerolatency key-int-max=30 speed-preset=ultrafast "
    "! video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit("rtsp_server: cannot listen on 127.0.0.1:" + sys.argv[1])
print("ready", flush=True)
GLib.MainLoop().run()
