//! MMP on shared block devices: every MMP behaviour of status, fsck,
//! tunefs, mkfs -F and the heartbeat, on an image file and on a loop device
//! over it, against another host that writes the image file with O_DIRECT
//! (below the loop device's page cache, where our tools see its writes only
//! if they never trust a cached read), while a third process holds the loop
//! device open with cached pages.
//!
//! The volume is made by Debian's mkfs.ocfs2 (clustered, 4 slots, 4 KiB
//! blocks) and its slot map and heartbeat are located by debugfs.ocfs2, so
//! the other host does not depend on our reader to find them.

use std::path::PathBuf;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::shared::{CacheHolder, Host, Loop, Writer};
use common::{cmd, find_tool, scratch, show, sparse_file};

const DEBUGFS: &str = env!("CARGO_BIN_EXE_debugfs-mmp");
const TUNEFS: &str = env!("CARGO_BIN_EXE_tunefs-ocfs2-mmp");
const FSCK: &str = env!("CARGO_BIN_EXE_fsck-ocfs2-mmp");
const MKFS: &str = env!("CARGO_BIN_EXE_mkfs-ocfs2-mmp");

const SEQ_FSCK: u32 = 0xE24D_4D50;
const VALID_CLUSTER: u32 = 0xE24D_4D55;
/// `s_mmp_update_interval`: superblock at block 2 (4 KiB), id2 at +0xC0, field at +0xBA.
const INTERVAL_AT: u64 = 2 * 4096 + 0xC0 + 0xBA;
const INTERVAL: u16 = 2;

#[derive(Clone, Copy, Debug)]
enum Via {
    Image,
    Loop,
}

struct Shared {
    _dir: tempfile::TempDir,
    img: PathBuf,
    lp: Loop,
    /// More loop devices over the same image: one per tool started at once
    /// (on one block device the exclusive open alone would keep writers
    /// apart, and a test would pass for the wrong reason).
    more: Vec<Loop>,
    /// Logical sector size of the loop devices.
    sector: u32,
    host: Host,
    /// Byte offsets of the slot map and the heartbeat area (debugfs.ocfs2).
    map: u64,
    hb: u64,
    _cache: Vec<CacheHolder>,
}

impl Shared {
    fn dev(&self, via: Via) -> String {
        match via {
            Via::Image => self.img.display().to_string(),
            Via::Loop => self.lp.dev.clone(),
        }
    }
    /// `n` paths to the volume for `n` tools started at once: the image
    /// file n times, or n loop devices over it, each with cached pages.
    fn devs(&mut self, via: Via, n: usize) -> Vec<String> {
        match via {
            Via::Image => vec![self.dev(via); n],
            Via::Loop => {
                while self.more.len() + 1 < n {
                    let l = Loop::attach(&self.img, self.sector);
                    self._cache.push(CacheHolder::start(&l.dev));
                    self.more.push(l);
                }
                std::iter::once(self.lp.dev.clone())
                    .chain(self.more.iter().map(|l| l.dev.clone()))
                    .take(n)
                    .collect()
            }
        }
    }
    /// From now on the loop device's page cache holds the volume as it is.
    fn cache(&mut self) {
        self._cache.push(CacheHolder::start(&self.lp.dev));
    }
    fn interval(&self) -> u16 {
        self.host.u16_at(INTERVAL_AT)
    }
    fn superblock(&self) -> Vec<u8> {
        self.host.read(2 * 4096, 4096)
    }
}

fn first_block(img: &std::path::Path, file: &str) -> u64 {
    let out = cmd(find_tool("debugfs.ocfs2", "ocfs2-tools"))
        .args(["-R", &format!("stat {file}")])
        .arg(img)
        .output()
        .expect("debugfs.ocfs2");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .skip_while(|l| !l.contains("Block#"))
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no extent in debugfs.ocfs2's stat {file}:\n{text}"))
}

/// A clustered MMP volume (interval 2 s) on an image and a loop device
/// with 512-byte logical sectors.
fn shared() -> Shared {
    shared_with_sectors(512)
}

/// The same with loop devices of `sector`-byte logical sectors.
fn shared_with_sectors(sector: u32) -> Shared {
    let dir = scratch("shared-");
    let img = dir.path().join("s.img");
    sparse_file(&img, 256 << 20);
    let mut child = cmd(find_tool("mkfs.ocfs2", "ocfs2-tools"))
        .args(["-q", "-F", "-N", "4", "-b", "4096", "-C", "4096"])
        .arg("--fs-features=extended-slotmap")
        .arg(&img)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mkfs.ocfs2");
    {
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all("y\n".repeat(16).as_bytes());
    }
    let o = child.wait_with_output().expect("mkfs.ocfs2");
    assert!(o.status.success(), "mkfs.ocfs2: {}", show(&o));
    let map = first_block(&img, "//slot_map") * 4096;
    let hb = first_block(&img, "//heartbeat") * 4096;
    let o = cmd(TUNEFS)
        .args([
            "-y",
            "-q",
            "--enable-mmp",
            &format!("--mmp-update-interval={INTERVAL}"),
        ])
        .arg(&img)
        .output()
        .expect("tunefs");
    assert!(o.status.success(), "{}", show(&o));
    let lp = Loop::attach(&img, sector);
    let host = Host::open(&img);
    Shared {
        _dir: dir,
        img,
        lp,
        more: Vec::new(),
        sector,
        host,
        map,
        hb,
        _cache: Vec::new(),
    }
}

fn spawn(bin: &str, args: &[&str]) -> (Child, Instant) {
    let child = cmd(bin)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    (child, Instant::now())
}

struct Ran {
    what: String,
    out: Output,
}

impl Ran {
    fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    #[track_caller]
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "{}\n{}", self.what, show(&self.out));
        assert!(
            !String::from_utf8_lossy(&self.out.stderr).contains("panicked"),
            "{}\n{}",
            self.what,
            show(&self.out)
        );
        self
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
}

/// Run several tools at once and wait for all.
fn all(runs: &[(&str, Vec<String>)]) -> Vec<Ran> {
    let started: Vec<_> = runs
        .iter()
        .map(|(bin, args)| {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            (format!("{bin} {}", args.join(" ")), spawn(bin, &a).0)
        })
        .collect();
    started
        .into_iter()
        .map(|(what, c)| Ran {
            what,
            out: c.wait_with_output().expect("wait"),
        })
        .collect()
}

fn one(bin: &str, args: &[&str]) -> Ran {
    let a = args.iter().map(|s| s.to_string()).collect();
    all(&[(bin, a)]).remove(0)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The five tools of a scenario, each on its own path, started at once:
/// status, fsck -fy, tunefs, mkfs -F, the heartbeat.
fn five(d: &[String], hb_window: Option<&str>) -> Vec<(&'static str, Vec<String>)> {
    let mut w: Vec<String> = Vec::new();
    if let Some(x) = hb_window {
        w = vec!["--hb-window".into(), x.into()];
    }
    let with = |pre: &[&str], i: usize| {
        let mut a = s(pre);
        a.extend(w.iter().cloned());
        a.push(d[i].clone());
        a
    };
    let status = match hb_window {
        Some(x) => format!("mmp status --hb-window {x}"),
        None => "mmp status".into(),
    };
    let heartbeat = match hb_window {
        Some(x) => format!("mmp heartbeat --for 3 --hb-window {x}"),
        None => "mmp heartbeat --for 3".into(),
    };
    vec![
        (DEBUGFS, vec!["-R".into(), status, d[0].clone()]),
        (FSCK, with(&["-fy"], 1)),
        (TUNEFS, with(&["-y", "--mmp-update-interval=9"], 2)),
        (MKFS, with(&["-q", "-F", "-N", "2"], 3)),
        (
            DEBUGFS,
            vec!["-w".into(), "-R".into(), heartbeat, d[4].clone()],
        ),
    ]
}

/// Every one of the five refused: status 1, fsck 8, tunefs 1, mkfs 1, the
/// heartbeat non-zero.
#[track_caller]
fn all_refused(r: &[Ran]) {
    r[0].expect(1);
    r[1].expect(8);
    r[2].expect(1);
    r[3].expect(1);
    assert_ne!(r[4].code(), 0, "{}\n{}", r[4].what, show(&r[4].out));
}

/// A mount's kmmpd on the other host: every tool sees it and none writes.
fn kmmpd_is_seen(via: Via) {
    kmmpd_is_seen_with(shared(), via);
}

fn kmmpd_is_seen_with(mut v: Shared, via: Via) {
    v.cache();
    let before = v.superblock();
    let k = Writer::kmmpd(&v.host, v.map, Duration::from_secs(u64::from(INTERVAL)));
    let d = v.devs(via, 5);
    all_refused(&all(&five(&d, None)));
    k.finish();
    assert_eq!(v.superblock(), before, "{via:?}: the superblock changed");
    assert_eq!(v.interval(), INTERVAL);
}

#[test]
fn kmmpd_is_seen_on_an_image() {
    kmmpd_is_seen(Via::Image);
}

#[test]
fn kmmpd_is_seen_on_a_loop_device() {
    kmmpd_is_seen(Via::Loop);
}

/// 4 KiB logical sectors: every direct transfer is a whole 4 KiB sector.
#[test]
fn kmmpd_is_seen_on_a_4k_sector_loop_device() {
    kmmpd_is_seen_with(shared_with_sectors(4096), Via::Loop);
}

/// A clustered node's o2hb on the other host: its slot is not stale.
fn o2hb_is_seen(via: Via) {
    let mut v = shared();
    v.host.set_slot(v.map, 1, VALID_CLUSTER, 1);
    v.cache();
    let before = v.superblock();
    let w = Writer::o2hb(&v.host, v.hb, 1);
    let mut d = v.devs(via, 6);
    let mut tools = five(&d, Some("8"));
    let clear = d.pop().expect("six paths");
    tools.push((
        TUNEFS,
        s(&["-y", "--hb-window", "8", "--clear-mmp", &clear]),
    ));
    let r = all(&tools);
    all_refused(&r);
    r[5].expect(1);
    w.finish();
    assert_eq!(v.host.slot(v.map, 1), (VALID_CLUSTER, 1));
    assert_eq!(v.host.slot(v.map, 0).0, 0);
    assert_eq!(v.superblock(), before, "{via:?}: the superblock changed");
}

#[test]
fn o2hb_is_seen_on_an_image() {
    o2hb_is_seen(Via::Image);
}

#[test]
fn o2hb_is_seen_on_a_loop_device() {
    o2hb_is_seen(Via::Loop);
}

/// A clustered mount takes slot 1 while the tools wait: each backs off and
/// leaves it. On an empty slot map the writers are in their own proof wait
/// (status has nothing to wait for there); behind a dead mount's sequence
/// all five are in the check's wait.
fn a_slot_taken_during_the_wait(via: Via, dead_sequence: bool) {
    let mut v = shared();
    let dead = 0x0D0D_0001;
    if dead_sequence {
        v.host.set_slot(v.map, 0, dead, 0);
    }
    v.cache();
    let before = v.superblock();
    let d = v.devs(via, 5);
    let t0 = Instant::now();
    let tools: Vec<_> = five(&d, None)
        .into_iter()
        .skip(usize::from(!dead_sequence))
        .collect();
    let started: Vec<_> = tools
        .into_iter()
        .map(|(bin, args)| {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            (format!("{bin} {}", args.join(" ")), spawn(bin, &a).0)
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    v.host.set_slot(v.map, 1, VALID_CLUSTER, 1);
    let r: Vec<Ran> = started
        .into_iter()
        .map(|(what, c)| Ran {
            what,
            out: c.wait_with_output().expect("wait"),
        })
        .collect();
    if dead_sequence {
        all_refused(&r);
    } else {
        r[0].expect(8);
        r[1].expect(1);
        r[2].expect(1);
        assert_ne!(r[3].code(), 0, "{}\n{}", r[3].what, show(&r[3].out));
    }
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_eq!(
        v.host.slot(v.map, 1),
        (VALID_CLUSTER, 1),
        "{via:?}: slot 1 wiped"
    );
    let want = if dead_sequence { dead } else { 0 };
    assert_eq!(
        v.host.slot(v.map, 0).0,
        want,
        "{via:?}: slot 0 left changed"
    );
    assert_eq!(v.superblock(), before, "{via:?}: the superblock changed");
}

#[test]
fn a_slot_taken_during_the_wait_on_an_image() {
    a_slot_taken_during_the_wait(Via::Image, false);
    a_slot_taken_during_the_wait(Via::Image, true);
}

#[test]
fn a_slot_taken_during_the_wait_on_a_loop_device() {
    a_slot_taken_during_the_wait(Via::Loop, false);
    a_slot_taken_during_the_wait(Via::Loop, true);
}

/// The interval changed on disk after the loop device's cache was filled:
/// the tools wait by the new one.
#[test]
fn an_interval_changed_on_disk_is_read_from_the_disk() {
    let mut v = shared();
    v.cache();
    v.host.write(INTERVAL_AT, &12u16.to_le_bytes());
    for via in [Via::Image, Via::Loop] {
        let r = one(DEBUGFS, &["--json", "-R", "mmp status -i", &v.dev(via)]);
        let j: serde_json::Value = serde_json::from_str(
            String::from_utf8_lossy(&r.out.stdout)
                .lines()
                .last()
                .unwrap_or(""),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", show(&r.out)));
        assert_eq!(j["update_interval"], 12, "{via:?}: {j}");
    }
    // kmmpd at the new interval: the check waits 25 s, not 11, and every
    // tool sees it, on loop devices whose caches hold the old interval.
    let k = Writer::kmmpd(&v.host, v.map, Duration::from_secs(12));
    let d = v.devs(Via::Loop, 5);
    let r = all(&five(&d, None));
    all_refused(&r);
    assert!(r[0].stderr().contains("waiting 25 s"), "{}", r[0].stderr());
    k.finish();
    assert_eq!(v.interval(), 12);
}

/// Our heartbeat on the loop device moves right after its wait, where the
/// other host reads it, and a status through the image file sees it.
#[test]
fn the_heartbeat_on_a_loop_device_is_seen_from_the_other_side() {
    let mut v = shared();
    v.cache();
    let d = v.dev(Via::Loop);
    let (hb, _) = spawn(DEBUGFS, &["-w", "-R", "mmp heartbeat --for 30", &d]);
    // Its own sequence, then the first update right after the 11 s wait.
    let t0 = Instant::now();
    let mut first = None;
    let mut moved = None;
    while t0.elapsed() < Duration::from_secs(20) && moved.is_none() {
        let (raw, _) = v.host.slot(v.map, 0);
        match first {
            None if raw != 0 => first = Some((raw, t0.elapsed())),
            Some((f, _)) if raw != f => moved = Some(t0.elapsed()),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, written) = first.expect("the heartbeat wrote slot 0");
    let moved = moved.expect("the heartbeat moved slot 0");
    // It moves its own sequence every update interval (2 s) from the start.
    assert!(
        moved - written <= Duration::from_secs(4),
        "first move {moved:?} after its own sequence at {written:?}"
    );
    // Past its 11 s proof: a holder, seen from the image file.
    std::thread::sleep((written + Duration::from_secs(13)).saturating_sub(t0.elapsed()));
    let st = one(DEBUGFS, &["-R", "mmp status", &v.dev(Via::Image)]);
    st.expect(1);
    let _ = nix_kill(&hb);
    let out = hb.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stopped by signal 15"),
        "{}",
        show(&out)
    );
    assert_eq!(v.host.slot(v.map, 0).0, 0, "a stopped heartbeat leaves 0");
}

fn nix_kill(c: &Child) -> std::io::Result<()> {
    let st = std::process::Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status()?;
    assert!(st.success());
    Ok(())
}

/// A live holder's SEQ_FSCK moves: --clear-mmp refuses it; a killed
/// holder's marker stays still and is cleared.
#[test]
fn clear_mmp_tells_a_live_fsck_from_a_killed_one() {
    let mut v = shared();
    v.cache();
    let d = v.dev(Via::Loop);
    // A holder that holds for 40 s (the test hook), then checks.
    let hold_log = v.img.with_extension("hold");
    let fsck = cmd(FSCK)
        .args(["-fy", &d])
        .env("OCFS2_MMP_HOLD_HOOK", format!("{}:40", hold_log.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fsck");
    let t0 = Instant::now();
    while v.host.slot(v.map, 0).0 != SEQ_FSCK {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "fsck never held the volume"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // From the other side (the image file: the loop device is claimed by
    // the running fsck's exclusive open, as a local tool would find it).
    let other = v.dev(Via::Image);
    let c = one(TUNEFS, &["-y", "--clear-mmp", &other]);
    c.expect(1);
    assert!(c.stderr().contains("alive"), "{}", c.stderr());
    assert_eq!(v.host.slot(v.map, 0).0, SEQ_FSCK);
    // Killed: the marker stays still, and is proved dead by watching.
    let mut fsck = fsck;
    fsck.kill().expect("kill");
    let _ = fsck.wait();
    let c = one(TUNEFS, &["-y", "--clear-mmp", &other]);
    c.expect(0);
    assert_eq!(v.host.slot(v.map, 0).0, 0);
}

/// The MMP bit on a volume with the old slot map (made by hand: no tool
/// makes one): its one-byte entries hold no sequence, so no tool writes an
/// MMP value there (fsck once wrote SEQ_FSCK cut to 16 bits), and the
/// status cannot tell. fsck `-n` and `-p` report it (exit 4) and write
/// nothing; its `-y` repair (the map rewritten in the extended format) is
/// tests/fsck.rs `mmp_with_the_old_slot_map_is_converted_by_y`.
#[test]
fn the_old_slot_map_with_the_mmp_bit_is_refused() {
    let dir = scratch("oldmap-");
    let img = dir.path().join("o.img");
    sparse_file(&img, 256 << 20);
    let o = cmd(find_tool("mkfs.ocfs2", "ocfs2-tools"))
        .args([
            "-q", "-F", "-M", "local", "-N", "2", "-b", "4096", "-C", "4096",
        ])
        .arg("--fs-feature-level=max-compat")
        .arg(&img)
        .output()
        .expect("mkfs.ocfs2");
    assert!(o.status.success(), "{}", show(&o));
    let host = Host::open(&img);
    // s_feature_incompat: superblock at block 2, id2 at +0xC0, field at +0x20.
    let at = 2 * 4096 + 0xC0 + 0x20;
    let f = host.u32_at(at) | 0x1_0000;
    host.write(at, &f.to_le_bytes());
    let lp = Loop::attach(&img, 512);
    let before = std::fs::read(&img).expect("read image");
    for dev in [img.display().to_string(), lp.dev.clone()] {
        let st = one(DEBUGFS, &["-R", "mmp status", &dev]);
        st.expect(2);
        assert!(
            String::from_utf8_lossy(&st.out.stdout).contains("old format"),
            "{}",
            show(&st.out)
        );
        one(FSCK, &["-fn", &dev]).expect(4);
        one(FSCK, &["-fp", &dev]).expect(4);
        one(TUNEFS, &["-y", "--mmp-update-interval=9", &dev]).expect(1);
        one(MKFS, &["-q", "-F", "-N", "2", &dev]).expect(1);
        assert_ne!(
            one(DEBUGFS, &["-w", "-R", "mmp heartbeat --for 2", &dev]).code(),
            0
        );
    }
    assert!(
        std::fs::read(&img).expect("read image") == before,
        "a refusal wrote to the volume"
    );
}
