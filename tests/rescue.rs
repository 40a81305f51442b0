//! Issue 14: debugfs-mmp reads files out of a volume whatever its MMP
//! state (`cat`, `dump [-p]`, `findpath`, `ncheck`, `icheck`, `frag`, a session that goes on
//! past a bad request and ends at `quit`), agreeing with debugfs.ocfs2 on
//! the same volume without MMP; mounted.ocfs2-mmp lists volumes and who
//! holds each, every volume's wait at once.

mod common;

use common::shared::{Host, Loop, Writer};
use common::{cp_sparse, find_tool, mkfs_ocfs2_made, scratch, sparse_file, MIB};
use ocfs2_format::{FileDevice, OpenMode, Volume};
use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DEBUGFS: &str = env!("CARGO_BIN_EXE_debugfs-mmp");
const MOUNTED: &str = env!("CARGO_BIN_EXE_mounted-ocfs2-mmp");
const TUNEFS: &str = env!("CARGO_BIN_EXE_tunefs-ocfs2-mmp");

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn describe(o: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `mkfs.ocfs2 -b 4096 -N 2 -M local -J size=4M EXTRA IMG` on a new
/// sparse image of `size`.
fn mkfs_theirs(img: &Path, size: u64, extra: &[&str]) {
    sparse_file(img, size);
    let out = Command::new(find_tool("mkfs.ocfs2", "ocfs2-tools"))
        .args([
            "-F", "-b", "4096", "-N", "2", "-M", "local", "-J", "size=4M",
        ])
        .args(extra)
        .arg(img)
        .stdin(Stdio::null())
        .output()
        .expect("run mkfs.ocfs2");
    assert!(
        mkfs_ocfs2_made(&out, true),
        "mkfs.ocfs2: {}",
        describe(&out)
    );
}

/// MMP on, by our tunefs.
fn enable_mmp(img: &Path) {
    let out = Command::new(TUNEFS)
        .args(["-y", "--enable-mmp", "--mmp-update-interval=1"])
        .arg(img)
        .output()
        .expect("run tunefs");
    assert!(
        out.status.success(),
        "tunefs --enable-mmp: {}",
        describe(&out)
    );
}

/// A copy of `img` with the MMP bit cleared, for debugfs.ocfs2.
fn without_mmp(img: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join("plain.img");
    common::copy_without_mmp(img, &copy);
    copy
}

fn ours(args: &[&str], img: &Path) -> Output {
    Command::new(DEBUGFS)
        .args(args)
        .arg(img)
        .stdin(Stdio::null())
        .output()
        .expect("run debugfs-mmp")
}

fn theirs(req: &str, img: &Path) -> Output {
    Command::new(find_tool("debugfs.ocfs2", "ocfs2-tools"))
        .args(["-R", req])
        .arg(img)
        .output()
        .expect("run debugfs.ocfs2")
}

/// Directories `/a`, `/a/b`, `/a/b/c`, `/x` made with the format crate's
/// directory code (slot 0's inode allocator), for the path requests.
fn make_tree(img: &Path) -> Vec<(String, u64)> {
    let mode = OpenMode {
        write: true,
        exclusive: false,
    };
    let vol = Volume::open(Box::new(FileDevice::open(img, mode).unwrap())).unwrap();
    let mut made = Vec::new();
    let root = vol.root_blkno();
    let mk = |parent: u64, name: &str| {
        ocfs2_format::link::make_subdir(&vol, 0, parent, name.as_bytes(), &|_| true)
            .expect("make a directory")
    };
    let a = mk(root, "a");
    let b = mk(a, "b");
    let c = mk(b, "c");
    let x = mk(root, "x");
    made.extend([
        ("/a".to_string(), a),
        ("/a/b".into(), b),
        ("/a/b/c".into(), c),
        ("/x".into(), x),
    ]);
    made
}

/// A session reads its requests as they come: a bad one prints its error
/// and the rest run; `quit` ends it; `help` lists every request.
#[test]
fn a_session_goes_on_past_a_bad_request_and_ends_at_quit() {
    let dir = scratch("rescue-session-");
    let img = dir.path().join("v.img");
    mkfs_theirs(&img, 256 * MIB, &[]);
    enable_mmp(&img);
    let mut child = Command::new(DEBUGFS)
        .arg(&img)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"help\nbogus request\nstats\nquit\nslotmap\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for r in [
        "cat PATH",
        "dump [-p] PATH HOSTFILE",
        "findpath INODE",
        "ncheck INODE",
        "mmp heartbeat",
        "mmp set",
        "hb [--watch",
        "quit",
    ] {
        assert!(stdout.contains(r), "help lacks {r}: {}", describe(&out));
    }
    assert!(
        stdout.contains("Max Node Slots"),
        "stats did not run: {}",
        describe(&out)
    );
    assert!(
        !stdout.contains("Slot map:"),
        "a request after quit ran: {}",
        describe(&out)
    );
    assert_eq!(stderr.lines().count(), 1, "{}", describe(&out));
    assert!(
        stderr.contains("unknown request 'bogus'"),
        "{}",
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(16), "{}", describe(&out));
}

/// `cat` and `dump [-p]` copy files out byte for byte as debugfs.ocfs2
/// does, on a volume whose MMP check would refuse a mount (a slot held).
#[test]
fn cat_and_dump_agree_with_debugfs_ocfs2() {
    let dir = scratch("rescue-files-");
    let img = dir.path().join("v.img");
    mkfs_theirs(&img, 256 * MIB, &["--fs-features=usrquota"]);
    enable_mmp(&img);
    // A held slot: the kind of volume that will not mount.
    let held = Command::new(DEBUGFS)
        .args(["-w", "-R", "mmp set --force 1 0x00000007"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(held.status.success(), "{}", describe(&held));
    let plain = without_mmp(&img, dir.path());
    for f in ["//slot_map", "//aquota.user", "//journal:0001"] {
        let a = ours(&["-R", &format!("cat {f}")], &img);
        assert!(a.status.success(), "cat {f}: {}", describe(&a));
        let b = theirs(&format!("cat {f}"), &plain);
        assert!(
            !b.stdout.is_empty(),
            "debugfs.ocfs2 cat {f}: {}",
            describe(&b)
        );
        assert_eq!(a.stdout, b.stdout, "cat {f}");
        let (ha, hb) = (dir.path().join("ours.bin"), dir.path().join("theirs.bin"));
        let _ = std::fs::remove_file(&ha);
        let _ = std::fs::remove_file(&hb);
        let d = ours(&["-R", &format!("dump -p {f} {}", s(&ha))], &img);
        assert!(d.status.success(), "dump -p {f}: {}", describe(&d));
        theirs(&format!("dump -p {f} {}", s(&hb)), &plain);
        assert_eq!(
            std::fs::read(&ha).unwrap(),
            std::fs::read(&hb).unwrap(),
            "dump {f}"
        );
        let (ma, mb) = (
            std::fs::metadata(&ha).unwrap(),
            std::fs::metadata(&hb).unwrap(),
        );
        assert_eq!(ma.mode(), mb.mode(), "dump -p {f}: mode");
        assert_eq!(ma.mtime(), mb.mtime(), "dump -p {f}: mtime");
    }
    // A directory is not a file; a missing path is named.
    let r = ours(&["-R", "cat /"], &img);
    assert_eq!(r.status.code(), Some(4), "{}", describe(&r));
    assert!(String::from_utf8_lossy(&r.stderr).contains("is a directory"));
    let r = ours(&["--json", "-R", "cat //slot_map"], &img);
    let j: Value = serde_json::from_slice(&r.stdout).expect("one JSON object");
    assert_eq!(j["size"], 4096, "{j}");
}

/// `findpath` and `ncheck` print what debugfs.ocfs2 prints.
#[test]
fn findpath_and_ncheck_agree_with_debugfs_ocfs2() {
    let dir = scratch("rescue-paths-");
    let img = dir.path().join("v.img");
    mkfs_theirs(&img, 256 * MIB, &[]);
    let tree = make_tree(&img);
    enable_mmp(&img);
    let plain = without_mmp(&img, dir.path());
    let c = tree.iter().find(|t| t.0 == "/a/b/c").unwrap().1;
    let x = tree.iter().find(|t| t.0 == "/x").unwrap().1;
    let sys = Volume::open(Box::new(
        FileDevice::open(&img, OpenMode::default()).unwrap(),
    ))
    .unwrap()
    .system_inode("journal:0001")
    .unwrap();
    // debugfs.ocfs2 takes inode numbers as <N> (ours also takes N).
    for req in [
        format!("findpath <{c}>"),
        format!("findpath <{sys}>"),
        format!("ncheck <{x}> <{c}> <{sys}>"),
    ] {
        let a = ours(&["-R", &req], &img);
        assert!(a.status.success(), "{req}: {}", describe(&a));
        let b = theirs(&req, &plain);
        assert_eq!(
            String::from_utf8_lossy(&a.stdout),
            String::from_utf8_lossy(&b.stdout),
            "{req}"
        );
    }
    let r = ours(&["-R", "findpath 999999"], &img);
    assert_eq!(r.status.code(), Some(4), "{}", describe(&r));
    let a = ours(&["-R", &format!("findpath {c}")], &img);
    assert_eq!(
        String::from_utf8_lossy(&a.stdout),
        format!("\t{c}\t/a/b/c/\n")
    );
}

/// The rows of an icheck table: block -> (inode or Unused/Unknown, offset).
fn icheck_rows(out: &[u8]) -> std::collections::BTreeMap<u64, (String, String)> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let b = w.first()?.parse().ok()?;
            let off = w
                .get(2)
                .filter(|o| o.parse::<u64>().is_ok())
                .map(|o| o.to_string())
                .unwrap_or_default();
            Some((b, (w.get(1)?.to_string(), off)))
        })
        .collect()
}

/// `icheck` names each block's owner as debugfs.ocfs2 does wherever that one
/// knows it (and more where it says Unknown); `frag` prints the same line.
#[test]
fn icheck_and_frag_agree_with_debugfs_ocfs2() {
    let dir = scratch("rescue-blocks-");
    let img = dir.path().join("v.img");
    mkfs_theirs(&img, 256 * MIB, &["--fs-features=usrquota"]);
    make_tree(&img);
    enable_mmp(&img);
    let plain = without_mmp(&img, dir.path());
    let vol = Volume::open(Box::new(
        FileDevice::open(&img, OpenMode::default()).unwrap(),
    ))
    .unwrap();
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    let last = u64::from(vol.clusters()) * bpc - 1;
    let mut blocks: Vec<u64> = vec![0, 1, 2, 3, 4, 5, 8, 40, 100, 1000, last];
    for p in [
        "//journal:0000",
        "//journal:0001",
        "//slot_map",
        "//aquota.user",
        "//orphan_dir:0001",
        "/",
        "/a/b/c",
        "//",
    ] {
        let a = ours(&["-R", &format!("frag {p}")], &img);
        assert!(a.status.success(), "frag {p}: {}", describe(&a));
        let b = theirs(&format!("frag {p}"), &plain);
        assert_eq!(
            String::from_utf8_lossy(&a.stdout),
            String::from_utf8_lossy(&b.stdout),
            "frag {p}"
        );
        let st = ours(&["--json", "-R", &format!("stat {p}")], &img);
        let j: Value = serde_json::from_slice(&st.stdout).expect("stat --json");
        blocks.push(j["inode"].as_u64().unwrap());
        // Inline files and directories have no extents.
        for e in j["extents"].as_array().into_iter().flatten() {
            let (b, n) = (
                e["blkno"].as_u64().unwrap(),
                e["clusters"].as_u64().unwrap(),
            );
            if n > 0 {
                blocks.extend([b, b + n * bpc / 2, b + n * bpc - 1]);
            }
        }
    }
    let list: Vec<String> = blocks.iter().map(u64::to_string).collect();
    let req = format!("icheck {}", list.join(" "));
    let a = ours(&["-R", &req], &img);
    assert!(a.status.success(), "{req}: {}", describe(&a));
    let b = theirs(&req, &plain);
    let (ra, rb) = (icheck_rows(&a.stdout), icheck_rows(&b.stdout));
    assert_eq!(
        ra.len(),
        rb.len(),
        "{}
{}",
        describe(&a),
        describe(&b)
    );
    let mut known = 0;
    for (blk, t) in &rb {
        if t.0 != "Unknown" {
            assert_eq!(ra.get(blk), Some(t), "block {blk}: {}", describe(&a));
            known += 1;
        }
    }
    assert!(
        known >= rb.len() / 2,
        "debugfs.ocfs2 knew only {known}: {}",
        describe(&b)
    );
    // Data blocks carry their offset in the file; JSON is one object.
    let j = ours(&["--json", "-R", &req], &img);
    let j: Value = serde_json::from_slice(&j.stdout).expect("one JSON object");
    let rows = j["blocks"].as_array().unwrap();
    assert_eq!(rows.len(), blocks.len());
    assert!(rows
        .iter()
        .any(|r| r["what"] == "data" && r["offset"].is_u64()));
    // A block past the end is refused with one line naming it.
    let r = ours(&["-R", &format!("icheck {}", last + 1)], &img);
    assert_eq!(r.status.code(), Some(4), "{}", describe(&r));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(&format!("block {}", last + 1)) && err.lines().count() == 1,
        "{err}"
    );
}

/// mounted.ocfs2-mmp over image files: one free with MMP, one held by a
/// live heartbeat, three whose slot 1 holds a sequence that no longer moves
/// (a dead mount: only a full wait tells), one without MMP, one not OCFS2.
/// `-d` tells them apart from their superblocks; `-f` gives each its state,
/// all waits at once.
#[test]
fn mounted_lists_volumes_and_who_holds_them() {
    let dir = scratch("rescue-mounted-");
    let p = |n: &str| dir.path().join(n);
    let (free, held, plain, other) = (p("free.img"), p("held.img"), p("plain.img"), p("other.img"));
    let stale: Vec<PathBuf> = (0..3).map(|i| p(&format!("stale{i}.img"))).collect();
    mkfs_theirs(&free, 128 * MIB, &["-L", "freevol"]);
    enable_mmp(&free);
    for v in stale.iter().chain([&held]) {
        cp_sparse(&free, v);
    }
    for v in &stale {
        let r = ours(&["-w", "-R", "mmp set --force 1 0x00001234"], v);
        assert!(r.status.success(), "{}", describe(&r));
    }
    mkfs_theirs(&plain, 128 * MIB, &["-L", "plainvol"]);
    sparse_file(&other, 16 * MIB);
    let mut devs: Vec<String> = [&free, &held, &plain, &other]
        .iter()
        .map(|x| s(x).to_string())
        .collect();
    devs.extend(stale.iter().map(|x| s(x).to_string()));
    let run = |args: &[&str]| {
        Command::new(MOUNTED)
            .args(args)
            .args(&devs)
            .output()
            .expect("run mounted.ocfs2-mmp")
    };
    let d = run(&["-d", "--json"]);
    assert_eq!(d.status.code(), Some(0), "{}", describe(&d));
    let j: Value = serde_json::from_slice(&d.stdout).expect("one JSON object");
    let vols = j["volumes"].as_array().unwrap();
    assert_eq!(vols.len(), 7, "{j}");
    assert_eq!(vols[0]["mmp"], true, "{j}");
    assert_eq!(vols[0]["label"], "freevol", "{j}");
    assert_eq!(vols[2]["mmp"], false, "{j}");
    assert_eq!(vols[3]["ocfs2"], false, "{j}");
    assert!(vols[0].get("state").is_none(), "-d waits for nothing: {j}");
    let text = run(&["-d"]);
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("plainvol") && t.contains("not OCFS2"), "{t}");
    // A live holder: a heartbeat in another process.
    let mut hb = Command::new(DEBUGFS)
        .args(["-w", "-R", "mmp heartbeat --for 90"])
        .arg(&held)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(13));
    let started = Instant::now();
    let f = run(&["-f", "--json"]);
    let took = started.elapsed();
    let _ = hb.kill();
    let _ = hb.wait();
    assert_eq!(f.status.code(), Some(0), "{}", describe(&f));
    let j: Value = serde_json::from_slice(&f.stdout).expect("one JSON object");
    let kinds: Vec<String> = j["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"]["kind"].as_str().unwrap_or("-").to_string())
        .collect();
    assert_eq!(
        kinds,
        ["free", "mounted", "free", "-", "stale", "stale", "stale"],
        "{j}"
    );
    // A stale sequence is known only after the whole wait (11 s at update
    // interval 1): the three checks ran at once, not one after the other
    // (33 s).
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(25),
        "-f took {took:?}"
    );
    // Nothing OCFS2 named: exit 1; a path that is not there: 8.
    let none = Command::new(MOUNTED).arg(&other).output().unwrap();
    assert_eq!(none.status.code(), Some(1), "{}", describe(&none));
    let missing = Command::new(MOUNTED)
        .arg(p("missing.img"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(8), "{}", describe(&missing));
    assert_eq!(String::from_utf8_lossy(&missing.stderr).lines().count(), 1);
}

/// mounted.ocfs2-mmp on loop devices (a shared disk's stand-in) while the
/// other host writes a live sequence into one volume's slot 0 below the
/// page cache (O_DIRECT): the scan with no argument finds both volumes, and
/// `-f` sees that one mounted and the other free.
#[test]
fn mounted_on_loop_devices_against_another_host() {
    let dir = scratch("rescue-loop-");
    let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
    mkfs_theirs(&a, 128 * MIB, &["-L", "loopfree"]);
    enable_mmp(&a);
    mkfs_theirs(&b, 128 * MIB, &["-L", "loopheld"]);
    enable_mmp(&b);
    let (la, lb) = (Loop::attach(&a, 512), Loop::attach(&b, 512));
    let map = {
        let v = Volume::open(Box::new(FileDevice::open(&b, OpenMode::default()).unwrap())).unwrap();
        v.slot_map_layout().unwrap().1[0].1
    };
    let host = Host::open(&b);
    let _kmmpd = Writer::kmmpd(&host, map, Duration::from_secs(1));
    std::thread::sleep(Duration::from_secs(2));
    let scan = Command::new(MOUNTED)
        .args(["-d", "--json"])
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&scan.stdout).expect("one JSON object");
    let label_of = |dev: &str| {
        j["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["device"] == dev)
            .map(|v| v["label"].clone())
    };
    assert_eq!(label_of(&la.dev), Some("loopfree".into()), "scan: {j}");
    assert_eq!(label_of(&lb.dev), Some("loopheld".into()), "scan: {j}");
    let f = Command::new(MOUNTED)
        .args(["-f", "--json", &la.dev, &lb.dev])
        .output()
        .unwrap();
    assert_eq!(f.status.code(), Some(0), "{}", describe(&f));
    let j: Value = serde_json::from_slice(&f.stdout).expect("one JSON object");
    let kinds: Vec<&str> = j["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"]["kind"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(kinds, ["free", "mounted"], "{j}");
}
