//! Tools started at the same instant never hold a volume together.
//!
//! Each round releases N tools at once (fsck -fy, tunefs, mkfs -F over the
//! volume, the heartbeat, mixed) from a FIFO barrier, each on its own path
//! to the same disk: the image file or one of several loop devices over it
//! (one per tool, as tools on several hosts would be; on one block device
//! the exclusive open alone would keep them apart). The test hook
//! (`OCFS2_MMP_HOLD_HOOK=FILE:SECONDS`) makes every holder record when it
//! took and gave back the volume (or found it taken) and hold it a few
//! seconds longer; the
//! intervals are read from that record, not inferred from exit codes: they
//! never overlap, and every round has a holder.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

mod common;
use common::shared::{Host, Loop};
use common::{cmd, find_tool, scratch, show, sparse_file};

const DEBUGFS: &str = env!("CARGO_BIN_EXE_debugfs-mmp");
const TUNEFS: &str = env!("CARGO_BIN_EXE_tunefs-ocfs2-mmp");
const FSCK: &str = env!("CARGO_BIN_EXE_fsck-ocfs2-mmp");
const MKFS: &str = env!("CARGO_BIN_EXE_mkfs-ocfs2-mmp");
const HOLD_S: u64 = 2;

const MKFS_ARGS: &[&str] = &[
    "-q",
    "-F",
    "-M",
    "local",
    "-N",
    "2",
    "-b",
    "4096",
    "-C",
    "4096",
    "-L",
    "race",
    "--fs-features=mmp",
    "--mmp-update-interval=1",
];

/// The tool of racer `i` in round `round`, on `dev`.
fn racer(i: usize, round: usize, dev: &str) -> (String, Vec<String>) {
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut args = match (i + round) % 5 {
        0 => (FSCK, own(&["-fy"])),
        1 => (
            TUNEFS,
            vec![
                "-y".into(),
                format!("--mmp-update-interval={}", 1 + (i + round) % 4),
            ],
        ),
        2 => (MKFS, own(MKFS_ARGS)),
        3 => (DEBUGFS, own(&["-w", "-R", "mmp heartbeat --for 2"])),
        _ => (FSCK, own(&["-fy"])),
    };
    args.1.push(dev.to_string());
    (args.0.to_string(), args.1)
}

struct Interval {
    pid: u32,
    from: u128,
    to: u128,
}

/// The hook's record: `acquire PID NANOS` / `release PID NANOS` lines.
fn intervals(log: &Path, report: &str) -> Vec<Interval> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut open: Vec<(u32, u128)> = Vec::new();
    let mut out = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(what), Some(pid), Some(ns)) = (f.first(), f.get(1), f.get(2)) else {
            panic!("bad hook line {l:?}");
        };
        let pid: u32 = pid.parse().expect("pid");
        let ns: u128 = ns.parse().expect("nanoseconds");
        match *what {
            "acquire" => open.push((pid, ns)),
            // Given back, or found taken by another: held no longer.
            "release" | "lost" => {
                let i = open
                    .iter()
                    .position(|&(p, _)| p == pid)
                    .unwrap_or_else(|| panic!("release without acquire: {l}\n{text}"));
                let (_, from) = open.remove(i);
                out.push(Interval { pid, from, to: ns });
            }
            _ => panic!("bad hook line {l:?}"),
        }
    }
    assert!(
        open.is_empty(),
        "holders that never gave the volume back:\n{text}\n{report}"
    );
    out
}

fn round(devs: &[String], round: usize, log: &Path, fifo: &Path) -> Vec<String> {
    let _ = std::fs::remove_file(log);
    let children: Vec<(String, Child)> = devs
        .iter()
        .enumerate()
        .map(|(i, dev)| {
            let (bin, args) = racer(i, round, dev);
            let what = format!("{bin} {}", args.join(" "));
            // Each waits at the barrier, then execs its tool.
            let child = cmd("sh")
                .arg("-c")
                .arg(r#"read _ < "$0"; exec "$@""#)
                .arg(fifo)
                .arg(&bin)
                .args(&args)
                .env("OCFS2_MMP_HOLD_HOOK", format!("{}:{HOLD_S}", log.display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("sh");
            (what, child)
        })
        .collect();
    // Let every racer block on the FIFO, then open it for writing and close
    // it: all reads return at once.
    std::thread::sleep(Duration::from_millis(500));
    drop(
        std::fs::OpenOptions::new()
            .write(true)
            .open(fifo)
            .expect("open the barrier"),
    );
    let mut report = Vec::new();
    for (what, c) in children {
        let out = c.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{what}\n{}", show(&out));
        report.push(format!(
            "{what}: exit {:?}: {}",
            out.status.code(),
            err.trim()
        ));
    }
    report
}

fn race(paths: usize, rounds: usize) {
    let dir = scratch("race-");
    let img = dir.path().join("r.img");
    sparse_file(&img, 128 << 20);
    let o = cmd(MKFS).args(MKFS_ARGS).arg(&img).output().expect("mkfs");
    assert!(o.status.success(), "{}", show(&o));
    let loops: Vec<Loop> = (1..paths).map(|_| Loop::attach(&img, 512)).collect();
    let mut devs: Vec<String> = vec![img.display().to_string()];
    devs.extend(loops.iter().map(|l| l.dev.clone()));
    let fifo: PathBuf = dir.path().join("barrier");
    let st = cmd(find_tool("mkfifo", "coreutils"))
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(st.success());
    let log = dir.path().join("hold.log");
    for r in 0..rounds {
        let report = round(&devs, r, &log, &fifo);
        let all = format!("round {r}:\n{}", report.join("\n"));
        let iv = intervals(&log, &all);
        assert!(!iv.is_empty(), "no tool held the volume in {all}");
        for (i, a) in iv.iter().enumerate() {
            for b in &iv[i + 1..] {
                assert!(
                    a.to <= b.from || b.to <= a.from,
                    "pids {} and {} held the volume at the same time ({}..{} and {}..{} ns) in {all}",
                    a.pid,
                    b.pid,
                    a.from,
                    a.to,
                    b.from,
                    b.to
                );
            }
        }
        // Everyone gave back: slot 0 is free for the next round.
        let host = Host::open(&img);
        let map = slot_map_offset(&img);
        assert_eq!(host.slot(map, 0).0, 0, "slot 0 after {all}");
        eprintln!(
            "race: round {r}: {} holder(s), {} racers",
            iv.len(),
            devs.len()
        );
    }
}

/// Slot map offset from our own reader (the volume is remade by mkfs in
/// the rounds; its geometry stays).
fn slot_map_offset(img: &Path) -> u64 {
    let o = cmd(DEBUGFS)
        .args(["--json", "-R", "stat //slot_map"])
        .arg(img)
        .output()
        .expect("debugfs-mmp");
    let j: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    let blkno = j["extents"][0]["blkno"]
        .as_u64()
        .unwrap_or_else(|| panic!("no extent in {j}"));
    blkno * 4096
}

#[test]
fn eight_tools_on_eight_paths() {
    race(8, 3);
}

#[test]
fn four_tools_on_four_paths() {
    race(4, 3);
}
