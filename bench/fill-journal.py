#!/usr/bin/env python3
"""Fill slot 0's journal of an OCFS2 image with committed jbd2 transactions
and mark it dirty, for `make bench` (a full replay, ours against
fsck.ocfs2 -fy). The layout facts come from debugfs-mmp --json (journal
extents, inode block), the jbd2 format from docs/jbd2-replay-facts.md.

  fill-journal.py DEBUGFS IMG TAGS_PER_TRANSACTION

Targets are distinct blocks counted down from the end of the volume that
read as zeros (a fresh volume's unused blocks; group descriptors and backup
superblocks there are skipped). The image must not have metaecc (the journal
inode is edited without recomputing its block check).
"""
import json
import struct
import subprocess
import sys

MAGIC = 0xC03B3998


def dbg(debugfs, img, req):
    out = subprocess.run([debugfs, "--json", "-R", req, img], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    debugfs, img, per_tx = sys.argv[1], sys.argv[2], int(sys.argv[3])
    st = dbg(debugfs, img, "stats")
    bs, cs = st["block_size"], st["cluster_size"]
    if "metaecc" in st["features"]["incompat"]:
        sys.exit("fill-journal.py: the image has metaecc; make it with --fs-features=nometaecc")
    j = dbg(debugfs, img, "stat //journal:0000")
    phys = []
    for e in sorted(j["extents"], key=lambda e: e["cpos"]):
        first = e["blkno"]
        phys.extend(range(first, first + e["clusters"] * cs // bs))
    with open(img, "r+b") as f:
        f.seek(phys[0] * bs)
        jsb = bytearray(f.read(bs))
        assert struct.unpack(">I", jsb[:4])[0] == MAGIC, "no journal superblock"
        maxlen, first = struct.unpack(">II", jsb[0x10:0x18])
        uuid = bytes(jsb[0x30:0x40])
        tag64 = struct.unpack(">I", jsb[0x28:0x2C])[0] & 2 != 0
        tagb = 12 if tag64 else 8
        per_tx = min(per_tx, (bs - 12 - 16) // tagb)
        end = st["clusters"] * cs // bs
        zero = bytes(bs)

        def free_blocks():
            b = end - 1
            while b > 0:
                f.seek(b * bs)
                if f.read(bs) == zero:
                    yield b
                b -= 1

        free = free_blocks()
        pos, tid, blocks = first, 1, 0
        while pos + per_tx + 2 < maxlen:
            targets = [next(free) for _ in range(per_tx)]
            d = bytearray(bs)
            d[:12] = struct.pack(">III", MAGIC, 1, tid)
            at = 12
            for i in range(per_tx):
                flags = (2 if i else 0) | (8 if i + 1 == per_tx else 0)
                d[at:at + 8] = struct.pack(">IHH", targets[i] & 0xFFFFFFFF, 0, flags)
                if tag64:
                    d[at + 8:at + 12] = struct.pack(">I", targets[i] >> 32)
                at += tagb
                if i == 0:
                    d[at:at + 16] = uuid
                    at += 16
            f.seek(phys[pos] * bs)
            f.write(d)
            for i in range(per_tx):
                f.seek(phys[pos + 1 + i] * bs)
                f.write(struct.pack("<QQ", tid, targets[i]) * (bs // 16))
            c = bytearray(bs)
            c[:12] = struct.pack(">III", MAGIC, 2, tid)
            f.seek(phys[pos + 1 + per_tx] * bs)
            f.write(c)
            pos += per_tx + 2
            tid += 1
            blocks += per_tx
        f.seek(phys[pos] * bs)
        f.write(bytes(bs))
        jsb[0x18:0x20] = struct.pack(">II", 1, first)
        f.seek(phys[0] * bs)
        f.write(jsb)
        f.seek(j["inode"] * bs + 0xB8)
        flags = struct.unpack("<I", f.read(4))[0]
        f.seek(j["inode"] * bs + 0xB8)
        f.write(struct.pack("<I", flags | 1))
    print("%d transactions, %d logged blocks, journal of %d blocks" % (tid - 1, blocks, maxlen))


if __name__ == "__main__":
    main()
