#!/usr/bin/env python3
"""Seeds for fuzz_targets/route.rs from our own demo capture (examples/data/demo.pcapng,
built by examples/gen_demo.rs): byte 0 = 0 (Ethernet in the target's link table), then the
frame. Run from the repository root: python3 fuzz/seeds/route/make_seeds.py"""
import struct

data = open("examples/data/demo.pcapng", "rb").read()
off, frames = 0, []
while off + 12 <= len(data):
    btype, blen = struct.unpack_from("<II", data, off)
    if blen < 12:
        break
    if btype == 6:  # enhanced packet block
        caplen = struct.unpack_from("<I", data, off + 20)[0]
        frames.append(data[off + 28 : off + 28 + caplen])
    off += blen
picked = {}
for f in frames:
    # one frame per (EtherType, IP protocol) pair, so TCP and UDP, v4 and v6 are all there
    key = (f[12:14], f[23] if f[12:14] == b"\x08\x00" else f[20])
    picked.setdefault(key, f)
for i, f in enumerate(picked.values()):
    open(f"fuzz/seeds/route/demo_{i}.bin", "wb").write(b"\x00" + f[:256])
print(f"{len(picked)} seeds from {len(frames)} frames")
