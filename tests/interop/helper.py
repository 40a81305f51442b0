#!/usr/bin/env python3
"""Small helpers for tests/interop/run.sh (JSON and bytes; no OCFS2 logic of
its own: every on-disk fact comes from debugfs-mmp's --json output).

  helper.py slots < SLOTMAP_JSON       one line: "0:0x798607cf/sequence/n0 1:..."
  helper.py states < SLOTMAP_JSON      one line: "sequence empty empty empty"
  helper.py raws < SLOTMAP_JSON        one line: "0x798607cf 0x00000000 ..."
  helper.py nodes < SLOTMAP_JSON       one line: "0 0 0 0" (node_field)
  helper.py get EXPR < JSON            print eval(EXPR) with d = the object
  helper.py ranges < STAT_JSON BLOCK_SIZE CLUSTER_SIZE
                                       "START:LEN ..." byte ranges of the extents
  helper.py extblocks < STAT_JSON BLOCK_SIZE CLUSTER_SIZE
                                       "INODE FIRST LAST ..." the inode's block and each extent's ends
  helper.py icheckcmp OURS THEIRS      icheck outputs agree wherever debugfs.ocfs2 knows the owner
  helper.py logdumpcmp OURS_JSON THEIRS  logdump transactions' blocks and revokes as debugfs.ocfs2 lists them
  helper.py hash IMG [START:LEN...]    sha256 of IMG with those ranges zeroed
  helper.py guestwords < GUEST_OUTPUT  the slot map words kp_slot0 printed
                                       (last dump): "valid0 node0 valid1 node1 ..."
  helper.py diffblocks A B BS          the blocks (of BS bytes) where images A and B differ,
                                       one line: "N:SIG ..." (SIG: the block's first 7 bytes in B,
                                       printable ones only)
  helper.py decode HEX                 the protocol's state name for a raw value
  helper.py xsums PATH < XATTR_JSON    "XSUM PATH NAME LEN FNV1A" per attribute of debugfs-mmp's
                                       "xattr" JSON, as the guest's xattrs helper prints them
  helper.py hbsum < STATUS_JSON        one line per heartbeat watch: "window 62 s, watched 3 s;
                                       n0 live 0x6b..->0x6b.. (2 changes, last at 3 s) slots [0]; ..."
  helper.py hbwatch < HB_JSON          the same for "hb --watch" output
"""
import hashlib
import json
import re
import sys

SEQ_MAX = 0xE24D4D4F


def decode(v):
    """The state names of mmp-protocol.md's value table (independent of our tools)."""
    if v == 0:
        return "empty"
    if 1 <= v <= SEQ_MAX:
        return "sequence"
    return {0xE24D4D50: "fsck", 0xE24D4D55: "cluster", 0xE24D4D5A: "nocluster",
            0xFF4D4D50: "clean"}.get(v, "unknown")


def load():
    text = sys.stdin.read().strip()
    # debugfs-mmp --json prints JSON Lines; take the last object
    return json.loads(text.splitlines()[-1])


def main():
    cmd = sys.argv[1]
    if cmd == "slots":
        d = load()
        print(" ".join("%d:0x%08x/%s/n%d" % (s["slot"], s["raw"], s["state"], s["node_field"])
                       for s in d["slots"]))
    elif cmd == "states":
        print(" ".join(s["state"] for s in load()["slots"]))
    elif cmd == "raws":
        print(" ".join("0x%08x" % s["raw"] for s in load()["slots"]))
    elif cmd == "nodes":
        print(" ".join(str(s["node_field"]) for s in load()["slots"]))
    elif cmd == "get":
        d = load()
        v = eval(sys.argv[2], {}, {"d": d})
        print(json.dumps(v) if isinstance(v, (dict, list)) else v)
    elif cmd == "ranges":
        d = load()
        bs, cs = int(sys.argv[2]), int(sys.argv[3])
        print(" ".join("%d:%d" % (e["blkno"] * bs, e["clusters"] * cs) for e in d["extents"]))
    elif cmd == "extblocks":
        # The inode block, then each extent's first and last block (leaves
        # of a deeper tree, else the inode's own records).
        d = load()
        bpc = int(sys.argv[3]) // int(sys.argv[2])
        out = [d["inode"]]
        for e in d.get("leaf_extents") or d.get("extents") or []:
            if e["clusters"]:
                out += [e["blkno"], e["blkno"] + e["clusters"] * bpc - 1]
        print(" ".join(str(b) for b in out))
    elif cmd == "icheckcmp":
        # Ours against debugfs.ocfs2's icheck: every row it knows must be ours
        # (block, inode, offset); rows it calls Unknown may say more in ours.
        def rows(path):
            out = {}
            for line in open(path, errors="replace"):
                w = line.split()
                if w and w[0].isdigit():
                    off = w[2] if len(w) > 2 and w[2].isdigit() else ""
                    out[int(w[0])] = (w[1], off)
            return out
        ours, theirs = rows(sys.argv[2]), rows(sys.argv[3])
        bad = ["%d: ours %s, theirs %s" % (b, ours.get(b), t) for b, t in sorted(theirs.items())
               if t[0] != "Unknown" and ours.get(b) != t]
        more = sum(1 for b, t in theirs.items() if t[0] == "Unknown" and ours.get(b, ("Unknown",))[0] != "Unknown")
        if bad or len(ours) != len(theirs):
            print("differ: %d rows ours, %d theirs; %s" % (len(ours), len(theirs), "; ".join(bad[:5])))
            sys.exit(1)
        print("%d blocks agree; %d that debugfs.ocfs2 calls Unknown named by ours" % (len(theirs), more))
    elif cmd == "logdumpcmp":
        # Ours (logdump --json) against debugfs.ocfs2's logdump, which lists
        # every jbd2 block of the journal file: for each transaction we say a
        # replay walks, the tags of its descriptor blocks (Seq = its tid),
        # in log order, name the blocks we list, and its revoke blocks the
        # blocks we list as revoked.
        ours = json.load(open(sys.argv[2]))
        tags, revokes, seq, kind = {}, {}, None, None
        for line in open(sys.argv[3], errors="replace"):
            m = re.match(r"\s*Block \d+: (Journal \w+)", line)
            if m:
                kind, seq = m.group(1), None
                continue
            m = re.match(r"\s*Seq: (\d+)", line)
            if m:
                seq = int(m.group(1))
                continue
            m = re.match(r"\s*\d+\. (\d+)", line)
            if m and kind == "Journal Descriptor" and seq is not None:
                tags.setdefault(seq, []).append(int(m.group(1)))
                continue
            m = re.match(r"\s*revoke\[\d+\]:\s+(\d+)", line)
            if m and kind == "Journal Revoke" and seq is not None:
                revokes.setdefault(seq, []).append(int(m.group(1)))
        bad = []
        for t in ours["transactions"]:
            mine = [b["target"] for b in t["blocks"]]
            if tags.get(t["tid"], []) != mine:
                bad.append("tid %d: ours %s, theirs %s" % (t["tid"], mine[:6], tags.get(t["tid"], [])[:6]))
            if sorted(revokes.get(t["tid"], [])) != sorted(t["revokes"]):
                bad.append("tid %d revokes: ours %s, theirs %s" % (t["tid"], t["revokes"][:6], revokes.get(t["tid"], [])[:6]))
        if bad or not ours["transactions"]:
            print("differ: " + "; ".join(bad[:4]))
            sys.exit(1)
        print("%d transaction(s), %d logged block(s) as debugfs.ocfs2 lists them"
              % (len(ours["transactions"]), sum(len(t["blocks"]) for t in ours["transactions"])))
    elif cmd == "hash":
        ranges = [tuple(int(x) for x in r.split(":")) for r in sys.argv[3:]]
        h = hashlib.sha256()
        pos = 0
        with open(sys.argv[2], "rb") as f:
            while True:
                buf = f.read(1 << 22)
                if not buf:
                    break
                b = bytearray(buf)
                for start, length in ranges:
                    lo, hi = max(start, pos), min(start + length, pos + len(b))
                    if lo < hi:
                        b[lo - pos:hi - pos] = bytes(hi - lo)
                h.update(b)
                pos += len(buf)
        print(h.hexdigest())
    elif cmd == "guestwords":
        dumps, cur = [], []
        for line in sys.stdin:
            m = re.search(r"slotmap words: ((?:[0-9a-f]{8} ?){4})", line)
            if m:
                cur += m.group(1).split()
                if len(cur) == 8:
                    dumps.append(cur)
                    cur = []
        print(" ".join(dumps[-1]) if dumps else "")
    elif cmd in ("hbsum", "hbwatch"):
        d = load()
        if cmd == "hbsum":
            h = d.get("heartbeat")
            if not h:
                print("heartbeat not watched")
                return
            head, nodes, key = "window %s s, watched %s s" % (h["window"], h["watched"]), h["nodes"], "state"
        else:
            head, nodes, key = "watched %s s" % d["watched"], d["nodes"], "verdict"
        parts = []
        for n in nodes:
            parts.append("n%d %s 0x%x->0x%x (%d changes, last %s) slots %s%s" % (
                n["node"], n[key], n["first_seq"], n.get("last_seq", n.get("seq", 0)),
                n["changes"], "-" if n["last_change"] is None else "at %s s" % n["last_change"], n["slots"],
                "" if n["block_ok"] else " DAMAGED"))
        print(head + "; " + ("; ".join(parts) if parts else "no node"))
    elif cmd == "diffblocks":
        bs = int(sys.argv[4])
        out = []
        with open(sys.argv[2], "rb") as fa, open(sys.argv[3], "rb") as fb:
            n = 0
            while True:
                a, b = fa.read(1 << 22), fb.read(1 << 22)
                if not a and not b:
                    break
                if a != b:
                    for i in range(0, max(len(a), len(b)), bs):
                        if a[i:i + bs] != b[i:i + bs]:
                            sig = "".join(chr(c) for c in b[i:i + 7] if 48 <= c < 123)
                            out.append("%d:%s" % (n + i // bs, sig))
                n += len(a) // bs
        print(" ".join(out))
    elif cmd == "poke":
        # poke IMG OFFSET WIDTH VALUE: little-endian VALUE (WIDTH bytes) at OFFSET
        import struct
        fmt = {"2": "<H", "4": "<I", "8": "<Q"}[sys.argv[4]]
        with open(sys.argv[2], "r+b") as f:
            f.seek(int(sys.argv[3]))
            f.write(struct.pack(fmt, int(sys.argv[5], 0)))
    elif cmd == "peek":
        # peek IMG OFFSET WIDTH: the little-endian value there
        import struct
        fmt = {"2": "<H", "4": "<I", "8": "<Q"}[sys.argv[4]]
        with open(sys.argv[2], "rb") as f:
            f.seek(int(sys.argv[3]))
            print(struct.unpack(fmt, f.read(int(sys.argv[4])))[0])
    elif cmd == "xsums":
        for a in load()["attributes"]:
            v = bytes.fromhex(a["value_hex"])
            h = 2166136261
            for b in v:
                h = ((h ^ b) * 16777619) & 0xFFFFFFFF
            print(f"XSUM {sys.argv[2]} {a['name']} {len(v)} {h:08x}")
    elif cmd == "decode":
        print(decode(int(sys.argv[2], 16)))
    else:
        sys.exit("helper.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
