//! `debugfs-mmp -R "mmp status"` against every value of the MMP protocol
//! table (docs/mmp-protocol.md), on volumes made by Debian's `mkfs.ocfs2`
//! (`-M local` and clustered, extended slot map, 4 slots), with the MMP bit
//! turned on and the slots written through the format crate's own write path
//! (`Volume::write_super`, `Volume::slot_map_layout` + `Volume::write_slot`,
//! O_DIRECT).
//!
//! Exit codes (e2mmpstatus): 0 safe, 1 in use / fsck / unknown marker, 2
//! could not tell. Most sequence cases use `-i` (no wait); the few that need
//! the kernel's 11 s wait run side by side in threads of one test.

use ocfs2_format::features::incompat;
use ocfs2_format::{FileDevice, OpenMode, Volume};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{find_tool, scratch, sparse_file, MIB};

const BIN: &str = env!("CARGO_BIN_EXE_debugfs-mmp");
const SLOTS: u16 = 4;

const SEQ_MAX: u32 = 0xE24D_4D4F;
const SEQ_FSCK: u32 = 0xE24D_4D50;
const VALID_CLUSTER: u32 = 0xE24D_4D55;
const VALID_NOCLUSTER: u32 = 0xE24D_4D5A;
const SEQ_CLEAN: u32 = 0xFF4D_4D50;
const UNKNOWN_HIGH: u32 = 0xF000_0000;
const UNKNOWN_GAP: u32 = 0xE24D_4D51;

/// The kernel's wait at the default interval of 5 s: min(2 x 5 + 1, 5 + 60).
const WAIT: u64 = 11;
/// A run that must not wait finishes well under this.
const NO_WAIT: Duration = Duration::from_secs(5);

// ------------------------------------------------------------ images

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Local,
    Clustered,
}

struct Img {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Img {
    fn dev(&self) -> &str {
        self.path.to_str().expect("UTF-8 temp path")
    }
}

/// `mkfs.ocfs2 -q -N 4 --fs-features=extended-slotmap` on a 128 MiB sparse
/// file: `-M local`, or clustered (`-F`: no cluster stack runs here, so the
/// cluster check is skipped; mkfs then asks before overwriting the signature
/// its own forked children already wrote, hence the `y` answers).
fn make_volume(kind: Kind) -> Img {
    let mkfs = find_tool("mkfs.ocfs2", "ocfs2-tools");
    let dir = scratch("mmp_status-");
    let path = dir.path().join(format!("{kind:?}.img").to_lowercase());
    sparse_file(&path, 128 * MIB);
    let mut cmd = Command::new(&mkfs);
    cmd.args(["-q", "-N", "4", "--fs-features=extended-slotmap"]);
    match kind {
        Kind::Local => cmd.args(["-M", "local"]),
        Kind::Clustered => cmd.arg("-F"),
    };
    cmd.arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", mkfs.display()));
    {
        let mut stdin = child.stdin.take().expect("stdin piped");
        let _ = stdin.write_all("y\n".repeat(16).as_bytes());
    }
    let out = child.wait_with_output().expect("wait for mkfs.ocfs2");
    assert!(
        out.status.success(),
        "mkfs.ocfs2 ({kind:?}) failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let img = Img { _dir: dir, path };
    let vol = open_rw(&img);
    assert_eq!(vol.max_slots(), SLOTS);
    assert_eq!(
        vol.features().has_incompat(incompat::LOCAL_MOUNT),
        kind == Kind::Local,
        "mkfs.ocfs2 made the wrong kind of volume"
    );
    assert!(vol.features().has_incompat(incompat::EXTENDED_SLOT_MAP));
    assert!(!vol.features().has_incompat(incompat::MMP));
    img
}

fn open_rw(img: &Img) -> Volume {
    let dev = FileDevice::open(
        &img.path,
        OpenMode {
            write: true,
            exclusive: false,
        },
    )
    .expect("open image read-write");
    // The second actor's writes must bypass the page cache like the tool's reads.
    assert_eq!(
        ocfs2_format::BlockIo::direct_warning(&dev),
        None,
        "O_DIRECT refused on {}",
        img.dev()
    );
    Volume::open(Box::new(dev)).expect("open volume")
}

/// MMP on: `s_feature_incompat |= 0x10000`, `s_mmp_update_interval = 5`.
fn enable_mmp(img: &Img) {
    assert_eq!(incompat::MMP, 0x1_0000);
    let mut vol = open_rw(img);
    let mut sb = *vol.sb();
    sb.s_feature_incompat
        .set(sb.s_feature_incompat.get() | 0x1_0000);
    sb.s_mmp_update_interval.set(5);
    vol.write_super(&sb).expect("write superblock");
    let vol = open_rw(img);
    assert!(vol.features().has_incompat(incompat::MMP));
    assert_eq!(vol.sb().s_mmp_update_interval.get(), 5);
}

fn mmp_volume(kind: Kind) -> Img {
    let img = make_volume(kind);
    enable_mmp(&img);
    img
}

/// Write every slot: the given (slot, value, node) entries, `0` elsewhere.
fn set_slots(img: &Img, entries: &[(u16, u32, u32)]) {
    let vol = open_rw(img);
    let (_, runs) = vol.slot_map_layout().expect("slot map layout");
    for slot in 0..SLOTS {
        let (raw, node) = entries
            .iter()
            .find(|e| e.0 == slot)
            .map_or((0, 0), |e| (e.1, e.2));
        vol.write_slot(&runs, slot, raw, node).expect("write slot");
    }
    // Read back through the crate's cache-bypassing read.
    let map = vol.read_slot_map().expect("read slot map");
    for s in &map.slots {
        let want = entries.iter().find(|e| e.0 == s.index).map_or(0, |e| e.1);
        assert_eq!(s.raw, want, "slot {} after write", s.index);
    }
}

/// One slot, as the second actor (a kmmpd stand-in) writes it.
fn write_one_slot(img: &Img, slot: u16, raw: u32, node: u32) {
    let vol = open_rw(img);
    let (_, runs) = vol.slot_map_layout().expect("slot map layout");
    vol.write_slot(&runs, slot, raw, node).expect("write slot");
}

// ------------------------------------------------------------ running

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn json(&self) -> Value {
        let line = self.stdout.lines().next().unwrap_or_default();
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.describe()))
    }
    fn describe(&self) -> String {
        format!(
            "exit {} after {:.1?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn debugfs-mmp")
}

/// Wait for a spawned run, reading what is left of its output.
fn finish(mut child: Child, started: Instant, stderr_seen: String) -> Run {
    let mut stdout = String::new();
    let mut so = child.stdout.take().expect("stdout piped");
    let t_out = std::thread::spawn(move || {
        let _ = so.read_to_string(&mut stdout);
        stdout
    });
    let mut rest = String::new();
    if let Some(mut se) = child.stderr.take() {
        let _ = se.read_to_string(&mut rest);
    }
    let deadline = started + Duration::from_secs(WAIT + 45);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("debugfs-mmp still running after {} s", WAIT + 45);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    let stdout = t_out.join().expect("stdout reader");
    Run {
        code: status.code().expect("exit code, not a signal"),
        stdout,
        stderr: stderr_seen + &rest,
        elapsed,
    }
}

fn debugfs(args: &[&str]) -> Run {
    let started = Instant::now();
    let child = spawn(args);
    finish(child, started, String::new())
}

fn status(img: &Img, info: bool) -> Run {
    let req = if info { "mmp status -i" } else { "mmp status" };
    let r = debugfs(&["--json", "-R", req, img.dev()]);
    assert!(
        !r.stderr.contains("panicked"),
        "debugfs-mmp panicked\n{}",
        r.describe()
    );
    r
}

/// State names and raw values of `-R slotmap --json`.
fn slotmap_states(img: &Img) -> Vec<(String, u64, u64)> {
    let r = debugfs(&["--json", "-R", "slotmap", img.dev()]);
    assert_eq!(r.code, 0, "slotmap\n{}", r.describe());
    let j = r.json();
    assert_eq!(j["format"], "extended", "{j}");
    j["slots"]
        .as_array()
        .expect("slots array")
        .iter()
        .map(|s| {
            (
                s["state"].as_str().expect("state").to_string(),
                s["raw"].as_u64().expect("raw"),
                s["node_field"].as_u64().expect("node_field"),
            )
        })
        .collect()
}

fn state_name(v: u32) -> &'static str {
    match v {
        0 => "empty",
        1..=SEQ_MAX => "sequence",
        SEQ_FSCK => "fsck",
        VALID_CLUSTER => "cluster",
        VALID_NOCLUSTER => "nocluster",
        SEQ_CLEAN => "clean",
        _ => "unknown",
    }
}

/// No stderr output other than warnings (O_DIRECT fallbacks and the like).
fn quiet_stderr(r: &Run, what: &str) {
    for line in r.stderr.lines() {
        assert!(
            line.starts_with("debugfs-mmp: warning: "),
            "{what}: unexpected stderr line {line:?}\n{}",
            r.describe()
        );
    }
}

// ------------------------------------------------------------ the table

struct Case {
    name: &'static str,
    slots: &'static [(u16, u32, u32)],
    /// `-i`: do not wait (for sequences).
    info: bool,
    code: i32,
    kind: &'static str,
    /// Expected extra fields of the verdict object.
    verdict_fields: &'static [(&'static str, u64)],
}

const CASES: &[Case] = &[
    Case {
        name: "all empty",
        slots: &[],
        info: false,
        code: 0,
        kind: "clean",
        verdict_fields: &[],
    },
    // On the seed's kernel a clean unmount leaves 0; SEQ_CLEAN stays on disk
    // only while a read-only mount lasts (the interop suite saw it), so the
    // tools cannot call it safe.
    Case {
        name: "SEQ_CLEAN in slot 0",
        slots: &[(0, SEQ_CLEAN, 0)],
        info: false,
        code: 2,
        kind: "read_only_mount",
        verdict_fields: &[("slot", 0)],
    },
    Case {
        name: "SEQ_CLEAN and 0 mixed",
        slots: &[(0, SEQ_CLEAN, 0), (2, SEQ_CLEAN, 2), (3, SEQ_CLEAN, 3)],
        info: false,
        code: 2,
        kind: "read_only_mount",
        verdict_fields: &[("slot", 0)],
    },
    Case {
        name: "SEQ_FSCK in slot 0",
        slots: &[(0, SEQ_FSCK, 0)],
        info: false,
        code: 1,
        kind: "fsck_running",
        verdict_fields: &[("slot", 0)],
    },
    Case {
        // FSCK wins before any wait, even with a sequence to watch.
        name: "SEQ_FSCK in slot 3, sequence in slot 0",
        slots: &[(0, 0x1234, 0), (3, SEQ_FSCK, 3)],
        info: false,
        code: 1,
        kind: "fsck_running",
        verdict_fields: &[("slot", 3)],
    },
    Case {
        name: "unknown 0xF0000000 in slot 1",
        slots: &[(1, UNKNOWN_HIGH, 1)],
        info: false,
        code: 1,
        kind: "unknown_value",
        verdict_fields: &[("slot", 1), ("value", UNKNOWN_HIGH as u64)],
    },
    Case {
        name: "unknown 0xE24D4D51 in slot 0, sequence in slot 2",
        slots: &[(0, UNKNOWN_GAP, 0), (2, 77, 2)],
        info: false,
        code: 1,
        kind: "unknown_value",
        verdict_fields: &[("slot", 0), ("value", UNKNOWN_GAP as u64)],
    },
    Case {
        name: "VALID_CLUSTER in slot 0",
        slots: &[(0, VALID_CLUSTER, 1)],
        info: false,
        code: 2,
        kind: "no_liveness",
        verdict_fields: &[("slot", 0), ("value", VALID_CLUSTER as u64)],
    },
    Case {
        name: "VALID_NOCLUSTER in slot 2",
        slots: &[(2, VALID_NOCLUSTER, 5)],
        info: false,
        code: 2,
        kind: "no_liveness",
        verdict_fields: &[("slot", 2), ("value", VALID_NOCLUSTER as u64)],
    },
    Case {
        name: "VALID_CLUSTER in slots 1 and 3, SEQ_CLEAN in slot 0",
        slots: &[
            (0, SEQ_CLEAN, 0),
            (1, VALID_CLUSTER, 7),
            (3, VALID_CLUSTER, 9),
        ],
        info: false,
        code: 2,
        kind: "read_only_mount",
        verdict_fields: &[("slot", 0)],
    },
    Case {
        name: "sequence 1 (or a stock kernel's flag) in slot 0, -i",
        slots: &[(0, 1, 0)],
        info: true,
        code: 2,
        kind: "not_watched",
        verdict_fields: &[("slot", 0), ("value", 1)],
    },
    Case {
        name: "sequence SEQ_MAX in slot 2, -i",
        slots: &[(2, SEQ_MAX, 2)],
        info: true,
        code: 2,
        kind: "not_watched",
        verdict_fields: &[("slot", 2), ("value", SEQ_MAX as u64)],
    },
    Case {
        name: "sequence in slot 0 and VALID_CLUSTER in slot 1, -i",
        slots: &[(0, 0x1234_5678, 0), (1, VALID_CLUSTER, 1)],
        info: true,
        code: 2,
        kind: "not_watched",
        verdict_fields: &[("slot", 0), ("value", 0x1234_5678)],
    },
    Case {
        // -i never changes the static verdicts.
        name: "SEQ_FSCK in slot 1, -i",
        slots: &[(1, SEQ_FSCK, 1)],
        info: true,
        code: 1,
        kind: "fsck_running",
        verdict_fields: &[("slot", 1)],
    },
    Case {
        name: "all empty, -i",
        slots: &[],
        info: true,
        code: 0,
        kind: "clean",
        verdict_fields: &[],
    },
];

fn run_table(kind: Kind) {
    let img = mmp_volume(kind);
    for case in CASES {
        let what = format!("{kind:?} volume, {}", case.name);
        set_slots(&img, case.slots);

        // The slot map as debugfs-mmp decodes it.
        let states = slotmap_states(&img);
        assert_eq!(states.len(), usize::from(SLOTS), "{what}");
        for slot in 0..SLOTS {
            let (raw, node) = case
                .slots
                .iter()
                .find(|e| e.0 == slot)
                .map_or((0, 0), |e| (e.1, e.2));
            let got = &states[usize::from(slot)];
            assert_eq!(
                (got.0.as_str(), got.1, got.2),
                (state_name(raw), u64::from(raw), u64::from(node)),
                "{what}: slotmap slot {slot}"
            );
        }

        let r = status(&img, case.info);
        assert_eq!(r.code, case.code, "{what}: exit code\n{}", r.describe());
        assert!(
            r.elapsed < NO_WAIT,
            "{what}: took {:.1?}, no wait expected\n{}",
            r.elapsed,
            r.describe()
        );
        quiet_stderr(&r, &what);
        let j = r.json();
        let v = &j["verdict"];
        assert_eq!(v["kind"], case.kind, "{what}: verdict\n{j:#}");
        for (k, want) in case.verdict_fields {
            assert_eq!(v[*k].as_u64(), Some(*want), "{what}: verdict.{k}\n{j:#}");
        }
        assert_eq!(
            j["exit_code"].as_i64(),
            Some(i64::from(case.code)),
            "{what}"
        );
        assert_eq!(j["safe"], case.code == 0, "{what}");
        assert_eq!(j["waited"], 0, "{what}");
        assert_eq!(j["mmp"], true, "{what}");
        assert_eq!(j["local"], kind == Kind::Local, "{what}");
        assert_eq!(j["format"], "extended", "{what}");
        assert_eq!(j["update_interval"], 5, "{what}");
        assert_eq!(j["check_interval"], 5, "{what}");
        assert_eq!(j["wait_time"], WAIT, "{what}");
        let slots = j["slots"].as_array().expect("slots");
        assert_eq!(slots.len(), usize::from(SLOTS), "{what}");
        for (i, s) in slots.iter().enumerate() {
            assert_eq!(s["slot"].as_u64(), Some(i as u64), "{what}");
            assert_eq!(s["state"], states[i].0.as_str(), "{what}: slot {i}");
            assert_eq!(s["raw"].as_u64(), Some(states[i].1), "{what}: slot {i}");
        }
        assert!(j["verdict_text"].as_str().is_some_and(|t| !t.is_empty()));

        // Text mode: same code, the verdict on stdout, nothing but warnings
        // on stderr (no wait to announce).
        let req = if case.info {
            "mmp status -i"
        } else {
            "mmp status"
        };
        let t = debugfs(&["-R", req, img.dev()]);
        assert_eq!(t.code, case.code, "{what}: text mode\n{}", t.describe());
        assert!(t.stdout.contains("Verdict: "), "{what}\n{}", t.describe());
        assert!(t.stdout.contains("MMP feature: enabled"), "{what}");
        quiet_stderr(&t, &format!("{what} (text)"));
    }
}

#[test]
fn protocol_values_local_volume() {
    run_table(Kind::Local);
}

#[test]
fn protocol_values_clustered_volume() {
    run_table(Kind::Clustered);
}

#[test]
fn feature_off_cannot_tell() {
    for kind in [Kind::Local, Kind::Clustered] {
        let img = make_volume(kind);
        for (slots, info) in [
            (&[][..], false),
            (&[(0u16, VALID_CLUSTER, 0u32)][..], false),
            (&[(0, 0x42, 0)][..], false),
            (&[(0, SEQ_FSCK, 0)][..], true),
        ] {
            set_slots(&img, slots);
            let r = status(&img, info);
            let what = format!("{kind:?} volume without MMP, slots {slots:x?}");
            assert_eq!(r.code, 2, "{what}\n{}", r.describe());
            assert!(r.elapsed < NO_WAIT, "{what}: waited\n{}", r.describe());
            let j = r.json();
            assert_eq!(j["verdict"]["kind"], "feature_off", "{what}\n{j:#}");
            assert_eq!(j["mmp"], false, "{what}");
            assert_eq!(j["waited"], 0, "{what}");
            quiet_stderr(&r, &what);
        }
        // stats says so too; turning it on shows in stats and in the check.
        let st = debugfs(&["--json", "-R", "stats", img.dev()]);
        assert_eq!(st.code, 0, "{}", st.describe());
        let names = st.json()["features"]["incompat"].clone();
        assert!(
            !names
                .as_array()
                .expect("names")
                .contains(&Value::from("mmp")),
            "{names}"
        );
        enable_mmp(&img);
        set_slots(&img, &[]);
        let st = debugfs(&["--json", "-R", "stats", img.dev()]);
        let j = st.json();
        assert!(
            j["features"]["incompat"]
                .as_array()
                .expect("names")
                .contains(&Value::from("mmp")),
            "{j:#}"
        );
        let r = status(&img, false);
        assert_eq!(r.code, 0, "{kind:?} after enabling MMP\n{}", r.describe());
        assert_eq!(r.json()["verdict"]["kind"], "clean");
    }
}

/// (case, slots, -i, last_mount, local allowed, cluster allowed, first used slot)
type RuleCase = (
    &'static str,
    &'static [(u16, u32, u32)],
    bool,
    &'static str,
    bool,
    bool,
    Option<u64>,
);

#[test]
fn same_kind_rule_json() {
    let img = mmp_volume(Kind::Local);
    let cases: [RuleCase; 5] = [
        (
            "VALID_CLUSTER in slot 0",
            &[(0, VALID_CLUSTER, 1)],
            false,
            "clustered",
            false,
            true,
            Some(0),
        ),
        (
            "sequence in slot 0",
            &[(0, 0x0BAD_CAFE, 0)],
            true,
            "non_clustered",
            true,
            false,
            Some(0),
        ),
        ("all empty", &[], false, "none", true, true, None),
        (
            "VALID_NOCLUSTER in slot 0",
            &[(0, VALID_NOCLUSTER, 0)],
            false,
            "non_clustered",
            true,
            false,
            Some(0),
        ),
        (
            "SEQ_CLEAN in slot 0, VALID_CLUSTER in slot 2",
            &[(0, SEQ_CLEAN, 0), (2, VALID_CLUSTER, 2)],
            false,
            "clustered",
            false,
            true,
            Some(2),
        ),
    ];
    for (name, slots, info, last, local, cluster, first) in cases {
        set_slots(&img, slots);
        let r = status(&img, info);
        let j = r.json();
        let rule = &j["same_kind_rule"];
        assert_eq!(rule["last_mount"], last, "{name}\n{j:#}");
        assert_eq!(rule["local_mount_allowed"], local, "{name}\n{j:#}");
        assert_eq!(rule["cluster_mount_allowed"], cluster, "{name}\n{j:#}");
        assert_eq!(rule["first_used_slot"].as_u64(), first, "{name}\n{j:#}");
        assert!(
            rule["explanation"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}\n{j:#}"
        );
        // The text form names the same kind.
        let req = if info { "mmp status -i" } else { "mmp status" };
        let t = debugfs(&["-R", req, img.dev()]);
        let want = match last {
            "clustered" => "Last mount: clustered",
            "non_clustered" => "Last mount: non-clustered",
            _ => "Last mount: none",
        };
        assert!(
            t.stdout.contains(want),
            "{name}: {want:?}\n{}",
            t.describe()
        );
    }
}

// ------------------------------------------------------------ the 11 s waits

/// Spawn `mmp status` and return as soon as it has announced its wait on
/// stderr; the rest of stderr keeps flowing through the returned receiver.
struct Watched {
    child: Child,
    started: Instant,
    announce: String,
    announced_after: Duration,
    lines: mpsc::Receiver<String>,
}

fn spawn_watching(img: &Img, json: bool) -> Watched {
    let mut args = vec![];
    if json {
        args.push("--json");
    }
    args.extend(["-R", "mmp status", img.dev()]);
    let started = Instant::now();
    let mut child = spawn(&args);
    let se = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(se).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let announce = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("debugfs-mmp announced no wait on stderr within 10 s");
        if !line.starts_with("debugfs-mmp: warning: ") {
            break line;
        }
    };
    Watched {
        child,
        started,
        announce,
        announced_after: started.elapsed(),
        lines: rx,
    }
}

fn finish_watched(w: Watched) -> Run {
    let Watched {
        child,
        started,
        announce,
        lines,
        ..
    } = w;
    let r = finish(child, started, String::new());
    let mut stderr = announce + "\n";
    while let Ok(l) = lines.recv_timeout(Duration::from_secs(2)) {
        stderr.push_str(&l);
        stderr.push('\n');
    }
    Run { stderr, ..r }
}

fn assert_announced(w: &Watched, slot: u16, value: u32, what: &str) {
    assert!(
        w.announce.starts_with("debugfs-mmp: ")
            && w.announce.contains(&format!("waiting {WAIT} s")),
        "{what}: first stderr line should announce the wait: {:?}",
        w.announce
    );
    assert!(
        w.announce.contains(&format!("slot {slot}"))
            && w.announce.contains(&format!("{value:#010x}")),
        "{what}: the announcement should name slot {slot} and {value:#010x}: {:?}",
        w.announce
    );
    assert!(
        w.announced_after < Duration::from_secs(WAIT / 2),
        "{what}: the wait was announced only after {:.1?}, not before sleeping",
        w.announced_after
    );
}

fn assert_waited(r: &Run, what: &str) {
    assert!(
        r.elapsed >= Duration::from_secs(WAIT),
        "{what}: finished after {:.1?}, before the {WAIT} s wait\n{}",
        r.elapsed,
        r.describe()
    );
    assert!(
        r.elapsed < Duration::from_secs(WAIT + 10),
        "{what}: took {:.1?}\n{}",
        r.elapsed,
        r.describe()
    );
}

/// A sequence nobody updates: exit 0 after the full wait, verdict "stale".
fn stale_json(kind: Kind) {
    let what = format!("{kind:?}: unchanged sequence, --json");
    let img = mmp_volume(kind);
    let seq = 0x00C0_FFEE;
    set_slots(&img, &[(0, seq, 0)]);
    let w = spawn_watching(&img, true);
    assert_announced(&w, 0, seq, &what);
    let r = finish_watched(w);
    assert_eq!(r.code, 0, "{what}\n{}", r.describe());
    assert_waited(&r, &what);
    let j = r.json();
    assert_eq!(j["verdict"]["kind"], "stale", "{what}\n{j:#}");
    assert_eq!(
        j["verdict"]["slots"],
        serde_json::json!([0]),
        "{what}\n{j:#}"
    );
    assert_eq!(j["waited"], WAIT, "{what}\n{j:#}");
    assert_eq!(j["safe"], true, "{what}");
    assert_eq!(j["same_kind_rule"]["last_mount"], "non_clustered", "{what}");
}

/// Text mode: "waiting 11 s" on stderr before the sleep, the verdict after.
fn stale_text(kind: Kind) {
    let what = format!("{kind:?}: unchanged sequences in slots 1 and 3, text");
    let img = mmp_volume(kind);
    set_slots(&img, &[(1, 5, 1), (3, SEQ_MAX, 3)]);
    let w = spawn_watching(&img, false);
    assert_announced(&w, 1, 5, &what);
    let r = finish_watched(w);
    assert_eq!(r.code, 0, "{what}\n{}", r.describe());
    assert_waited(&r, &what);
    assert!(
        r.stdout.contains(&format!("Waited: {WAIT} s")),
        "{what}\n{}",
        r.describe()
    );
    assert!(
        r.stdout.contains("Verdict: safe to mount") && r.stdout.contains("slot(s) 1, 3"),
        "{what}\n{}",
        r.describe()
    );
}

/// A sequence that does not move beside a VALID_NOCLUSTER slot: the wait
/// runs, then the slot without liveness makes it "cannot tell" (2).
fn stale_beside_nocluster(kind: Kind) {
    let what = format!("{kind:?}: unchanged sequence beside VALID_NOCLUSTER");
    let img = mmp_volume(kind);
    set_slots(&img, &[(1, 9, 1), (3, VALID_NOCLUSTER, 3)]);
    let w = spawn_watching(&img, true);
    assert_announced(&w, 1, 9, &what);
    let r = finish_watched(w);
    assert_eq!(r.code, 2, "{what}\n{}", r.describe());
    assert_waited(&r, &what);
    let j = r.json();
    assert_eq!(j["verdict"]["kind"], "no_liveness", "{what}\n{j:#}");
    assert_eq!(j["verdict"]["slot"], 3, "{what}\n{j:#}");
    assert_eq!(j["waited"], WAIT, "{what}");
}

/// A second actor advances the sequence ~3 s into the wait: exit 1, verdict
/// "active" naming the slot, the old and the new value.
fn active(kind: Kind, slot: u16, before: u32, after: u32, others: &[(u16, u32, u32)]) {
    let what = format!("{kind:?}: slot {slot} moves {before:#x} -> {after:#x} during the wait");
    let img = mmp_volume(kind);
    let mut slots = others.to_vec();
    slots.push((slot, before, u32::from(slot)));
    set_slots(&img, &slots);
    let w = spawn_watching(&img, true);
    let first = others
        .iter()
        .chain(std::iter::once(&(slot, before, 0)))
        .filter(|e| state_name(e.1) == "sequence")
        .map(|e| (e.0, e.1))
        .min()
        .expect("a sequence");
    assert_announced(&w, first.0, first.1, &what);
    std::thread::sleep(Duration::from_secs(3));
    // The tool's first read is done (it announced the wait after it); the
    // write goes through the crate's O_DIRECT path, as kmmpd's would.
    write_one_slot(&img, slot, after, u32::from(slot));
    let r = finish_watched(w);
    assert_eq!(r.code, 1, "{what}\n{}", r.describe());
    // The slot map is re-read every second of the wait: the move is seen
    // when it happens (after our write at ~3 s), never after the wait.
    assert!(
        r.elapsed >= Duration::from_secs(3) && r.elapsed < Duration::from_secs(WAIT + 10),
        "{what}: finished after {:.1?}, expected between the write (3 s) and the end of the {WAIT} s wait\n{}",
        r.elapsed,
        r.describe()
    );
    let j = r.json();
    let v = &j["verdict"];
    assert_eq!(v["kind"], "active", "{what}\n{j:#}");
    assert_eq!(v["slot"].as_u64(), Some(u64::from(slot)), "{what}\n{j:#}");
    assert_eq!(
        v["before"].as_u64(),
        Some(u64::from(before)),
        "{what}\n{j:#}"
    );
    assert_eq!(v["after"].as_u64(), Some(u64::from(after)), "{what}\n{j:#}");
    assert_eq!(j["safe"], false, "{what}");
    let waited = j["waited"].as_u64().unwrap_or(0);
    assert!(
        (2..=WAIT).contains(&waited),
        "{what}: waited {waited} s\n{j:#}"
    );
    assert!(
        j["verdict_text"]
            .as_str()
            .is_some_and(|t| t.contains(&format!("slot {slot}"))),
        "{what}: verdict text should name the slot\n{j:#}"
    );
    // The slot map as read after the wait holds the new value.
    assert_eq!(
        j["slots"][usize::from(slot)]["raw"].as_u64(),
        Some(u64::from(after)),
        "{what}"
    );
}

#[test]
fn waits_eleven_seconds() {
    // Every case that needs the real 11 s wait, side by side.
    let t = Instant::now();
    type Scenario = (&'static str, Box<dyn FnOnce() + Send>);
    let scenarios: Vec<Scenario> = vec![
        ("stale, json, local", Box::new(|| stale_json(Kind::Local))),
        (
            "stale, text, clustered",
            Box::new(|| stale_text(Kind::Clustered)),
        ),
        (
            "stale beside nocluster, local",
            Box::new(|| stale_beside_nocluster(Kind::Local)),
        ),
        (
            "active slot 0, local",
            Box::new(|| active(Kind::Local, 0, 0x0001_0000, 0x0001_0001, &[])),
        ),
        (
            // kmmpd wraps from SEQ_MAX to 1; slot 0 holds a clustered mount.
            "active slot 2 wrapping, clustered",
            Box::new(|| active(Kind::Clustered, 2, SEQ_MAX, 1, &[(0, VALID_CLUSTER, 0)])),
        ),
    ];
    let handles: Vec<_> = scenarios
        .into_iter()
        .map(|(name, f)| (name, std::thread::spawn(f)))
        .collect();
    let mut failed = Vec::new();
    for (name, h) in handles {
        if let Err(e) = h.join() {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{name}: {msg}"));
        }
    }
    eprintln!("11 s scenarios took {:.1?} together", t.elapsed());
    assert!(
        failed.is_empty(),
        "failed scenarios:\n{}",
        failed.join("\n\n")
    );
}

/// Issue 15, item 4: on a fresh volume with the old slot map (every slot
/// 0xFFFF, which the kernel reads as empty), `mmp status` says no mount is
/// recorded and either kind may mount next.
#[test]
fn the_old_slot_map_reads_as_the_kernel_reads_it() {
    let dir = scratch("old-map-");
    let img = dir.path().join("old.img");
    sparse_file(&img, 256 * MIB);
    let out = Command::new(find_tool("mkfs.ocfs2", "ocfs2-tools"))
        .args([
            "-F",
            "-M",
            "local",
            "-N",
            "2",
            "--fs-feature-level=max-compat",
        ])
        .arg(&img)
        .stdin(Stdio::null())
        .output()
        .expect("run mkfs.ocfs2");
    assert!(
        common::mkfs_ocfs2_made(&out, true),
        "mkfs.ocfs2 ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = Command::new(BIN)
        .args(["--json", "-R", "mmp status -i"])
        .arg(&img)
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&r.stdout).expect("one JSON object");
    assert_eq!(j["same_kind_rule"]["last_mount"], "none", "{j:#}");
    assert_eq!(j["same_kind_rule"]["cluster_mount_allowed"], true, "{j:#}");
    let t = Command::new(BIN)
        .args(["-R", "mmp status -i"])
        .arg(&img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(text.contains("Last mount: none"), "{text}");
}
