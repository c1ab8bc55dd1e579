#!/usr/bin/python3
"""A fake RTSP camera for tests: GStreamer's RTSP server on 127.0.0.1 at a free port, serving
videotestsrc ! x264enc ! rtph264pay (H.264 constrained baseline, no B-frames, a key frame every
--gop frames, SPS/PPS in band before each key frame as IP cameras send them). x264enc runs one thread:
with sliced threads a frame has several slices, rtph264pay repeats SPS/PPS before each, and ffmpeg's
parser then splits the key frame in two.

Prints "READY rtsp://127.0.0.1:PORT/PATH" on stdout once it serves, and exits when its stdin closes
(its parent went away) or on SIGTERM.

Needs Debian's python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{base,good,ugly}; run it
with /usr/bin/python3 (another python3 on the PATH may lack gi).
"""
import argparse
import signal
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument('--width', type=int, default=320)
parser.add_argument('--height', type=int, default=240)
parser.add_argument('--fps', type=int, default=15)
parser.add_argument('--gop', type=int, default=15, help='frames between key frames')
parser.add_argument('--bitrate', type=int, default=400, help='kbit/s')
parser.add_argument('--path', default='/cam')
args = parser.parse_args()

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service('0')
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    '( videotestsrc is-live=true pattern=ball '
    f'! video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 '
    f'! x264enc tune=zerolatency speed-preset=veryfast bitrate={args.bitrate} key-int-max={args.gop} threads=1 '
    '! video/x-h264,profile=constrained-baseline '
    '! rtph264pay name=pay0 pt=96 config-interval=-1 )'
)
factory.set_shared(True)
server.get_mount_points().add_factory(args.path, factory)
if server.attach(None) == 0:
    sys.exit('rtsp-server: cannot listen')

loop = GLib.MainLoop()
GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_HUP | GLib.IO_ERR | GLib.IO_IN, lambda *_: loop.quit() or False)
GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, lambda: loop.quit() or False)
print(f'READY rtsp://127.0.0.1:{server.get_bound_port()}{args.path}', flush=True)
loop.run()
