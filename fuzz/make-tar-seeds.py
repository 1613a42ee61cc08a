#!/usr/bin/env python3
"""Writes the tar_unpack fuzz target's seeds (fuzz/seeds/tar_unpack/*.tar).

Each seed is a small uncompressed tar, the kind `PUT /volumes/:handle/stream-in` receives:
ordinary trees and the hostile shapes the unpacker must refuse (`..`, absolute paths,
symlinks out of the root, entries through a symlink, hard links out, devices). The
committed files are this script's output; rerun it after changing it.
"""
import io
import os
import tarfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "tar_unpack")


def entry(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, **kw):
    return (name, kind, data, link, mode, kw)


def write(fname, entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, kind, data, link, mode, kw in entries:
            ti = tarfile.TarInfo(name)
            ti.type = kind
            ti.mode = mode
            ti.mtime = 1_700_000_000
            ti.linkname = link
            ti.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
            for k, v in kw.items():
                setattr(ti, k, v)
            tf.addfile(ti, io.BytesIO(data) if ti.size else None)
    raw = buf.getvalue()
    # Keep the two end-of-archive blocks, drop tarfile's padding to 10 KiB.
    body = raw.rstrip(b"\0")
    end = (len(body) + 511) // 512 * 512 + 1024
    with open(os.path.join(OUT, fname), "wb") as f:
        f.write(raw[:end])


os.makedirs(OUT, exist_ok=True)
write("tree.tar", [
    entry("./", tarfile.DIRTYPE, mode=0o755),
    entry("dir/", tarfile.DIRTYPE, mode=0o755),
    entry("dir/file", data=b"hello\n"),
    entry("dir/exec", data=b"#!/bin/sh\necho hi\n", mode=0o755),
    entry("dir/link", tarfile.SYMTYPE, link="file"),
    entry("dir/abs-link", tarfile.SYMTYPE, link="/etc/passwd"),
    entry("up-link", tarfile.SYMTYPE, link="dir/../dir/file"),
    entry("hard", tarfile.LNKTYPE, link="dir/file"),
    entry("empty", data=b""),
])
write("pax.tar", [
    entry("long/" + "n" * 150 + "/file", data=b"pax"),
    entry("unicode-\u00e9\u4e2d", data=b"x", uid=1000, gid=1000, uname="u", gname="g"),
    entry("fifo", tarfile.FIFOTYPE),
], fmt=tarfile.PAX_FORMAT)
write("dotdot.tar", [entry("../escape", data=b"out")])
write("absolute.tar", [entry("/tmp/escape", data=b"out")])
write("symlink-out.tar", [entry("out", tarfile.SYMTYPE, link="../../outside")])
write("through-symlink.tar", [
    entry("s", tarfile.SYMTYPE, link="."),
    entry("s/file", data=b"via link"),
    entry("t", tarfile.SYMTYPE, link="/"),
    entry("t/tmp/escape", data=b"via abs link"),
])
write("replace-planted.tar", [
    entry("planted/x", data=b"through the planted symlink"),
    entry("planted", data=b"replaces it"),
])
write("hardlink-out.tar", [entry("h", tarfile.LNKTYPE, link="../outside/victim")])
write("dir-over-file.tar", [
    entry("a", data=b"file first"),
    entry("a/", tarfile.DIRTYPE, mode=0o755),
    entry("a/b", data=b"then inside"),
    entry("a", tarfile.SYMTYPE, link="x"),
])
write("device.tar", [entry("null", tarfile.CHRTYPE, devmajor=1, devminor=3)])
