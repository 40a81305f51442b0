//! The MMP check on clustered volumes, against o2hb heartbeat blocks on
//! disk: a writer thread plays the nodes' o2hb (one 512-byte block per node
//! at the start of //heartbeat, rewritten while the node lives, encoded the
//! way the kernel encodes them; the layout is checked against blocks the
//! kernel wrote in the format crate's unit tests). The heartbeat extent is
//! located by Debian's `debugfs.ocfs2` on the volume before MMP is turned
//! on, so our own reader is not the judge of where the blocks are.
//!
//! The guests of `make interop` (c1-c5) do the same with real kernels; this
//! file covers the cases a two-node QEMU cluster cannot stage cheaply
//! (damaged blocks, a node without a slot, the window option, volumes
//! without MMP) and runs in every `make test`.

use ocfs2_format::heartbeat::encode;
use serde_json::Value;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::{scratch, sparse_file};

const DEBUGFS: &str = env!("CARGO_BIN_EXE_debugfs-mmp");
const TUNEFS: &str = env!("CARGO_BIN_EXE_tunefs-ocfs2-mmp");
const FSCK: &str = env!("CARGO_BIN_EXE_fsck-ocfs2-mmp");
const MKFS: &str = env!("CARGO_BIN_EXE_mkfs-ocfs2-mmp");
const HB_BYTES: u64 = 512;
const VALID_CLUSTER: &str = "cluster";

struct Vol {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// Byte offset of the heartbeat area, from debugfs.ocfs2.
    hb_offset: u64,
}

impl Vol {
    fn dev(&self) -> &str {
        self.path.to_str().expect("UTF-8 path")
    }
}

fn run(bin: &str, args: &[&str]) -> Out {
    let t = Instant::now();
    let o = Command::new(bin)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        elapsed: t.elapsed(),
        what: format!("{bin} {}", args.join(" ")),
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    what: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("not JSON ({e})\n{}", self.show()))
    }
    fn show(&self) -> String {
        format!(
            "$ {}\nexit {} after {:.1?}\n--- stdout\n{}\n--- stderr\n{}",
            self.what, self.code, self.elapsed, self.stdout, self.stderr
        )
    }
    /// The wait the tool announced ("waiting N s"), if any.
    fn announced(&self) -> Option<u64> {
        let i = self.stderr.rfind("waiting ")?;
        self.stderr[i + 8..].split_whitespace().next()?.parse().ok()
    }
    /// The tool never ran longer than it said it would wait (plus start-up).
    #[track_caller]
    fn kept_its_word(&self) -> &Self {
        let said = self.announced().unwrap_or(0);
        assert!(
            self.elapsed <= Duration::from_secs(said) + Duration::from_millis(1500),
            "announced {said} s, ran {:.1?}\n{}",
            self.elapsed,
            self.show()
        );
        self
    }
}

/// A clustered volume (`mkfs.ocfs2 -N 4`, no cluster stack running: -F),
/// its heartbeat extent from `debugfs.ocfs2 -R "stat //heartbeat"`, then
/// MMP turned on by our tunefs (unless `mmp` is false).
fn volume(mmp: bool) -> Vol {
    let dir = scratch("heartbeat-");
    let path = dir.path().join("c.img");
    sparse_file(&path, 256 << 20);
    // -F: no cluster stack runs here, so the cluster check is skipped; mkfs
    // then asks before overwriting the signature its own forked children
    // wrote, hence the "y" answers.
    let mut child = Command::new(common::find_tool("mkfs.ocfs2", "ocfs2-tools"))
        .args(["-q", "-F", "-N", "4", "-b", "4096", "-C", "4096"])
        .arg("--fs-features=extended-slotmap")
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mkfs.ocfs2");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all("y\n".repeat(16).as_bytes());
    }
    let o = child.wait_with_output().expect("mkfs.ocfs2");
    assert!(o.status.success(), "mkfs.ocfs2: {o:?}");
    let stat = Command::new(common::find_tool("debugfs.ocfs2", "ocfs2-tools"))
        .args(["-R", "stat //heartbeat"])
        .arg(&path)
        .output()
        .expect("debugfs.ocfs2");
    let text = String::from_utf8_lossy(&stat.stdout);
    // "## Offset  Clusters  Block#  Flags", then "0  0  1  273  0x0"
    let blkno: u64 = text
        .lines()
        .skip_while(|l| !l.contains("Block#"))
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no extent in debugfs.ocfs2's stat //heartbeat:\n{text}"));
    let vol = Vol {
        hb_offset: blkno * 4096,
        _dir: dir,
        path,
    };
    if mmp {
        let r = run(TUNEFS, &["-y", "-q", "--enable-mmp", vol.dev()]);
        assert_eq!(r.code, 0, "{}", r.show());
    }
    vol
}

fn set_slot(v: &Vol, slot: u16, value: &str, node: u32) {
    let req = format!("mmp set --force {slot} {value} {node}");
    let r = run(DEBUGFS, &["-w", "-R", &req, v.dev()]);
    assert_eq!(r.code, 0, "{}", r.show());
}

/// Plays o2hb for nodes whose bit is set in `live`: each rewrites its
/// block every second with a new sequence, as a live node does every 2 s.
/// A node whose bit is cleared keeps its last block (it died).
struct Nodes {
    live: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Nodes {
    fn start(v: &Vol, live: u32) -> Nodes {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&v.path)
            .expect("open image");
        let base = v.hb_offset;
        let live = Arc::new(AtomicU32::new(live));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (live.clone(), stop.clone());
        let ready = Arc::new(AtomicBool::new(false));
        let r = ready.clone();
        let thread = std::thread::spawn(move || {
            let mut seq = 0x6b00_0000u64;
            while !s.load(Ordering::SeqCst) {
                let mask = l.load(Ordering::SeqCst);
                for node in 0..8u8 {
                    if mask & (1 << node) != 0 {
                        let b = encode(
                            HB_BYTES as usize,
                            seq,
                            node,
                            0x1000 + u64::from(node),
                            62_000,
                        );
                        file.write_all_at(&b, base + u64::from(node) * HB_BYTES)
                            .expect("write heartbeat block");
                    }
                }
                file.sync_data().expect("sync");
                r.store(true, Ordering::SeqCst);
                seq += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        while !ready.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        Nodes {
            live,
            stop,
            thread: Some(thread),
        }
    }
    fn set(&self, live: u32) {
        self.live.store(live, Ordering::SeqCst);
        // Let a write in progress finish before the caller looks.
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn status(v: &Vol, extra: &str) -> Out {
    let req = format!("mmp status {extra}");
    let r = run(DEBUGFS, &["--json", "-R", &req, v.dev()]);
    assert!(!r.stderr.contains("panicked"), "{}", r.show());
    r.kept_its_word();
    r
}

fn list(j: &Value, key: &str) -> Vec<u64> {
    j[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not a list: {j:#}"))
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

#[test]
fn live_silent_and_stale_clustered_nodes() {
    let v = volume(true);
    set_slot(&v, 0, VALID_CLUSTER, 0);
    set_slot(&v, 1, VALID_CLUSTER, 1);
    let nodes = Nodes::start(&v, 0b11);

    // Both nodes live: in use, both named; the default window (62 s) is
    // announced and cut short once both are seen live.
    let r = status(&v, "");
    assert_eq!(r.code, 1, "{}", r.show());
    let j = r.json();
    assert_eq!(j["verdict"]["kind"], "heartbeating", "{j:#}");
    assert_eq!(list(&j, "mounted_nodes"), [0, 1], "{j:#}");
    assert_eq!(j["heartbeat"]["window"], 62, "{j:#}");
    assert_eq!(r.announced(), Some(62), "{}", r.show());
    assert!(r.elapsed < Duration::from_secs(20), "{}", r.show());
    let text = run(DEBUGFS, &["-R", "mmp status --hb-window 5", v.dev()]);
    assert!(
        text.stdout.contains("Mounted nodes: 0, 1"),
        "{}",
        text.show()
    );
    // A window under the nodes' dead threshold (62 s) is said to be one.
    assert!(
        text.stderr
            .contains("shorter than the nodes' dead threshold of 62 s"),
        "{}",
        text.show()
    );

    // The writers refuse while a node lives, and change nothing.
    let before = std::fs::read(&v.path).expect("read image");
    let t = run(
        TUNEFS,
        &["-y", "--hb-window", "5", "--mmp-update-interval=7", v.dev()],
    );
    assert_eq!(t.code, 1, "{}", t.show());
    assert!(t.stderr.contains("heartbeat"), "{}", t.show());
    let f = run(FSCK, &["-n", "--hb-window", "5", v.dev()]);
    assert_eq!(f.code, 8, "{}", f.show());
    assert!(f.stderr.contains("node(s) 0, 1 heartbeat"), "{}", f.show());
    let c = run(TUNEFS, &["-y", "--clear-mmp", "--hb-window", "5", v.dev()]);
    assert_eq!(c.code, 1, "{}", c.show());
    let after = std::fs::read(&v.path).expect("read image");
    let hb = v.hb_offset as usize..v.hb_offset as usize + 8 * HB_BYTES as usize;
    let outside = |b: &[u8]| {
        let mut b = b.to_vec();
        b[hb.clone()].fill(0);
        b
    };
    assert!(
        outside(&before) == outside(&after),
        "a refused tool changed the volume"
    );

    // Node 0 dies: silent after the whole window; node 1 still mounted.
    nodes.set(0b10);
    let r = status(&v, "--hb-window 5");
    assert_eq!(r.code, 1, "{}", r.show());
    let j = r.json();
    assert_eq!(list(&j, "mounted_nodes"), [1], "{j:#}");
    assert_eq!(list(&j, "silent_nodes"), [0], "{j:#}");
    assert_eq!(list(&j, "stale_slots"), [0], "{j:#}");
    assert_eq!(
        j["waited"], 5,
        "a silent node takes the whole window: {j:#}"
    );
    assert!(
        j["recovery"]
            .as_str()
            .is_some_and(|s| s.contains("live node(s) 1")),
        "{j:#}"
    );

    // Both dead: safe, both slots stale, the same-kind rule demands a
    // clustered mount.
    nodes.set(0);
    let r = status(&v, "--hb-window 5");
    assert_eq!(r.code, 0, "{}", r.show());
    let j = r.json();
    assert_eq!(j["verdict"]["kind"], "stale", "{j:#}");
    assert_eq!(list(&j["verdict"], "slots"), [0, 1], "{j:#}");
    assert_eq!(list(&j["verdict"], "nodes"), [0, 1], "{j:#}");
    assert_eq!(j["same_kind_rule"]["local_mount_allowed"], false, "{j:#}");
    let nodes_json = j["heartbeat"]["nodes"].as_array().expect("nodes");
    for n in nodes_json {
        assert_eq!(n["state"], "silent", "{j:#}");
        assert!(n["first_seq"].as_u64() > Some(0x6b00_0000 - 1), "{j:#}");
    }
    // fsck -n runs; fsck (marking SEQ_FSCK in slot 0) and tunefs put the
    // dead node's VALID_CLUSTER back: its journal waits for a clustered mount.
    let f = run(FSCK, &["-n", "--hb-window", "5", v.dev()]);
    assert!(f.code == 0 || f.code == 4, "{}", f.show());
    let f = run(FSCK, &["-y", "--hb-window", "5", v.dev()]);
    assert!(f.code == 0 || f.code == 4, "{}", f.show());
    let t = run(
        TUNEFS,
        &["-y", "--hb-window", "5", "--mmp-update-interval=7", v.dev()],
    );
    assert_eq!(t.code, 0, "{}", t.show());
    let m = run(DEBUGFS, &["--json", "-R", "slotmap", v.dev()]).json();
    let states: Vec<&str> = m["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| s["state"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(states, ["cluster", "cluster", "empty", "empty"], "{m:#}");
    // --clear-mmp clears them: the journals are clean (never mounted).
    // (With dirty journals it refuses: interop c4, where real nodes died.)
    let c = run(TUNEFS, &["-y", "--clear-mmp", "--hb-window", "5", v.dev()]);
    assert_eq!(c.code, 0, "{}", c.show());
    assert!(c.stdout.contains("node 0 stayed silent"), "{}", c.show());
    let r = status(&v, "-i");
    assert_eq!(r.json()["verdict"]["kind"], "clean", "{}", r.show());
    drop(nodes);
}

#[test]
fn a_live_node_without_a_slot_and_a_damaged_block() {
    let v = volume(true);
    set_slot(&v, 0, VALID_CLUSTER, 0);
    // Node 2 heartbeats but holds no slot (mounting); node 3's block is
    // damaged and still.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&v.path)
        .expect("open");
    let mut bad = encode(512, 0x6b00_0001, 3, 7, 62_000);
    bad[40] ^= 0x10;
    file.write_all_at(&bad, v.hb_offset + 3 * HB_BYTES)
        .expect("write");
    let old0 = encode(512, 0x6b00_0000, 0, 9, 62_000);
    file.write_all_at(&old0, v.hb_offset).expect("write");
    file.sync_data().expect("sync");
    let nodes = Nodes::start(&v, 0b100);
    let r = status(&v, "--hb-window 5");
    assert_eq!(r.code, 1, "{}", r.show());
    let j = r.json();
    assert_eq!(j["verdict"]["kind"], "heartbeating", "{j:#}");
    assert_eq!(list(&j["verdict"], "nodes"), [2], "{j:#}");
    assert_eq!(list(&j, "live_without_slot"), [2], "{j:#}");
    assert_eq!(list(&j, "mounted_nodes"), Vec::<u64>::new(), "{j:#}");
    let n3 = j["heartbeat"]["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["node"] == 3))
        .unwrap_or_else(|| panic!("node 3 reported: {j:#}"));
    assert_eq!(n3["block_ok"], false, "{j:#}");
    assert!(
        n3["damage"]
            .as_str()
            .is_some_and(|d| d.starts_with("heartbeat block 3: checksum")),
        "{j:#}"
    );
    // The hb request shows the same, watched.
    let h = run(DEBUGFS, &["-R", "hb --watch 3", v.dev()]);
    assert_eq!(h.code, 0, "{}", h.show());
    let line = |n: &str| {
        h.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(n))
            .unwrap_or_else(|| panic!("node {n} in\n{}", h.show()))
            .trim_end()
            .to_string()
    };
    assert!(line("2").ends_with("live"), "{}", h.show());
    assert!(line("3").contains("DAMAGED"), "{}", h.show());
    assert!(line("0").ends_with("silent"), "{}", h.show());
    let hj = run(DEBUGFS, &["--json", "-R", "hb --watch 2", v.dev()]).json();
    let seqs: Vec<(u64, u64)> = hj["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["node"].as_u64().unwrap(), n["seq"].as_u64().unwrap()))
        .collect();
    assert!(seqs.contains(&(0, 0x6b00_0000)), "{hj:#}");
    drop(nodes);
}

#[test]
fn without_mmp_every_node_is_watched() {
    // A stock kernel's clustered mount: `1` in slot 0, and its heartbeat.
    let v = volume(false);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&v.path)
        .expect("open");
    let nodes = Nodes::start(&v, 0b1);
    let r = status(&v, "");
    assert_eq!(r.code, 1, "{}", r.show());
    let j = r.json();
    assert_eq!(j["mmp"], false, "{j:#}");
    assert_eq!(list(&j["verdict"], "nodes"), [0], "{j:#}");
    // fsck (even -n) and mkfs -F refuse a volume a node heartbeats on, and
    // mkfs writes nothing.
    let before = std::fs::read(&v.path).expect("read image");
    let f = run(FSCK, &["-n", v.dev()]);
    assert_eq!(f.code, 8, "{}", f.show());
    assert!(f.stderr.contains("node(s) 0 heartbeat"), "{}", f.show());
    f.kept_its_word();
    let m = run(MKFS, &["-q", "-F", "-N", "2", v.dev()]);
    assert_eq!(m.code, 1, "{}", m.show());
    assert!(m.stderr.contains("refusing even with -F"), "{}", m.show());
    m.kept_its_word();
    let after = std::fs::read(&v.path).expect("read image");
    let hb = v.hb_offset as usize..v.hb_offset as usize + HB_BYTES as usize;
    let (mut b, mut a) = (before, after);
    b[hb.clone()].fill(0);
    a[hb].fill(0);
    assert!(b == a, "a refused tool changed the volume");
    // Nobody heartbeats any more: MMP is off, so "cannot tell" (2).
    nodes.set(0);
    let r = status(&v, "--hb-window 5");
    assert_eq!(r.code, 2, "{}", r.show());
    let j = r.json();
    assert_eq!(j["verdict"]["kind"], "feature_off", "{j:#}");
    assert_eq!(list(&j, "silent_nodes"), [0], "{j:#}");
    // The node is dead: fsck runs and mkfs -F makes a new volume.
    let f = run(FSCK, &["-n", "--hb-window", "5", v.dev()]);
    assert_eq!(f.code, 0, "{}", f.show());
    let m = run(MKFS, &["-q", "-F", "-N", "2", "--hb-window", "5", v.dev()]);
    assert_eq!(m.code, 0, "{}", m.show());
    drop(nodes);
    drop(file);
}

#[test]
fn no_heartbeat_ever_means_no_wait() {
    // A clustered slot on a volume no node ever heartbeated on (a userspace
    // stack or global heartbeat): nothing to watch, "cannot tell" at once.
    let v = volume(true);
    set_slot(&v, 1, VALID_CLUSTER, 1);
    let r = status(&v, "");
    assert_eq!(r.code, 2, "{}", r.show());
    assert_eq!(r.announced(), None, "{}", r.show());
    let j = r.json();
    assert_eq!(j["verdict"]["kind"], "no_liveness", "{j:#}");
    assert_eq!(j["heartbeat"]["nodes"][0]["state"], "never", "{j:#}");
    // The window option is checked.
    let bad = run(DEBUGFS, &["--hb-window", "0", "-R", "mmp status", v.dev()]);
    assert_eq!(bad.code, 16, "{}", bad.show());
    assert!(bad.stderr.contains("at least 5 s"), "{}", bad.show());
    let bad = run(TUNEFS, &["--hb-window", "601", "--clear-mmp", v.dev()]);
    assert_eq!(bad.code, 16, "{}", bad.show());
}

/// Point the heartbeat inode's first extent far past the device (found with
/// debugfs.ocfs2: `Inode: N`, the block of the inode at 4 KiB blocks).
fn wreck_heartbeat_extent(v: &Vol) {
    let stat = Command::new(common::find_tool("debugfs.ocfs2", "ocfs2-tools"))
        .args(["-R", "stat //heartbeat"])
        .arg(&v.path)
        .output()
        .expect("debugfs.ocfs2");
    let text = String::from_utf8_lossy(&stat.stdout);
    let ino: u64 = text
        .split_whitespace()
        .skip_while(|w| *w != "Inode:")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no inode number in:\n{text}"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&v.path)
        .expect("open");
    let mut b = vec![0u8; 4096];
    file.read_exact_at(&mut b, ino * 4096).expect("read inode");
    assert_eq!(&b[..8], b"INODE01\0", "block {ino} is the heartbeat inode");
    // id2 at 0xC0: the extent list header (16 bytes), then record 0 with
    // e_blkno at +8.
    b[0xC0 + 0x18..0xC0 + 0x20].copy_from_slice(&0x7fff_ffff_ffffu64.to_le_bytes());
    file.write_all_at(&b, ino * 4096).expect("write inode");
}

#[test]
fn an_unreadable_heartbeat() {
    // MMP volume, a clustered slot: nothing can be told; every tool says
    // why in one line, and none writes.
    // (debugfs.ocfs2 finds the inode before MMP is on: it refuses MMP.)
    let v = volume(false);
    wreck_heartbeat_extent(&v);
    let r = run(TUNEFS, &["-y", "-q", "--enable-mmp", v.dev()]);
    assert_eq!(r.code, 0, "{}", r.show());
    set_slot(&v, 0, VALID_CLUSTER, 0);
    let s = run(DEBUGFS, &["-R", "mmp status", v.dev()]);
    assert_eq!(s.code, 2, "{}", s.show());
    let f = run(FSCK, &["-n", v.dev()]);
    assert_eq!(f.code, 8, "{}", f.show());
    assert_eq!(f.stderr.lines().count(), 1, "{}", f.show());
    assert!(
        f.stderr
            .contains("MMP check: reading the slot map and the heartbeat: block"),
        "{}",
        f.show()
    );
    let m = run(MKFS, &["-q", "-F", v.dev()]);
    assert_eq!(m.code, 1, "{}", m.show());
    assert!(m.stderr.contains("refusing even with -F"), "{}", m.show());
    // Without MMP the damage is the passes' business: fsck goes on and
    // reports it, mkfs -F reformats; both warn about what they could not
    // check.
    let v = volume(false);
    wreck_heartbeat_extent(&v);
    let f = run(FSCK, &["-n", v.dev()]);
    assert_eq!(f.code, 4, "{}", f.show());
    assert!(f.stdout.contains("EXTENT_BLKNO_RANGE"), "{}", f.show());
    assert!(
        f.stderr.contains("not checked for live cluster nodes"),
        "{}",
        f.show()
    );
    let m = run(MKFS, &["-q", "-F", "-N", "2", v.dev()]);
    assert_eq!(m.code, 0, "{}", m.show());
    assert!(
        m.stderr.contains("not checked for live cluster nodes"),
        "{}",
        m.show()
    );
}
