//! `tunefs.ocfs2-mmp` (issue 4, "How we will know"), driven as a binary on
//! volumes made by Debian's `mkfs.ocfs2` and judged by `debugfs-mmp`, the
//! format crate, `debugfs.ocfs2` and `fsck.ocfs2`:
//!
//! 1. round trips (`--enable-mmp --mmp-update-interval=N`, then
//!    `--mmp-update-interval=M`, then `--disable-mmp`) over block sizes 512
//!    to 4096, 1 to 16 slots, default features, `metaecc`, `-M local`, with
//!    and without backup superblocks; after every step the stats, `-Q`, every
//!    backup superblock against the primary (all but `i_blkno` and the block
//!    check, which must validate under metaecc), slot 0; at the end
//!    `debugfs.ocfs2` and `fsck.ocfs2 -fn` accept the volume again and nothing
//!    but the superblocks changed. A max-compat volume (old slot map) has
//!    its map rewritten in the extended format by `--enable-mmp`, and the
//!    format changes both ways as tunefs.ocfs2 changes it (issue 13);
//! 2. a live heartbeat (`debugfs-mmp -w -R "mmp heartbeat"`) in another
//!    process: tunefs and `--clear-mmp` refuse after their watch, `mmp status`
//!    says active; after SIGINT the volume is clean; after SIGKILL the dead
//!    sequence is stale, `--clear-mmp` overrides it after a watch and
//!    `--clear-mmp --force` without one;
//! 3. a stale `SEQ_FSCK`: changes are refused naming fsck, `--clear-mmp`
//!    resets it;
//! 4. crash safety: `OCFS2_MMP_FAILPOINT_WRITE=N` aborts the tool before its
//!    Nth device write, for every N of `--disable-mmp` and
//!    `--mmp-update-interval`; each crash leaves a readable volume whose
//!    superblocks are each entirely old or entirely new, and from which
//!    `--clear-mmp --force` and a second run reach the state of a run that
//!    was never interrupted;
//! 5. bad input: intervals, feature names, a device of zeros, a read-only
//!    image opened as `nobody`, `-n`, an interval without MMP.
//!
//! Every run that holds an MMP volume waits at least 11 s (the kernel's wait
//! at intervals up to 5 s), so the slow scenarios run side by side in
//! threads. The tests never skip: a missing tool fails with a hint to run
//! `make deps`.

use ocfs2_format::blockcheck::{self, CheckAt, CheckResult};
use ocfs2_format::ondisk::{EXT_UNWRITTEN, MMP_INTERVAL_OFFSET_IN_BLOCK};
use ocfs2_format::{FileDevice, OpenMode, Volume};
use serde_json::Value;
use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::Hasher;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{cp_sparse, euid, find_tool, mkfs_ocfs2_made, scratch, sparse_file, GIB, MIB};

const TUNEFS: &str = env!("CARGO_BIN_EXE_tunefs-ocfs2-mmp");
const DEBUGFS: &str = env!("CARGO_BIN_EXE_debugfs-mmp");
const PROG: &str = "tunefs.ocfs2-mmp";

/// Exit codes of `tunefs.ocfs2-mmp` (crates/tunefs/src/lib.rs, `exit`).
const OK: i32 = 0;
const REFUSED: i32 = 1;
const USAGE: i32 = 16;
const FAILED: i32 = 8;

const SEQ_MAX: u32 = 0xE24D_4D4F;
const SEQ_FSCK: u32 = 0xE24D_4D50;

/// The kernel's wait at update intervals up to 5 s: min(2 x 5 + 1, 5 + 60).
const WAIT: Duration = Duration::from_secs(11);
/// A run that must not wait finishes well under this.
const NO_WAIT: Duration = Duration::from_secs(5);
/// No single command may take longer (a hang fails the test instead).
const DEADLINE: Duration = Duration::from_secs(120);

/// `-Q` format of the round trips (the tool expands `\n`).
const QUERY: &str = "%A %I %S %B %T %N\\n";

// ------------------------------------------------------------------ tools

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temporary path")
}

// ------------------------------------------------------------------ running

struct Run {
    what: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "{}: {} after {:.1?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.what, self.status, self.elapsed, self.stdout, self.stderr
        )
    }

    fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal\n{}", self.describe()))
    }

    #[track_caller]
    fn expect(&self, code: i32) -> &Run {
        assert_eq!(self.code(), code, "exit status\n{}", self.describe());
        assert!(
            !self.stderr.contains("panicked"),
            "the tool panicked\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    fn waited(&self) -> &Run {
        assert!(
            self.elapsed >= WAIT,
            "ran {:.1?}, expected the wait of at least {WAIT:?}\n{}",
            self.elapsed,
            self.describe()
        );
        self
    }

    /// A live sequence is refused as soon as it moves (the slot map is
    /// re-read every second of the wait), never after the announced wait.
    #[track_caller]
    fn moved_within_wait(&self) -> &Run {
        assert!(
            self.elapsed < WAIT + Duration::from_secs(2),
            "ran {:.1?}, longer than the announced wait of {WAIT:?}\n{}",
            self.elapsed,
            self.describe()
        );
        assert!(
            self.stderr.contains("waiting 11 s"),
            "the wait was not announced\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    fn quick(&self) -> &Run {
        assert!(
            self.elapsed < NO_WAIT,
            "ran {:.1?}, expected no wait\n{}",
            self.elapsed,
            self.describe()
        );
        self
    }

    #[track_caller]
    fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.describe()
        );
        self
    }

    #[track_caller]
    fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.describe()
        );
        self
    }

    /// The one error line: stderr is exactly one line (warnings aside),
    /// `tunefs.ocfs2-mmp: DEVICE: ...`, containing every needle.
    #[track_caller]
    fn one_error(&self, dev: &str, needles: &[&str]) -> &Run {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.starts_with(&format!("{PROG}: warning: ")))
            .collect();
        assert_eq!(lines.len(), 1, "one error line\n{}", self.describe());
        self.last_error(dev, needles)
    }

    /// The last stderr line is the error (earlier lines say why it waited).
    #[track_caller]
    fn last_error(&self, dev: &str, needles: &[&str]) -> &Run {
        let last = self.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(&format!("{PROG}: {dev}: ")),
            "the error line names the program and the device\n{}",
            self.describe()
        );
        for n in needles {
            assert!(
                last.contains(n),
                "the error line lacks {n:?}\n{}",
                self.describe()
            );
        }
        self
    }

    fn json(&self) -> Value {
        let line = self.stdout.lines().next().unwrap_or_default();
        serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", self.describe()))
    }
}

/// Run with TZ=UTC, stdin closed, and a deadline.
fn run_cmd(mut cmd: Command, what: String) -> Run {
    cmd.env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let (out, err) = readers(&mut child);
    let status = wait_deadline(&mut child, started, &what);
    let elapsed = started.elapsed();
    Run {
        what,
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed,
    }
}

type Reader = std::thread::JoinHandle<String>;

fn readers(child: &mut Child) -> (Reader, Reader) {
    let mut so = child.stdout.take().expect("stdout piped");
    let mut se = child.stderr.take().expect("stderr piped");
    (
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = so.read_to_string(&mut s);
            s
        }),
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = se.read_to_string(&mut s);
            s
        }),
    )
}

fn wait_deadline(child: &mut Child, started: Instant, what: &str) -> ExitStatus {
    loop {
        if let Some(st) = child.try_wait().expect("wait for child") {
            return st;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {DEADLINE:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tunefs_cmd(args: &[&str], dev: &Path) -> Command {
    let mut c = Command::new(TUNEFS);
    c.args(args)
        .arg(dev)
        .env_remove("OCFS2_MMP_FAILPOINT_WRITE");
    c
}

fn tunefs(args: &[&str], dev: &Path) -> Run {
    run_cmd(tunefs_cmd(args, dev), format!("{PROG} {}", args.join(" ")))
}

fn debugfs(args: &[&str], dev: &Path) -> Run {
    let mut c = Command::new(DEBUGFS);
    c.args(args).arg(dev);
    run_cmd(c, format!("debugfs-mmp {}", args.join(" ")))
}

/// `debugfs-mmp --json -R stats`, which must succeed.
fn stats(dev: &Path) -> Value {
    debugfs(&["--json", "-R", "stats"], dev).expect(0).json()
}

/// `debugfs-mmp --json -R "mmp status[ -i]"`.
fn mmp_status(dev: &Path, info: bool) -> Run {
    let req = if info { "mmp status -i" } else { "mmp status" };
    debugfs(&["--json", "-R", req], dev)
}

fn query(dev: &Path) -> String {
    tunefs(&["-Q", QUERY], dev).expect(OK).stdout.clone()
}

// ------------------------------------------------------------------ images

/// A sparse image in its own temporary directory under the target
/// directory, removed when dropped.
struct Image {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Image {
    fn sparse(prefix: &str, size: u64) -> Image {
        let dir = scratch(&format!("tunefs-{prefix}-"));
        let path = dir.path().join("vol.img");
        sparse_file(&path, size);
        Image { dir, path }
    }

    /// A sparse copy in the same directory.
    fn copy(&self, name: &str) -> PathBuf {
        let to = self.dir.path().join(name);
        cp_sparse(&self.path, &to);
        to
    }
}

/// `mkfs.ocfs2 -F -b BLOCK -N SLOTS EXTRA...`.
fn mkfs(img: &Path, block: u32, slots: u16, extra: &[&str]) {
    let mkfs = find_tool("mkfs.ocfs2", "ocfs2-tools");
    let mut args: Vec<String> = vec![
        "-F".into(),
        "-b".into(),
        block.to_string(),
        "-N".into(),
        slots.to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let out = Command::new(&mkfs)
        .args(&args)
        .arg(img)
        .stdin(Stdio::null())
        .output()
        .expect("running mkfs.ocfs2");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // ocfs2-tools 1.8.7 on a host without /sbin/modprobe: for a clustered
    // volume the forked modprobe child goes on as a second mkfs (see
    // `common::mkfs_ocfs2_made`); the first copy's format is the good one.
    let local = extra.windows(2).any(|w| w == ["-M", "local"]);
    assert!(
        mkfs_ocfs2_made(&out, local),
        "mkfs.ocfs2 {} {} failed ({}):\n{stdout}{}",
        args.join(" "),
        img.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A 256 MiB volume (4 KiB blocks and clusters, 4 slots) with MMP turned on
/// by tunefs at `interval`.
fn mmp_volume(prefix: &str, interval: u16) -> Image {
    let img = Image::sparse(prefix, 256 * MIB);
    mkfs(&img.path, 4096, 4, &["-C", "4096", "-J", "size=4M"]);
    tunefs(
        &[
            "-y",
            "--enable-mmp",
            &format!("--mmp-update-interval={interval}"),
        ],
        &img.path,
    )
    .expect(OK)
    .quick();
    let j = stats(&img.path);
    assert_eq!(j["mmp"], true, "{j}");
    assert_eq!(j["mmp_update_interval"], interval, "{j}");
    img
}

fn open_ro(dev: &Path) -> Volume {
    let d = FileDevice::open(dev, OpenMode::default()).expect("open image read-only");
    Volume::open(Box::new(d)).expect("open volume")
}

fn slots(dev: &Path) -> Vec<u32> {
    let map = open_ro(dev).read_slot_map().expect("read slot map");
    map.slots.iter().map(|s| s.raw).collect()
}

fn slot0(dev: &Path) -> u32 {
    slots(dev)[0]
}

/// Byte ranges of the blocks that hold the slot map's entries.
fn slot_map_blocks(dev: &Path) -> Vec<(u64, u64)> {
    let vol = open_ro(dev);
    let bs = u64::from(vol.block_size());
    let (_, runs) = vol.slot_map_layout().expect("slot map layout");
    runs.iter()
        .map(|&(_, off, _)| (off / bs * bs, bs))
        .collect()
}

fn read_at(dev: &Path, offset: u64, len: u64) -> Vec<u8> {
    let f = fs::File::open(dev).expect("open image");
    let mut b = vec![0u8; len as usize];
    f.read_exact_at(&mut b, offset).expect("read image");
    b
}

fn read_ranges(dev: &Path, ranges: &[(u64, u64)]) -> Vec<Vec<u8>> {
    ranges.iter().map(|&(o, l)| read_at(dev, o, l)).collect()
}

/// The data segments of a sparse file (`lseek` `SEEK_DATA`/`SEEK_HOLE`):
/// holes read as zeros and need not be read. Where the file system cannot
/// tell, Linux reports the whole file as data.
fn data_segments(f: &fs::File) -> Vec<(u64, u64)> {
    use std::ffi::c_int;
    use std::os::fd::AsRawFd;
    extern "C" {
        fn lseek(fd: c_int, offset: i64, whence: c_int) -> i64;
    }
    const SEEK_DATA: c_int = 3;
    const SEEK_HOLE: c_int = 4;
    let size = f.metadata().expect("stat image").len();
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        // SAFETY: lseek on a descriptor `f` keeps open; it touches no memory.
        let data = unsafe { lseek(fd, pos as i64, SEEK_DATA) };
        if data < 0 {
            break; // ENXIO: no data after pos
        }
        // SAFETY: as above.
        let hole = unsafe { lseek(fd, data, SEEK_HOLE) };
        assert!(hole > data, "SEEK_HOLE after {data} returned {hole}");
        out.push((data as u64, (hole - data) as u64));
        pos = hole as u64;
    }
    out
}

/// A hash of the whole image with `masked` byte ranges read as zeros: the
/// offset and bytes of every 1 MiB window that is not all zeros (so that
/// holes and written zeros hash alike).
fn digest(dev: &Path, masked: &[(u64, u64)]) -> u64 {
    const WINDOW: u64 = 1 << 20;
    static ZEROS: [u8; WINDOW as usize] = [0; WINDOW as usize];
    let f = fs::File::open(dev).expect("open image");
    let size = f.metadata().expect("stat image").len();
    let mut h = DefaultHasher::new();
    let mut buf = vec![0u8; WINDOW as usize];
    let mut next = 0u64; // first window not yet hashed
    for (start, len) in data_segments(&f) {
        for w in (start / WINDOW).max(next)..(start + len).div_ceil(WINDOW) {
            let off = w * WINDOW;
            let b = &mut buf[..(size - off).min(WINDOW) as usize];
            f.read_exact_at(b, off).expect("read image");
            for &(m, l) in masked {
                let (x, y) = (m.max(off), (m + l).min(off + b.len() as u64));
                if x < y {
                    b[(x - off) as usize..(y - off) as usize].fill(0);
                }
            }
            // (A slice comparison is a memcmp, fast even in a debug build.)
            if *b != ZEROS[..b.len()] {
                h.write_u64(off);
                h.write(b);
            }
            next = w + 1;
        }
    }
    h.write_u64(size);
    h.finish()
}

// ------------------------------------------------------------------ superblocks

const I_BLKNO: std::ops::Range<usize> = 0x50..0x58;
const I_CHECK: std::ops::Range<usize> = 0x80..0x88;

/// Backup superblocks the volume has room for: 1 GiB, 4 GiB, 16 GiB, ...
fn backup_blknos(dev: &Path, bs: u32) -> Vec<u64> {
    let blocks = fs::metadata(dev).expect("stat image").len() / u64::from(bs);
    (0..6)
        .map(|i| (GIB << (2 * i)) / u64::from(bs))
        .take_while(|&b| b < blocks)
        .collect()
}

/// Byte ranges of the primary (block 2) and every backup superblock.
fn superblock_ranges(dev: &Path) -> Vec<(u64, u64)> {
    let bs = open_ro(dev).block_size();
    std::iter::once(2)
        .chain(backup_blknos(dev, bs))
        .map(|b| (b * u64::from(bs), u64::from(bs)))
        .collect()
}

fn blkno_of(block: &[u8]) -> u64 {
    u64::from_le_bytes(block[I_BLKNO].try_into().expect("8 bytes"))
}

fn masked(block: &[u8]) -> Vec<u8> {
    let mut b = block.to_vec();
    b[I_BLKNO].fill(0);
    b[I_CHECK].fill(0);
    b
}

/// Every backup superblock equals the primary but for `i_blkno` (its own
/// block number) and the block check, which validates under metaecc.
fn check_superblocks(dev: &Path, ecc: bool, backups: usize, step: &str) {
    let ranges = superblock_ranges(dev);
    assert_eq!(ranges.len() - 1, backups, "{step}: backup superblock count");
    let blocks = read_ranges(dev, &ranges);
    let primary = &blocks[0];
    let bs = ranges[0].1;
    for (block, &(off, _)) in blocks.iter().zip(&ranges) {
        let blkno = off / bs;
        assert!(
            block.starts_with(b"OCFSV2"),
            "{step}: block {blkno} has no superblock signature"
        );
        assert_eq!(blkno_of(block), blkno, "{step}: i_blkno of block {blkno}");
        assert!(
            masked(block) == masked(primary),
            "{step}: backup superblock at block {blkno} differs from the primary"
        );
        let mut b = block.clone();
        if ecc {
            assert_eq!(
                blockcheck::validate(&mut b, CheckAt::Inode),
                CheckResult::Ok,
                "{step}: block check of the superblock at block {blkno}"
            );
        } else {
            assert_eq!(
                &block[I_CHECK], &[0u8; 8],
                "{step}: no metaecc, yet block {blkno} has a check"
            );
        }
    }
}

// ------------------------------------------------------------------ 1. round trips

struct RoundTrip {
    name: &'static str,
    size: u64,
    block: u32,
    slots: u16,
    extra: &'static [&'static str],
    ecc: bool,
    backups: usize,
    first: u16,
    second: u16,
}

/// Intervals stay within 1..=5 so that every guarded step waits 11 s.
const ROUND_TRIPS: &[RoundTrip] = &[
    RoundTrip {
        name: "default-4k-4slots",
        size: 5 * GIB,
        block: 4096,
        slots: 4,
        extra: &[],
        ecc: false,
        backups: 2,
        first: 3,
        second: 5,
    },
    RoundTrip {
        name: "metaecc-4k-4slots",
        size: 5 * GIB,
        block: 4096,
        slots: 4,
        extra: &["--fs-features=metaecc"],
        ecc: true,
        backups: 2,
        first: 1,
        second: 4,
    },
    RoundTrip {
        name: "default-512-1slot",
        size: 5 * GIB,
        block: 512,
        slots: 1,
        extra: &["-J", "size=4M"],
        ecc: false,
        backups: 2,
        first: 5,
        second: 2,
    },
    RoundTrip {
        name: "metaecc-1k-16slots",
        size: 5 * GIB,
        block: 1024,
        slots: 16,
        extra: &["--fs-features=metaecc", "-J", "size=4M"],
        ecc: true,
        backups: 2,
        first: 2,
        second: 1,
    },
    RoundTrip {
        name: "local-2k-4slots",
        size: 5 * GIB,
        block: 2048,
        slots: 4,
        extra: &["-M", "local", "-J", "size=4M"],
        ecc: false,
        backups: 2,
        first: 4,
        second: 3,
    },
    RoundTrip {
        name: "metaecc-2k-2slots-1backup",
        size: 1536 * MIB,
        block: 2048,
        slots: 2,
        extra: &["--fs-features=metaecc", "-J", "size=4M"],
        ecc: true,
        backups: 1,
        first: 5,
        second: 1,
    },
    RoundTrip {
        name: "default-4k-2slots-no-backup",
        size: 768 * MIB,
        block: 4096,
        slots: 2,
        extra: &["-J", "size=4M"],
        ecc: false,
        backups: 0,
        first: 2,
        second: 5,
    },
];

/// State after a step: stats, `-Q`, superblocks, slot 0.
fn check_state(rt: &RoundTrip, dev: &Path, mmp: bool, interval: u16, step: &str) {
    let j = stats(dev);
    assert_eq!(j["mmp"], mmp, "{}: {step}: stats mmp\n{j}", rt.name);
    assert_eq!(
        j["mmp_update_interval"], interval,
        "{}: {step}: stats interval\n{j}",
        rt.name
    );
    let incompat: Vec<&str> = j["features"]["incompat"]
        .as_array()
        .expect("incompat names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        incompat.contains(&"mmp"),
        mmp,
        "{}: {step}: feature names {incompat:?}",
        rt.name
    );
    assert_eq!(
        j["feature_words"]["incompat"]
            .as_u64()
            .expect("incompat word")
            & 0x1_0000
            != 0,
        mmp,
        "{}: {step}: incompat word",
        rt.name
    );
    let cs = j["cluster_size"].as_u64().expect("cluster size");
    assert_eq!(
        query(dev),
        format!(
            "{} {interval} extended {} {cs} {}\n",
            if mmp { "enabled" } else { "disabled" },
            rt.block,
            rt.slots
        ),
        "{}: {step}: -Q",
        rt.name
    );
    check_superblocks(dev, rt.ecc, rt.backups, &format!("{}: {step}", rt.name));
    assert_eq!(
        slots(dev),
        vec![0; usize::from(rt.slots)],
        "{}: {step}: the slot map is empty again",
        rt.name
    );
}

/// `debugfs.ocfs2 -R stats`: (works, stderr).
fn ocfs2_tools_open(dev: &Path) -> (bool, String) {
    let out = Command::new(find_tool("debugfs.ocfs2", "ocfs2-tools"))
        .env("TZ", "UTC")
        .args(["-R", "stats"])
        .arg(dev)
        .stdin(Stdio::null())
        .output()
        .expect("running debugfs.ocfs2");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let works = out.status.success()
        && !stderr.contains("No device open")
        && stdout.contains("Feature Incompat");
    (works, stderr)
}

fn round_trip(rt: &RoundTrip) {
    let img = Image::sparse(rt.name, rt.size);
    mkfs(&img.path, rt.block, rt.slots, rt.extra);
    let dev = img.path.as_path();
    let j = stats(dev);
    assert_eq!(j["block_size"], rt.block, "{}", rt.name);
    assert_eq!(j["max_slots"], rt.slots, "{}", rt.name);
    let bs = rt.block;
    assert_eq!(
        j["backup_superblocks"],
        serde_json::json!(backup_blknos(dev, bs)),
        "{}: debugfs-mmp's backup list",
        rt.name
    );
    check_state(rt, dev, false, 0, "as made by mkfs.ocfs2");
    let sb = superblock_ranges(dev);
    let primary_before = read_ranges(dev, &sb[..1]).remove(0);
    let others = digest(dev, &sb);
    let map_blocks = slot_map_blocks(dev);
    let map_before = read_ranges(dev, &map_blocks);
    let n = format!("{} backup(s) written", rt.backups);

    // 1. On (no MMP yet: nothing to hold, no wait).
    let r = tunefs(
        &[
            "-y",
            "--enable-mmp",
            &format!("--mmp-update-interval={}", rt.first),
        ],
        dev,
    );
    r.expect(OK)
        .quick()
        .stdout_has("enable MMP (incompat 0x10000): done")
        .stdout_has(&format!("MMP update interval 0 -> {} s: done", rt.first))
        .stdout_has(&n);
    check_state(rt, dev, true, rt.first, "after --enable-mmp");
    let (works, stderr) = ocfs2_tools_open(dev);
    assert!(
        !works && stderr.contains("Unsupported feature"),
        "{}: debugfs.ocfs2 should refuse the MMP bit, said: {stderr}",
        rt.name
    );

    // 2. New interval, under the guard (SEQ_FSCK in slot 0, one wait).
    let r = tunefs(
        &["-y", &format!("--mmp-update-interval={}", rt.second)],
        dev,
    );
    r.expect(OK)
        .waited()
        .stdout_has(&format!(
            "MMP update interval {} -> {} s: done",
            rt.first, rt.second
        ))
        .stdout_has(&n)
        .stderr_has("wrote a sequence of its own into slot 0");
    check_state(rt, dev, true, rt.second, "after --mmp-update-interval");

    // 3. Off, under the guard; the interval stays in the superblock.
    let r = tunefs(&["-y", "--disable-mmp"], dev);
    r.expect(OK)
        .waited()
        .stdout_has("disable MMP")
        .stdout_has(&n);
    check_state(rt, dev, false, rt.second, "after --disable-mmp");

    // ocfs2-tools take the volume back.
    let (works, stderr) = ocfs2_tools_open(dev);
    assert!(
        works,
        "{}: debugfs.ocfs2 -R stats after --disable-mmp: {stderr}",
        rt.name
    );
    let out = Command::new(find_tool("fsck.ocfs2", "ocfs2-tools"))
        .env("TZ", "UTC")
        .arg("-fn")
        .arg(dev)
        .stdin(Stdio::null())
        .output()
        .expect("running fsck.ocfs2");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: fsck.ocfs2 -fn after the round trip:\n{}{}",
        rt.name,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // In the superblock only the interval changed (and the check with it).
    let mut want = masked(&primary_before);
    want[MMP_INTERVAL_OFFSET_IN_BLOCK..MMP_INTERVAL_OFFSET_IN_BLOCK + 2]
        .copy_from_slice(&rt.second.to_le_bytes());
    assert!(
        masked(&read_ranges(dev, &sb[..1])[0]) == want,
        "{}: the primary superblock changed beyond s_mmp_update_interval",
        rt.name
    );
    // Nothing but the superblocks changed; the slot map is as mkfs left it.
    assert_eq!(
        digest(dev, &sb),
        others,
        "{}: bytes outside the superblocks changed",
        rt.name
    );
    assert!(
        read_ranges(dev, &map_blocks) == map_before,
        "{}: the slot map block changed",
        rt.name
    );
}

#[test]
fn round_trips() {
    std::thread::scope(|sc| {
        for rt in ROUND_TRIPS {
            std::thread::Builder::new()
                .name(rt.name.into())
                .spawn_scoped(sc, move || round_trip(rt))
                .expect("spawn thread");
        }
    });
}

/// `tunefs.ocfs2 ARGS DEV` (Debian's), which must succeed.
fn theirs(args: &[&str], dev: &Path) {
    let t = find_tool("tunefs.ocfs2", "ocfs2-tools");
    let out = Command::new(&t)
        .args(args)
        .arg(dev)
        .stdin(Stdio::null())
        .output()
        .expect("running tunefs.ocfs2");
    assert!(
        out.status.success(),
        "tunefs.ocfs2 {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `debugfs.ocfs2 -R REQ DEV` output.
fn their_debugfs(req: &str, dev: &Path) -> String {
    let d = find_tool("debugfs.ocfs2", "ocfs2-tools");
    let out = Command::new(&d)
        .args(["-R", req])
        .arg(dev)
        .stdin(Stdio::null())
        .output()
        .expect("running debugfs.ocfs2");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Both checkers find the volume clean (fsck.ocfs2 on a copy with the MMP
/// bit cleared when it has one).
#[track_caller]
fn both_clean(dev: &Path, what: &str) {
    let f = find_tool("fsck.ocfs2", "ocfs2-tools");
    let ours = Command::new(env!("CARGO_BIN_EXE_fsck-ocfs2-mmp"))
        .args(["-fn"])
        .arg(dev)
        .stdin(Stdio::null())
        .output()
        .expect("running fsck.ocfs2-mmp");
    assert_eq!(
        ours.status.code(),
        Some(0),
        "{what}: fsck.ocfs2-mmp -fn:\n{}{}",
        String::from_utf8_lossy(&ours.stdout),
        String::from_utf8_lossy(&ours.stderr)
    );
    let (_tmp, copy) = without_mmp(dev);
    let out = Command::new(&f)
        .args(["-fn"])
        .arg(&copy)
        .stdin(Stdio::null())
        .output()
        .expect("running fsck.ocfs2");
    let text = String::from_utf8_lossy(&out.stdout);
    // mkfs.ocfs2 1.8.7 leaves the system directory of a volume with
    // indexed directories unindexed, which its own fsck then reports.
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('[') && !l.starts_with("[DX_TREE_MISSING]"))
        .collect();
    assert!(
        problems.is_empty() && matches!(out.status.code(), Some(0) | Some(4)),
        "{what}: fsck.ocfs2 -fn ({}):\n{text}",
        out.status
    );
}

/// A copy of `dev` that ocfs2-tools open: the MMP bit cleared in every
/// superblock copy when it has one.
fn without_mmp(dev: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = scratch("tunefs-judge-");
    let copy = tmp.path().join("copy.img");
    common::copy_without_mmp(dev, &copy);
    (tmp, copy)
}

/// `fsck.ocfs2-mmp -fy` after a kill before write `n`: exit 0 or 1.
#[track_caller]
fn fsck_y(img: &Path, n: u32) {
    let y = Command::new(env!("CARGO_BIN_EXE_fsck-ocfs2-mmp"))
        .args(["-fy"])
        .arg(img)
        .stdin(Stdio::null())
        .output()
        .expect("fsck.ocfs2-mmp -fy");
    assert!(
        matches!(y.status.code(), Some(0) | Some(1)),
        "write {n}: fsck.ocfs2-mmp -fy ({}):\n{}{}",
        y.status,
        String::from_utf8_lossy(&y.stdout),
        String::from_utf8_lossy(&y.stderr)
    );
}

/// A max-compat volume (old slot map) with backup superblocks, and a copy.
fn old_map_pair(prefix: &str) -> (Image, Image) {
    let a = Image::sparse(prefix, 1536 * MIB);
    mkfs(
        &a.path,
        4096,
        3,
        &[
            "-M",
            "local",
            "--fs-feature-level=max-compat",
            "-L",
            "old-map",
        ],
    );
    let b = Image::sparse(&format!("{prefix}theirs-"), 1536 * MIB);
    cp_sparse(&a.path, &b.path);
    (a, b)
}

/// Issue 13, item 1: the slot map's format is changed both ways as
/// tunefs.ocfs2 changes it (the same bytes everywhere), `-n` writes
/// nothing, and MMP refuses the old format.
#[test]
fn slot_map_format_changes_as_tunefs_ocfs2_changes_it() {
    let (ours, theirs_img) = old_map_pair("slotmap-");
    let (dev, other) = (ours.path.as_path(), theirs_img.path.as_path());
    let whole = digest(dev, &[]);
    tunefs(&["-n", "--fs-features=extended-slotmap"], dev)
        .expect(OK)
        .stdout_has("rewrite the slot map, empty, in the extended format");
    assert_eq!(digest(dev, &[]), whole, "-n wrote to the volume");
    for (feature, fmt) in [
        ("extended-slotmap", "extended"),
        ("noextended-slotmap", "old"),
    ] {
        let arg = format!("--fs-features={feature}");
        tunefs(&["-y", &arg], dev).expect(OK).quick();
        theirs(&["-y", &arg], other);
        assert!(query(dev).contains(&format!(" {fmt} ")), "{}", query(dev));
        assert_eq!(
            their_debugfs("stats", dev),
            their_debugfs("stats", other),
            "{feature}: stats"
        );
        assert_eq!(
            their_debugfs("ls -l //", dev),
            their_debugfs("ls -l //", other),
            "{feature}: system files"
        );
        assert_eq!(
            read_ranges(dev, &slot_map_blocks(dev)),
            read_ranges(other, &slot_map_blocks(other)),
            "{feature}: slot map bytes"
        );
        for (blk, b) in backup_blknos(dev, 4096).into_iter().map(|b| (b, b * 4096)) {
            assert_eq!(
                read_at(dev, b, 4096),
                read_at(other, b, 4096),
                "{feature}: backup superblock {blk}"
            );
        }
        both_clean(dev, feature);
    }
    // MMP needs the extended map.
    tunefs(
        &["-y", "--enable-mmp", "--fs-features=noextended-slotmap"],
        dev,
    )
    .expect(REFUSED)
    .quick()
    .one_error(s(dev), &["MMP needs the extended slot map"]);
}

/// Issue 13, item 1: `--enable-mmp` on the old slot map converts it in the
/// same run; with MMP on, the old format is refused, nothing written.
#[test]
fn enable_mmp_converts_the_old_slot_map() {
    let (ours, _) = old_map_pair("mmp-oldmap-");
    let dev = ours.path.as_path();
    tunefs(&["-y", "--enable-mmp", "--mmp-update-interval=3"], dev)
        .expect(OK)
        .quick()
        .stdout_has("rewrite the slot map, empty, in the extended format (was old): done")
        .stdout_has("enable MMP");
    let j = stats(dev);
    assert_eq!(j["mmp"], true, "{j}");
    assert!(query(dev).contains(" extended "), "{}", query(dev));
    assert!(slots(dev).iter().all(|&v| v == 0), "an empty extended map");
    both_clean(dev, "after --enable-mmp on the old map");
    let whole = digest(dev, &[]);
    tunefs(&["-y", "--fs-features=noextended-slotmap"], dev)
        .expect(REFUSED)
        .quick()
        .one_error(
            s(dev),
            &["MMP needs the extended slot map", "--disable-mmp"],
        );
    assert_eq!(digest(dev, &[]), whole, "a refusal wrote to the volume");
}

/// Issue 13, item 1: a kill before each write of a slot map rewrite leaves
/// a volume `fsck.ocfs2-mmp -y` finishes (TUNEFS_INPROG) into the old or the
/// new format, which both checkers accept.
#[test]
fn slot_map_rewrite_crash_at_every_write() {
    let (base, _) = old_map_pair("slotmap-crash-");
    let tmp = scratch("slotmap-crash-run-");
    let img = tmp.path().join("c.img");
    let mut formats = std::collections::BTreeSet::new();
    let mut n = 1;
    loop {
        cp_sparse(&base.path, &img);
        let mut c = tunefs_cmd(&["-y", "--fs-features=extended-slotmap"], &img);
        c.env("OCFS2_MMP_FAILPOINT_WRITE", n.to_string());
        let r = run_cmd(c, format!("tunefs with a kill before write {n}"));
        if r.status.success() {
            break;
        }
        assert!(r.status.code() != Some(REFUSED), "{}", r.describe());
        fsck_y(&img, n);
        both_clean(&img, &format!("kill before write {n}, then -fy"));
        let q = query(&img);
        formats.insert(if q.contains(" old ") {
            "old"
        } else {
            "extended"
        });
        n += 1;
        assert!(n < 50, "the rewrite never finished");
    }
    assert!(n >= 4, "only {n} writes: marks, map, superblocks");
    assert_eq!(formats.len(), 2, "crashes end in both formats: {formats:?}");
}

/// Issue 13, item 2: the label and a given UUID are written as
/// tunefs.ocfs2 writes them (the same bytes in every superblock copy);
/// `--cloned-volume` gives a new UUID and the "-cloned" label; `-M`
/// toggles local mounts and back to the same bytes. (tunefs.ocfs2 cannot
/// make a volume clustered here: that needs a running cluster stack.)
#[test]
fn identity_changes_as_tunefs_ocfs2_changes_it() {
    let a = Image::sparse("identity-", 1536 * MIB);
    mkfs(&a.path, 4096, 2, &["-M", "local", "-L", "before"]);
    let b = Image::sparse("identity-theirs-", 1536 * MIB);
    cp_sparse(&a.path, &b.path);
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    let uuid = "178bdc83-d502-41ef-94eb-474a677d498b";
    let arg = format!("--uuid-reset={uuid}");
    tunefs(&["-y", "-L", "after", &arg], dev).expect(OK).quick();
    theirs(&["-y", "-L", "after", &arg], other);
    assert_eq!(
        digest(dev, &[]),
        digest(other, &[]),
        "the same bytes everywhere"
    );
    assert!(their_debugfs("stats", dev).contains("UUID: 178BDC83D50241EF94EB474A677D498B"));
    both_clean(dev, "-L and -U");
    tunefs(&["-y", "--cloned-volume"], dev).expect(OK).quick();
    theirs(&["-y", "--cloned-volume"], other);
    let strip = |t: String| {
        t.lines()
            .filter(|l| !l.contains("UUID:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(their_debugfs("stats", dev)),
        strip(their_debugfs("stats", other))
    );
    assert!(their_debugfs("stats", dev).contains("Label: after-cloned"));
    assert_ne!(
        their_debugfs("stats", dev)
            .lines()
            .find(|l| l.contains("UUID:"))
            .map(str::to_string),
        Some(format!("\tUUID: {}", "178BDC83D50241EF94EB474A677D498B")),
        "a new UUID"
    );
    let before = digest(dev, &[]);
    tunefs(&["-y", "-M", "cluster"], dev).expect(OK).quick();
    assert!(
        !their_debugfs("stats", dev).contains(" local "),
        "clustered"
    );
    both_clean(dev, "-M cluster");
    tunefs(&["-y", "-M", "local"], dev).expect(OK).quick();
    assert_eq!(
        digest(dev, &[]),
        before,
        "-M local gives back the same bytes"
    );
    tunefs(&["-y", "-L", &"x".repeat(64)], dev).expect(USAGE);
    tunefs(&["-y", "--uuid-reset=12345"], dev).expect(USAGE);
}

/// Issue 13, item 2: on an MMP volume the label changes under the guard
/// (the wait, slot 0 put back).
#[test]
fn label_under_the_mmp_guard() {
    let img = mmp_volume("label-mmp-", 2);
    let dev = img.path.as_path();
    tunefs(&["-y", "-L", "guarded"], dev).expect(OK).waited();
    assert!(
        their_debugfs("stats", dev).contains("Label: guarded") || {
            // debugfs.ocfs2 refuses the MMP bit; ours shows the label.
            stats(dev)["label"] == "guarded"
        }
    );
    assert_eq!(slot0(dev), 0, "slot 0 put back");
    both_clean(dev, "-L on an MMP volume");
}

// ------------------------------------------------------------------ 2. heartbeat in another process

/// `debugfs-mmp -w -R "mmp heartbeat"` in the background; its stderr lines
/// arrive over a channel.
struct Heartbeat {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stdout: Option<Reader>,
    started: Instant,
}

impl Heartbeat {
    fn start(dev: &Path) -> Heartbeat {
        let started = Instant::now();
        let mut child = Command::new(DEBUGFS)
            .args(["-w", "-R", "mmp heartbeat"])
            .arg(dev)
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn debugfs-mmp -w -R \"mmp heartbeat\"");
        let mut so = child.stdout.take().expect("stdout piped");
        let se = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(se).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = so.read_to_string(&mut s);
            s
        });
        Heartbeat {
            child: Some(child),
            lines,
            seen: Vec::new(),
            stdout: Some(stdout),
            started,
        }
    }

    /// Until the sequence has moved once: the heartbeat is past its own wait
    /// (11 s after its first sequence) and updates slot 0 every second.
    /// `mmp status -i` shows the sequence meanwhile.
    fn wait_beating(&mut self, dev: &Path) {
        let beats = |seen: &[String]| {
            seen.iter()
                .filter(|l| l.contains("heartbeat: slot 0 = "))
                .count()
        };
        let mut shown = false;
        while beats(&self.seen) < 2 {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(l) => self.seen.push(l),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the heartbeat ended early:\n{}", self.seen.join("\n"))
                }
            }
            if !shown && beats(&self.seen) >= 1 {
                let r = mmp_status(dev, true);
                let j = r.expect(2).json();
                assert_eq!(j["verdict"]["kind"], "not_watched", "{}", r.describe());
                assert_eq!(j["slots"][0]["state"], "sequence", "{}", r.describe());
                shown = true;
            }
            assert!(
                self.started.elapsed() < Duration::from_secs(40),
                "the heartbeat did not update slot 0 within 40 s:\n{}",
                self.seen.join("\n")
            );
        }
        assert!(shown, "mmp status -i saw the sequence");
        let v = slot0(dev);
        assert!((1..=SEQ_MAX).contains(&v), "slot 0 holds {v:#x}");
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn finish(mut self) -> Run {
        let mut child = self.child.take().expect("running");
        let status = wait_deadline(&mut child, self.started, "mmp heartbeat");
        let stdout = self
            .stdout
            .take()
            .expect("stdout reader")
            .join()
            .expect("join");
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(l);
        }
        Run {
            what: "debugfs-mmp -w -R \"mmp heartbeat\"".into(),
            status,
            stdout,
            stderr: self.seen.join("\n"),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The live and the dead heartbeat, side by side (each waits twice).
#[test]
fn heartbeat_in_another_process() {
    std::thread::scope(|sc| {
        std::thread::Builder::new()
            .name("live".into())
            .spawn_scoped(sc, live_heartbeat_blocks_changes)
            .expect("spawn thread");
        std::thread::Builder::new()
            .name("dead".into())
            .spawn_scoped(sc, dead_heartbeat_is_stale_and_cleared)
            .expect("spawn thread");
    });
}

fn live_heartbeat_blocks_changes() {
    let img = mmp_volume("live", 1);
    let dev = img.path.as_path();
    let d = s(dev);
    let mut hb = Heartbeat::start(dev);
    hb.wait_beating(dev);
    let map = slot_map_blocks(dev);
    let before = digest(dev, &map);

    std::thread::scope(|sc| {
        // tunefs runs the kernel's check: the sequence moves during its wait.
        sc.spawn(|| {
            tunefs(&["-y", "--mmp-update-interval=3"], dev)
                .expect(REFUSED)
                .moved_within_wait()
                .last_error(d, &["in use", "slot 0 moved"]);
        });
        // So does a journal resize (issue 13, item 4): nothing written.
        sc.spawn(|| {
            tunefs(&["-y", "-J", "size=8M"], dev)
                .expect(REFUSED)
                .moved_within_wait()
                .last_error(d, &["in use", "slot 0 moved"]);
        });
        // New node slots need every slot free: refused at once, before
        // any wait (issue 13, item 3).
        sc.spawn(|| {
            tunefs(&["-y", "-N", "6"], dev)
                .expect(REFUSED)
                .quick()
                .last_error(d, &["slot 0 is held", "every slot must be free"]);
        });
        // --clear-mmp watches the same window and refuses.
        sc.spawn(|| {
            tunefs(&["-y", "--clear-mmp"], dev)
                .expect(REFUSED)
                .waited()
                .stdout_has("Found slot 0: 0x")
                .last_error(d, &["slot 0 moved", "a node is live; not clearing"]);
        });
        sc.spawn(|| {
            let r = mmp_status(dev, false);
            let j = r.expect(1).moved_within_wait().json();
            assert_eq!(j["verdict"]["kind"], "active", "{}", r.describe());
            assert_eq!(j["verdict"]["slot"], 0, "{}", r.describe());
        });
    });
    assert_eq!(
        digest(dev, &map),
        before,
        "a refused tunefs wrote outside the slot map block"
    );
    assert_eq!(stats(dev)["mmp_update_interval"], 1);

    // A clean stop: SIGINT, exit 0, slot 0 back to 0.
    let st = Command::new(find_tool("kill", "procps"))
        .args(["-s", "INT", &hb.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill -s INT");
    let r = hb.finish();
    r.expect(0).stdout_has("stopped by signal 2");
    assert_eq!(slot0(dev), 0, "{}", r.describe());
    let r = mmp_status(dev, false);
    let j = r.expect(0).quick().json();
    assert_eq!(j["verdict"]["kind"], "clean", "{}", r.describe());
}

fn dead_heartbeat_is_stale_and_cleared() {
    let img = mmp_volume("dead", 1);
    let dev = img.path.as_path();
    let mut hb = Heartbeat::start(dev);
    hb.wait_beating(dev);
    // A crash: no chance to put slot 0 back.
    hb.child.as_mut().expect("running").kill().expect("SIGKILL");
    let r = hb.finish();
    assert_eq!(r.status.signal(), Some(9), "{}", r.describe());
    let seq = slot0(dev);
    assert!((1..=SEQ_MAX).contains(&seq), "slot 0 holds {seq:#x}");
    let map = slot_map_blocks(dev);
    let before = digest(dev, &map);
    let copy = img.copy("watch.img");

    std::thread::scope(|sc| {
        sc.spawn(|| {
            let r = mmp_status(dev, false);
            let j = r.expect(0).waited().json();
            assert_eq!(j["verdict"]["kind"], "stale", "{}", r.describe());
            assert_eq!(j["verdict"]["slots"], serde_json::json!([0]));
            assert_eq!(j["waited"], 11, "{}", r.describe());
        });
        // The same dead volume, on a copy: watch, then override.
        sc.spawn(|| {
            tunefs(&["-y", "--clear-mmp"], &copy)
                .expect(OK)
                .waited()
                .stdout_has(&format!("Found slot 0: {seq:#010x}"))
                .stdout_has(&format!("Slot 0 reset to 0 (empty) from {seq:#010x}"))
                .stderr_has("watching one full wait window");
            assert_eq!(slot0(&copy), 0);
            let r = mmp_status(&copy, true);
            assert_eq!(r.expect(0).json()["verdict"]["kind"], "clean");
        });
    });
    assert_eq!(slot0(dev), seq, "mmp status wrote to the slot map");

    // --force: no watch, and it says so.
    let r = tunefs(&["-y", "--clear-mmp", "--force"], dev);
    r.expect(OK)
        .quick()
        .stdout_has("--force: not watching")
        .stdout_has(&format!("Slot 0 reset to 0 (empty) from {seq:#010x}"));
    assert_eq!(slot0(dev), 0);
    assert_eq!(
        digest(dev, &map),
        before,
        "--clear-mmp wrote outside the slot map block"
    );
}

// ------------------------------------------------------------------ 3. stale SEQ_FSCK

#[test]
fn stale_fsck_marker() {
    let img = mmp_volume("fsck", 5);
    let dev = img.path.as_path();
    let d = s(dev);
    debugfs(&["-w", "-R", "mmp set 0 fsck"], dev).expect(0);
    assert_eq!(slot0(dev), SEQ_FSCK);
    let whole = digest(dev, &[]);
    for args in [
        &["-y", "--mmp-update-interval=3"][..],
        &["-y", "--disable-mmp"],
    ] {
        tunefs(args, dev)
            .expect(REFUSED)
            .quick()
            .one_error(d, &["in use", "slot 0 holds SEQ_FSCK", "fsck"]);
    }
    let r = mmp_status(dev, false);
    assert_eq!(
        r.expect(1).quick().json()["verdict"]["kind"],
        "fsck_running"
    );
    // -n: what it would reset, nothing written.
    tunefs(&["-n", "--clear-mmp", "--force"], dev)
        .expect(OK)
        .quick()
        .stdout_has("Found slot 0: 0xe24d4d50")
        .stdout_has("Would reset 1 slot(s) to 0 (dry run, nothing written)");
    assert_eq!(digest(dev, &[]), whole, "a refusal or -n wrote");

    tunefs(&["-y", "--clear-mmp"], dev)
        .expect(OK)
        .waited()
        .stdout_has("Found slot 0: 0xe24d4d50 (fsck is running (SEQ_FSCK))")
        .stdout_has("Slot 0 reset to 0 (empty) from 0xe24d4d50 (fsck)");
    assert_eq!(slot0(dev), 0);
    tunefs(&["-y", "--clear-mmp"], dev)
        .expect(OK)
        .quick()
        .stdout_has("Nothing to clear");
    // Now the change goes through.
    tunefs(&["-y", "--mmp-update-interval=3"], dev)
        .expect(OK)
        .waited();
    assert_eq!(stats(dev)["mmp_update_interval"], 3);
    assert_eq!(slot0(dev), 0);
}

// ------------------------------------------------------------------ 4. crash safety

/// The bytes a crash may leave: the superblocks and the slot map blocks.
struct Snapshot {
    supers: Vec<Vec<u8>>,
    map: Vec<Vec<u8>>,
}

fn snapshot(dev: &Path, sb: &[(u64, u64)], map: &[(u64, u64)]) -> Snapshot {
    Snapshot {
        supers: read_ranges(dev, sb),
        map: read_ranges(dev, map),
    }
}

/// `OCFS2_MMP_FAILPOINT_WRITE=N tunefs ARGS` on a copy of `base`, for N =
/// 1, 2, ... until a run completes. Returns the number of writes the
/// operation makes, and a line per crash point.
fn crash_every_write(
    base: &Image,
    name: &str,
    args: &[&str],
    new_mmp: bool,
    new_interval: u16,
) -> (u32, Vec<String>) {
    const BATCH: u32 = 8;
    let sb = superblock_ranges(&base.path);
    let map = slot_map_blocks(&base.path);
    let old = snapshot(&base.path, &sb, &map);
    let old_j = stats(&base.path);
    let mut runs: Vec<(u32, PathBuf, Run)> = Vec::new();
    let mut start = 1;
    let completed = loop {
        assert!(start < 64, "{name}: no run completed in {start} tries");
        let batch: Vec<(u32, PathBuf, Run)> = std::thread::scope(|sc| {
            let handles: Vec<_> = (start..start + BATCH)
                .map(|n| {
                    sc.spawn(move || {
                        let p = base.copy(&format!("{name}-{n}.img"));
                        let mut c = tunefs_cmd(args, &p);
                        c.env("OCFS2_MMP_FAILPOINT_WRITE", n.to_string());
                        let r = run_cmd(c, format!("{PROG} {} (failpoint {n})", args.join(" ")));
                        (n, p, r)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("crash run thread"))
                .collect()
        });
        runs.extend(batch);
        start += BATCH;
        if let Some((n, _, _)) = runs.iter().find(|(_, _, r)| r.status.success()) {
            break *n;
        }
    };
    let reference = {
        let (_, p, r) = &runs[completed as usize - 1];
        r.expect(OK).waited();
        snapshot(p, &sb, &map)
    };
    assert!(
        reference.supers[0] != old.supers[0],
        "{name}: the run changed nothing"
    );
    assert_eq!(reference.map, old.map, "{name}: slot map after a full run");
    for (n, p, r) in &runs {
        if *n >= completed {
            r.expect(OK);
            let s = snapshot(p, &sb, &map);
            assert!(
                s.supers == reference.supers && s.map == reference.map,
                "{name}: run with failpoint {n} (never reached) differs from the first full run"
            );
        }
    }

    // Every crash, checked and then recovered, side by side.
    let mut table: Vec<(u32, String)> = std::thread::scope(|sc| {
        let handles: Vec<_> = runs
            .iter()
            .filter(|(n, _, _)| *n < completed)
            .map(|(n, p, r)| {
                let (old, reference, old_j, sb, map) = (&old, &reference, &old_j, &sb, &map);
                sc.spawn(move || {
                    assert_eq!(
                        r.status.signal(),
                        Some(6),
                        "{name}: failpoint {n} should abort\n{}",
                        r.describe()
                    );
                    assert!(
                        r.stderr.contains(&format!("failpoint: aborting before write {n}")),
                        "{}",
                        r.describe()
                    );
                    // Readable, and each superblock entirely old or new.
                    let j = stats(p);
                    let now = snapshot(p, sb, map);
                    let which: Vec<&str> = now
                        .supers
                        .iter()
                        .zip(&old.supers)
                        .zip(&reference.supers)
                        .enumerate()
                        .map(|(i, ((b, o), nw))| {
                            if b == o {
                                "old"
                            } else if b == nw {
                                "new"
                            } else {
                                panic!("{name}: failpoint {n}: superblock #{i} is neither old nor new")
                            }
                        })
                        .collect();
                    if which[0] == "new" {
                        assert_eq!(j["mmp"], new_mmp, "{name}: failpoint {n}: {j}");
                        assert_eq!(j["mmp_update_interval"], new_interval);
                        assert!(
                            which.iter().all(|w| *w == "new"),
                            "{name}: failpoint {n}: primary written before a backup: {which:?}"
                        );
                    } else {
                        assert_eq!(j["mmp"], old_j["mmp"], "{name}: failpoint {n}: {j}");
                        assert_eq!(j["mmp_update_interval"], old_j["mmp_update_interval"]);
                    }
                    let s0 = slot0(p);
                    // 0, the guard's own sequence (killed in its wait: it
                    // reads as a mount that died), or SEQ_FSCK.
                    assert!(
                        s0 == 0 || s0 == SEQ_FSCK || (1..=SEQ_MAX).contains(&s0),
                        "{name}: failpoint {n}: slot 0 holds {s0:#x}"
                    );
                    let line = format!(
                        "{name}: abort before write {n}: superblocks (primary, backups) {which:?}, slot 0 {s0:#010x}"
                    );
                    if s0 == SEQ_FSCK {
                        tunefs(&["-y", "--clear-mmp", "--force"], p)
                            .expect(OK)
                            .quick()
                            .stdout_has("Slot 0 reset to 0 (empty) from 0xe24d4d50 (fsck)");
                    } else if s0 != 0 {
                        // A sequence nobody moves: proved dead by watching.
                        tunefs(&["-y", "--clear-mmp"], p).expect(OK).waited();
                    }
                    let again = tunefs(args, p);
                    again.expect(OK);
                    if which[0] == "new" {
                        again.quick().stdout_has("Nothing to change");
                    } else {
                        again.waited();
                    }
                    let fin = snapshot(p, sb, map);
                    assert!(
                        fin.supers == reference.supers && fin.map == reference.map,
                        "{name}: failpoint {n}: the second run did not reach the uninterrupted state"
                    );
                    (*n, line)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("crash check thread"))
            .collect()
    });
    table.sort();
    (completed - 1, table.into_iter().map(|(_, l)| l).collect())
}

#[test]
fn crash_at_every_write() {
    let base = Image::sparse("crash", 5 * GIB);
    mkfs(&base.path, 4096, 4, &["-J", "size=4M"]);
    tunefs(
        &["-y", "--enable-mmp", "--mmp-update-interval=2"],
        &base.path,
    )
    .expect(OK);
    check_superblocks(&base.path, false, 2, "crash base");
    let (disable, interval) = std::thread::scope(|sc| {
        let a =
            sc.spawn(|| crash_every_write(&base, "disable", &["-y", "--disable-mmp"], false, 2));
        let b = sc.spawn(|| {
            crash_every_write(
                &base,
                "interval",
                &["-y", "--mmp-update-interval=9"],
                true,
                9,
            )
        });
        (a.join().expect("disable"), b.join().expect("interval"))
    });
    for (name, (writes, lines)) in [
        ("--disable-mmp", &disable),
        ("--mmp-update-interval=9", &interval),
    ] {
        println!("{name}: {writes} device writes");
        for l in lines {
            println!("  {l}");
        }
        // Its own sequence into slot 0, moved every 2 s of its 11 s proof
        // wait (5 moves), SEQ_FSCK over it, the two backups, the primary,
        // slot 0 back.
        assert_eq!(
            *writes,
            11,
            "{name}: writes on a volume with 2 backup superblocks:\n{}",
            lines.join("\n")
        );
    }
}

// ------------------------------------------------------------------ 5. bad input

#[test]
fn bad_input() {
    let img = mmp_volume("bad", 5);
    let dev = img.path.as_path();
    let d = s(dev);
    let whole = digest(dev, &[]);
    let unchanged = |what: &str| assert_eq!(digest(dev, &[]), whole, "{what} wrote to the volume");

    // Intervals: usage errors before the device is opened.
    for v in ["0", "301", "-1", "abc", "", "5s", "65541"] {
        for args in [
            vec!["-y".to_string(), format!("--mmp-update-interval={v}")],
            vec!["-y".into(), "--mmp-update-interval".into(), v.into()],
            vec![
                "-y".into(),
                "--enable-mmp".into(),
                format!("--mmp-update-interval={v}"),
            ],
        ] {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            tunefs(&a, dev)
                .expect(USAGE)
                .quick()
                .one_error(d, &["MMP update interval", "1 to 300 seconds"]);
        }
    }
    unchanged("a bad interval");

    // Feature names.
    for (list, needles) in [
        ("bogus", &["unknown feature 'bogus'"][..]),
        ("nobogus", &["unknown feature 'nobogus'"]),
        ("mmp,frob", &["unknown feature 'frob'"]),
        (
            "heartbeat-device",
            &["feature 'heartbeat-device'", "not changed by this release"],
        ),
        (
            "extended-slotmap,noextended-slotmap",
            &["extended-slotmap is both turned on and off"],
        ),
        ("mmp,nommp", &["mmp is both turned on and off"]),
    ] {
        tunefs(&["-y", &format!("--fs-features={list}")], dev)
            .expect(USAGE)
            .quick()
            .one_error(d, needles);
    }
    for (args, needle) in [
        (&["-y", "--force"][..], "--force goes with --clear-mmp"),
        (&["-y"], "nothing to do"),
        (&["-Q", "%A", "--disable-mmp"], "-Q queries"),
        (
            &["--disable-mmp", "--mmp-update-interval=3"],
            "--mmp-update-interval with --disable-mmp",
        ),
    ] {
        tunefs(args, dev).expect(USAGE).one_error(d, &[needle]);
    }
    let r = tunefs(&["-y", "--enable-mmp", "--disable-mmp"], dev);
    r.expect(USAGE).stderr_has("cannot be used with");
    unchanged("a usage error");

    // -n on an MMP volume: no wait, nothing written, the plan printed.
    tunefs(&["-n", "--mmp-update-interval=4"], dev)
        .expect(OK)
        .quick()
        .stdout_has("Would (dry run, nothing written):")
        .stdout_has("MMP update interval 5 -> 4 s")
        .stdout_has("write the superblock and 0 backup superblock(s)");
    tunefs(&["-n", "--disable-mmp"], dev)
        .expect(OK)
        .quick()
        .stdout_has("Would (dry run, nothing written):")
        .stdout_has("disable MMP");
    // Already so: nothing to change, no wait.
    tunefs(&["-y", "--enable-mmp", "--mmp-update-interval=5"], dev)
        .expect(OK)
        .quick()
        .stdout_has("Nothing to change: MMP is enabled, update interval 5 s");
    unchanged("-n");

    // A volume without MMP.
    let plain = Image::sparse("plain", 256 * MIB);
    mkfs(&plain.path, 4096, 2, &["-J", "size=4M"]);
    let p = plain.path.as_path();
    let pd = s(p);
    let plain_whole = digest(p, &[]);
    tunefs(&["-y", "--mmp-update-interval=3"], p)
        .expect(REFUSED)
        .quick()
        .one_error(pd, &["MMP is not enabled", "--enable-mmp"]);
    tunefs(&["-y", "--clear-mmp"], p)
        .expect(REFUSED)
        .quick()
        .one_error(pd, &["MMP is not enabled", "no MMP marker to clear"]);
    tunefs(&["-n", "--enable-mmp", "--mmp-update-interval=2"], p)
        .expect(OK)
        .quick()
        .stdout_has("Would (dry run, nothing written):")
        .stdout_has("enable MMP (incompat 0x10000)")
        .stdout_has("MMP update interval 0 -> 2 s");
    tunefs(&["-y", "--disable-mmp"], p)
        .expect(OK)
        .quick()
        .stdout_has("Nothing to change: MMP is disabled");
    assert_eq!(digest(p, &[]), plain_whole, "a refusal or -n wrote");

    // Not OCFS2: a file of zeros. Exit 8 (`exit::FAILED`, the man page's
    // "holds no OCFS2 volume"), one line, still zeros.
    let zeros = Image::sparse("zeros", 64 * MIB);
    let z = zeros.path.as_path();
    let zd = s(z);
    for args in [
        &["-y", "--enable-mmp"][..],
        &["-y", "--disable-mmp"],
        &["-y", "--clear-mmp", "--force"],
        &["-n", "--enable-mmp"],
        &["-Q", "%A"],
    ] {
        tunefs(args, z)
            .expect(FAILED)
            .quick()
            .one_error(zd, &["no OCFS2 superblock"]);
    }
    assert_eq!(
        digest(z, &[]),
        digest(z, &[(0, 64 * MIB)]),
        "the zeros file was written"
    );
    let missing = zeros.dir.path().join("missing.img");
    tunefs(&["-y", "--enable-mmp"], &missing)
        .expect(FAILED)
        .one_error(s(&missing), &[]);
}

#[test]
fn read_only_image() {
    let img = mmp_volume("ro", 5);
    let dev = img.path.as_path();
    let d = s(dev);
    // nobody must reach the image: the directory is 0755, the image 0444.
    fs::set_permissions(img.dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod dir");
    fs::set_permissions(dev, fs::Permissions::from_mode(0o444)).expect("chmod 0444");
    let whole = digest(dev, &[]);
    let as_user = |args: &[&str]| -> Run {
        if euid() != 0 {
            return tunefs(args, dev);
        }
        // Root ignores permission bits: run as nobody.
        let mut c = Command::new(find_tool("setpriv", "util-linux"));
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            TUNEFS,
        ])
        .args(args)
        .arg(dev)
        .env_remove("OCFS2_MMP_FAILPOINT_WRITE");
        run_cmd(c, format!("{PROG} {} as nobody", args.join(" ")))
    };
    // Control: nobody can run the binary and read the image.
    let r = as_user(&["-Q", "%A %I\\n"]);
    assert_eq!(
        r.expect(OK).stdout,
        "enabled 5\n",
        "cannot run {TUNEFS} as nobody (are target/ and its parents world-readable?)"
    );
    // Reading is enough for -n.
    as_user(&["-n", "--disable-mmp"])
        .expect(OK)
        .stdout_has("Would (dry run, nothing written):");
    for args in [
        &["-y", "--disable-mmp"][..],
        &["-y", "--mmp-update-interval=3"],
        &["-y", "--clear-mmp", "--force"],
    ] {
        as_user(args)
            .expect(FAILED)
            .quick()
            .one_error(d, &["Permission denied"]);
    }
    assert_eq!(digest(dev, &[]), whole, "the read-only image was written");
    assert_eq!(
        fs::metadata(dev).expect("stat").permissions().mode() & 0o777,
        0o444
    );
}

/// Issue 13, item 2: `--backup-super` and `--fs-features=nobackup-super`
/// leave images byte-identical to tunefs.ocfs2's; a volume too small, or
/// a backup cluster in use, is refused with nothing written; a kill before
/// each write of `--backup-super` leaves a volume `fsck.ocfs2-mmp -fy`
/// makes clean for both checkers.
#[test]
fn backup_superblocks_as_tunefs_ocfs2_makes_them() {
    let a = Image::sparse("backup-", 5 * GIB);
    mkfs(&a.path, 4096, 2, &["-M", "local", "--no-backup-super"]);
    let b = Image::sparse("backup-theirs-", 5 * GIB);
    cp_sparse(&a.path, &b.path);
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    let base = a.copy("base.img");
    tunefs(&["-y", "--backup-super"], dev)
        .expect(OK)
        .quick()
        .stdout_has("blocks [262144, 1048576]");
    theirs(&["-y", "--backup-super"], other);
    assert_eq!(
        digest(dev, &[]),
        digest(other, &[]),
        "--backup-super: the same image"
    );
    both_clean(dev, "--backup-super");
    tunefs(&["-y", "--fs-features=nobackup-super"], dev)
        .expect(OK)
        .quick();
    theirs(&["-y", "--fs-features=nobackup-super"], other);
    assert_eq!(
        digest(dev, &[]),
        digest(other, &[]),
        "nobackup-super: the same image"
    );
    both_clean(dev, "nobackup-super");

    // A backup cluster in use: refused, nothing written.
    let busy = a.copy("busy.img");
    {
        let v = Volume::open(Box::new(
            FileDevice::open(
                &busy,
                OpenMode {
                    write: true,
                    exclusive: false,
                },
            )
            .unwrap(),
        ))
        .unwrap();
        let c = 262_144 / u64::from(v.cluster_size() / v.block_size());
        ocfs2_format::alloc::claim_clusters(&v, &[(c, 1)]).unwrap();
    }
    let whole = digest(&busy, &[]);
    tunefs(&["-y", "--backup-super"], &busy)
        .expect(REFUSED)
        .quick()
        .one_error(s(&busy), &["is in use", "need their clusters free"]);
    assert_eq!(digest(&busy, &[]), whole, "a refusal wrote to the volume");
    let small = Image::sparse("backup-small-", 512 * MIB);
    mkfs(&small.path, 4096, 2, &["-M", "local", "--no-backup-super"]);
    tunefs(&["-y", "--backup-super"], &small.path)
        .expect(REFUSED)
        .one_error(s(&small.path), &["smaller than 1 GiB"]);

    // A kill before each write.
    let img = a.dir.path().join("crash.img");
    let mut n = 1;
    loop {
        cp_sparse(&base, &img);
        let mut c = tunefs_cmd(&["-y", "--backup-super"], &img);
        c.env("OCFS2_MMP_FAILPOINT_WRITE", n.to_string());
        if run_cmd(c, format!("--backup-super, killed before write {n}"))
            .status
            .success()
        {
            break;
        }
        fsck_y(&img, n);
        both_clean(
            &img,
            &format!("--backup-super killed before write {n}, then -fy"),
        );
        n += 1;
        assert!(n < 100, "--backup-super never finished");
    }
    assert!(n > 4, "only {n} writes");
}

/// Issue 13, item 2: `--cluster-stack=o2cb --cluster-name=NAME` records
/// the stack as mkfs.ocfs2 records it (debugfs.ocfs2's stats agree but for
/// mkfs's random generation and times), converting the old slot map it
/// needs; a local volume is refused; `--update-cluster-stack` without a
/// running stack says so and writes nothing.
#[test]
fn cluster_stack_as_mkfs_ocfs2_records_it() {
    let uuid = "178BDC83-D502-41EF-94EB-474A677D498B";
    let a = Image::sparse("stack-", GIB);
    mkfs(&a.path, 4096, 2, &["-L", "st", "-U", uuid]);
    let b = Image::sparse("stack-mkfs-", GIB);
    mkfs(
        &b.path,
        4096,
        2,
        &[
            "-L",
            "st",
            "-U",
            uuid,
            "--cluster-stack=o2cb",
            "--cluster-name=mycl",
            "--global-heartbeat",
        ],
    );
    let dev = a.path.as_path();
    tunefs(
        &[
            "-y",
            "--cluster-stack=o2cb",
            "--cluster-name=mycl",
            "--global-heartbeat",
        ],
        dev,
    )
    .expect(OK)
    .quick()
    .stdout_has("cluster stack o2cb, cluster mycl, global heartbeat: done");
    let strip = |t: String| {
        t.lines()
            .filter(|l| {
                !["Generation", "time:", "Last Check", "DX Seeds"]
                    .iter()
                    .any(|k| l.contains(k))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        strip(their_debugfs("stats", dev)),
        strip(their_debugfs("stats", &b.path))
    );
    both_clean(dev, "--cluster-stack=o2cb");
    // The old slot map goes extended with it.
    let c = Image::sparse("stack-oldmap-", GIB);
    mkfs(&c.path, 4096, 2, &["--fs-feature-level=max-compat"]);
    tunefs(
        &["-y", "--cluster-stack=pcmk", "--cluster-name=pc"],
        &c.path,
    )
    .expect(OK)
    .stdout_has("rewrite the slot map, empty, in the extended format");
    assert!(their_debugfs("stats", &c.path).contains("userspace-stack"));
    both_clean(&c.path, "--cluster-stack=pcmk on the old slot map");
    let d = Image::sparse("stack-local-", GIB);
    mkfs(&d.path, 4096, 2, &["-M", "local"]);
    let whole = digest(&d.path, &[]);
    tunefs(&["-y", "--cluster-stack=o2cb", "--cluster-name=x"], &d.path)
        .expect(REFUSED)
        .one_error(s(&d.path), &["a local volume has no cluster stack"]);
    if !Path::new("/sys/fs/ocfs2/cluster_stack").exists() {
        tunefs(&["-y", "--update-cluster-stack"], &d.path)
            .expect(USAGE)
            .one_error(s(&d.path), &["no running cluster stack here"]);
    }
    assert_eq!(digest(&d.path, &[]), whole, "a refusal wrote to the volume");
}

/// What debugfs.ocfs2 says of every journal's size and extents, of its
/// jbd2 superblock, and of the global bitmap's counts.
fn journal_shape(dev: &Path, slots: u16) -> String {
    let (_tmp, copy) = without_mmp(dev);
    let dev = copy.as_path();
    let mut out = String::new();
    for n in 0..slots {
        let stat = their_debugfs(&format!("stat //journal:{n:04}"), dev);
        let keep = |l: &&str| {
            l.contains("Clusters:")
                || l.contains("Size:")
                || l.contains("Journal Flags")
                || l.trim_start().starts_with(|c: char| c.is_ascii_digit())
        };
        out.extend(stat.lines().filter(keep).map(|l| format!("{l}\n")));
        let log = their_debugfs(&format!("logdump {n}"), dev);
        out.extend(log.lines().take(5).map(|l| format!("{l}\n")));
    }
    let gb = their_debugfs("stat //global_bitmap", dev);
    out.extend(
        gb.lines()
            .filter(|l| l.contains("Bitmap Total"))
            .map(|l| format!("{l}\n")),
    );
    out
}

/// Issue 13, item 4: `-J size=` grows and shrinks every journal as
/// tunefs.ocfs2 does on a copy without MMP (the same extents, the same jbd2
/// superblock, the same bitmap counts), under the MMP guard; `-n` writes
/// nothing; a journal that needs recovery and a size the volume cannot
/// hold are refused before anything is written.
#[test]
fn journal_size_changes_as_tunefs_ocfs2_changes_it() {
    let (a, b) = parity_pair("journal-", 1024 * MIB, &["-M", "local", "-J", "size=8M"]);
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    let whole = digest(dev, &[]);
    tunefs(&["-n", "-J", "size=16M"], dev)
        .expect(OK)
        .stdout_has("journal:0001: 8388608 -> 16777216 bytes");
    assert_eq!(digest(dev, &[]), whole, "-n wrote to the volume");
    tunefs(&["-y", "-J", "size=2G"], dev)
        .expect(REFUSED)
        .quick()
        .one_error(s(dev), &["the journals need", "free"]);
    assert_eq!(digest(dev, &[]), whole, "a refusal wrote to the volume");
    for size in ["16M", "4M", "12M"] {
        let arg = format!("size={size}");
        tunefs(&["-y", "-J", &arg], dev)
            .expect(OK)
            .stdout_has("formatted afresh: done");
        theirs(&["-J", &arg], other);
        assert_eq!(journal_shape(dev, 2), journal_shape(other, 2), "-J {arg}");
        both_clean(dev, &arg);
        assert_eq!(stats(dev)["mmp"], true);
    }
    // A dirty journal (a node died) is the replay's first.
    {
        let v = Volume::open(Box::new(
            FileDevice::open(
                dev,
                OpenMode {
                    write: true,
                    exclusive: false,
                },
            )
            .unwrap(),
        ))
        .unwrap();
        let j = v.system_inode("journal:0001").unwrap();
        let mut ino = v.read_inode(j).unwrap();
        let flags = ino.di().journal_flags() | ocfs2_format::ondisk::JOURNAL_DIRTY_FL;
        ino.di_mut().set_bitmap_used(flags);
        v.write_meta(j, &mut ino.buf, ocfs2_format::blockcheck::CheckAt::Inode)
            .unwrap();
    }
    let whole = digest(dev, &[]);
    tunefs(&["-y", "-J", "size=8M"], dev)
        .expect(REFUSED)
        .quick()
        .one_error(s(dev), &["journal:0001 is dirty", "fsck.ocfs2-mmp"]);
    assert_eq!(digest(dev, &[]), whole, "a refusal wrote to the volume");
}

/// Issue 13, item 4: a kill before each write of a journal resize (both
/// ways) leaves a volume `fsck.ocfs2-mmp -fy` repairs and both checkers
/// accept, each journal either its old or its new size.
#[test]
fn journal_resize_crash_at_every_write() {
    let base = Image::sparse("journal-crash-", 512 * MIB);
    mkfs(&base.path, 4096, 2, &["-M", "local", "-J", "size=8M"]);
    for (size, new) in [("size=12M", 3072u32), ("size=4M", 1024)] {
        let n = kill_at_every_write(&base.path, &["-y", "-J", size], &mut |img, n| {
            let v = open_ro(img);
            for slot in 0..2 {
                let j = v.system_inode(&format!("journal:{slot:04}")).unwrap();
                let c = v.read_inode(j).unwrap().di().i_clusters.get();
                assert!(
                    c == 2048 || c == new,
                    "-J {size}, kill before write {n}: journal:{slot:04} has {c} clusters"
                );
            }
        });
        assert!(n >= 6, "-J {size}: only {n} writes");
    }
}

/// What debugfs.ocfs2 says of the system directory and of the files of
/// slots `slots` (times left out), and of the superblock and slot map.
fn slots_shape(dev: &Path, slots: std::ops::Range<u16>) -> String {
    let (_tmp, copy) = without_mmp(dev);
    let dev = copy.as_path();
    let mut out = String::new();
    for l in their_debugfs("ls -l //", dev).lines() {
        // inode, mode, links, uid, gid, size, name (not the time); an
        // orphan directory's size differs by design (below).
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 9 {
            let size = if f[8].starts_with("orphan_dir") {
                "-"
            } else {
                f[5]
            };
            out += &format!(
                "{} {} {} {} {} {size} {}\n",
                f[0], f[1], f[2], f[3], f[4], f[8]
            );
        }
    }
    // The superblock's check differs by its MMP update interval (ours
    // went through --enable-mmp).
    out.extend(
        their_debugfs("stats", dev)
            .lines()
            .filter(|l| !l.contains("CRC32"))
            .map(|l| format!("{l}\n")),
    );
    out += &their_debugfs("slotmap", dev);
    for slot in slots {
        for base in [
            "orphan_dir",
            "extent_alloc",
            "inode_alloc",
            "journal",
            "local_alloc",
            "truncate_log",
            "aquota.user",
            "aquota.group",
        ] {
            // By design: a block orphan directory gets i_size one block,
            // as mkfs.ocfs2 and the kernel give directories (libocfs2's
            // ocfs2_init_dir leaves it short of the trailer). Block checks
            // cover the times, which differ.
            let dir = base == "orphan_dir";
            let st = their_debugfs(&format!("stat //{base}:{slot:04}"), dev);
            out.extend(
                st.lines()
                    .filter(|l| !l.contains("time:"))
                    .filter(|l| !(l.contains("CRC32") || dir && l.contains("Size:")))
                    .map(|l| format!("{l}\n")),
            );
        }
        out.extend(
            their_debugfs(&format!("logdump {slot}"), dev)
                .lines()
                .take(5)
                .map(|l| format!("{l}\n")),
        );
    }
    out
}

/// Issue 13, item 3: `-N` adds node slots as tunefs.ocfs2 adds them on a
/// copy without MMP (the same system files, inode for inode and block for
/// block, the same journals, quota files, superblock and slot map), under
/// the MMP guard; the kernel's slot count is only written last. Zero or
/// too many slots are refused, nothing written.
#[test]
fn node_slots_are_added_as_tunefs_ocfs2_adds_them() {
    // Inline directories and quotas; block directories with an index and
    // metaecc.
    for features in [
        "--fs-features=usrquota,grpquota",
        "--fs-features=noinline-data,metaecc",
    ] {
        let (a, b) = parity_pair(
            "slots-",
            1024 * MIB,
            &["-M", "local", "-J", "size=8M", features],
        );
        let (dev, other) = (a.path.as_path(), b.path.as_path());
        let whole = digest(dev, &[]);
        tunefs(&["-n", "-N", "4"], dev)
            .expect(OK)
            .stdout_has("node slots 2 -> 4");
        tunefs(&["-y", "-N", "0"], dev)
            .expect(USAGE)
            .quick()
            .one_error(s(dev), &["at least one"]);
        tunefs(&["-y", "-N", "256"], dev)
            .expect(REFUSED)
            .quick()
            .one_error(s(dev), &["at most 255"]);
        assert_eq!(
            digest(dev, &[]),
            whole,
            "-n or a refusal wrote to the volume"
        );
        tunefs(&["-y", "-N", "4"], dev)
            .expect(OK)
            .stdout_has("node slots 2 -> 4")
            .stdout_has(": done");
        theirs(&["-N", "4"], other);
        assert_eq!(
            slots_shape(dev, 2..4),
            slots_shape(other, 2..4),
            "{features}: -N 4"
        );
        assert_eq!(stats(dev)["mmp"], true);
        assert_eq!(open_ro(dev).max_slots(), 4);
        both_clean(dev, &format!("{features}: -N 4"));
    }
}

/// Issue 13, item 3: a kill before each write of `-N` leaves a volume
/// `fsck.ocfs2-mmp -fy` repairs and both checkers accept, with the old or
/// the new number of slots; running `-N` again then finishes it.
#[test]
fn node_slots_crash_at_every_write() {
    let base = Image::sparse("slots-crash-", 512 * MIB);
    mkfs(
        &base.path,
        4096,
        2,
        &["-M", "local", "-J", "size=4M", "--fs-features=usrquota"],
    );
    let mut counts = std::collections::BTreeSet::new();
    let n = kill_at_every_write(&base.path, &["-y", "-N", "3"], &mut |img, n| {
        let slots = open_ro(img).max_slots();
        assert!(
            slots == 2 || slots == 3,
            "kill before write {n}: {slots} slots"
        );
        counts.insert(slots);
        if n % 7 == 1 {
            // The rerun takes the files made ahead as they are.
            tunefs(&["-y", "-N", "3"], img).expect(OK);
            both_clean(img, &format!("-N 3 rerun after a kill before write {n}"));
            assert_eq!(open_ro(img).max_slots(), 3);
        }
    });
    assert!(n >= 20, "only {n} writes");
    assert!(counts.contains(&2), "{counts:?}");
}

/// Issue 13, item 5: `-S` grows the volume to the device's size as
/// tunefs.ocfs2 does on a copy without MMP (the same groups, chains and
/// counts), but for the backup superblocks the new size takes in, whose
/// clusters ours marks in use (tunefs.ocfs2 1.8.7 writes them over free
/// clusters, which our fsck reports); `-S BLOCKS` grows to a given size;
/// a smaller or too large size is refused, nothing written.
#[test]
fn volume_grows_as_tunefs_ocfs2_grows_it() {
    let a = Image::sparse("resize-", GIB);
    mkfs(&a.path, 4096, 2, &["-M", "local", "-J", "size=4M"]);
    grow_file(&a.path, 5 * GIB);
    let b = Image::sparse("resize-theirs-", 5 * GIB);
    cp_sparse(&a.path, &b.path);
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    tunefs(&["-y", "--enable-mmp", "--mmp-update-interval=1"], dev)
        .expect(OK)
        .quick();
    let whole = digest(dev, &[]);
    tunefs_blocks(&["-y", "-S"], dev, "100")
        .expect(REFUSED)
        .quick()
        .one_error(s(dev), &["shrinking is not supported"]);
    tunefs_blocks(&["-y", "-S"], dev, &(6 * GIB / 4096).to_string())
        .expect(REFUSED)
        .quick()
        .one_error(s(dev), &["the device holds only"]);
    tunefs(&["-n", "-S"], dev)
        .expect(OK)
        .stdout_has("grow the volume from 262144 to 1310720 clusters");
    assert_eq!(
        digest(dev, &[]),
        whole,
        "-n or a refusal wrote to the volume"
    );
    // Halfway first, then the rest.
    tunefs_blocks(&["-y", "-S"], dev, &(3 * GIB / 4096).to_string())
        .expect(OK)
        .stdout_has("to 786432 clusters");
    both_clean(dev, "-S 3G");
    tunefs(&["-y", "-S"], dev).expect(OK).stdout_has(": done");
    theirs(&["-S"], other);
    let shape = |d: &Path| {
        let (_tmp, copy) = without_mmp(d);
        let keep =
            |l: &&str| !l.contains("CRC32") && !l.contains("time:") && !l.contains("Last Check");
        let mut out = String::new();
        for req in ["stats", "stat //global_bitmap"] {
            out.extend(
                their_debugfs(req, &copy)
                    .lines()
                    .filter(keep)
                    .map(|l| format!("{l}\n")),
            );
        }
        out
    };
    // By design: the groups holding the 1 GiB and 4 GiB backups (at
    // blocks 258048 and 1032192) count their clusters in use here, and so
    // does the bitmap's total (2 more).
    let differs =
        |l: &str| l.contains(" 258048") || l.contains(" 1032192") || l.contains("Bitmap Total");
    let (ours, theirs_shape) = (shape(dev), shape(other));
    let same = |t: &str| {
        t.lines()
            .filter(|l| !differs(l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(same(&ours), same(&theirs_shape), "-S");
    let used = |t: &str| -> u64 {
        let l = t
            .lines()
            .find(|l| l.contains("Bitmap Total: 1310720"))
            .expect("the bitmap's counts");
        l.split("Used:")
            .nth(1)
            .and_then(|x| x.split_whitespace().next())
            .and_then(|x| x.parse().ok())
            .expect("Used: N")
    };
    assert_eq!(
        used(&ours),
        used(&theirs_shape) + 2,
        "the two backups' clusters"
    );
    assert_eq!(open_ro(dev).clusters(), 1_310_720);
    both_clean(dev, "-S");
}

/// Issue 13, item 5: a kill before each write of `-S` leaves a volume
/// `fsck.ocfs2-mmp -fy` finishes (RESIZE_INPROG, forward or back) and both
/// checkers accept, of the old or the new size.
#[test]
fn volume_resize_crash_at_every_write() {
    let base = Image::sparse("resize-crash-", 512 * MIB);
    mkfs(&base.path, 4096, 2, &["-M", "local", "-J", "size=4M"]);
    grow_file(&base.path, 1536 * MIB);
    let mut sizes = std::collections::BTreeSet::new();
    let n = kill_at_every_write(&base.path, &["-y", "-S"], &mut |img, n| {
        let c = open_ro(img).clusters();
        assert!(
            c == 131_072 || c == 393_216,
            "kill before write {n}: {c} clusters"
        );
        sizes.insert(c);
    });
    assert!(n >= 5, "only {n} writes");
    assert_eq!(sizes.len(), 2, "crashes end in both sizes: {sizes:?}");
}

/// Make image file `p` `len` bytes long (a device that grew).
fn grow_file(p: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(p)
        .and_then(|f| f.set_len(len))
        .expect("grow the image file");
}

/// `tunefs.ocfs2-mmp ARGS DEV BLOCKS` (the size after the device, as
/// tunefs.ocfs2 takes it).
fn tunefs_blocks(args: &[&str], dev: &Path, blocks: &str) -> Run {
    let mut c = tunefs_cmd(args, dev);
    c.arg(blocks);
    run_cmd(
        c,
        format!(
            "tunefs.ocfs2-mmp {} {} {blocks}",
            args.join(" "),
            dev.display()
        ),
    )
}

/// Issue 13, item 6: the feature bits tunefs.ocfs2 turns with a superblock
/// write alone are turned as it turns them on a copy without MMP (the same
/// superblock fields), both ways where it allows; the turns that would move
/// data, and those whose conditions fail, are refused with nothing written.
#[test]
fn feature_bits_change_as_tunefs_ocfs2_changes_them() {
    let (a, b) = parity_pair("features-", 512 * MIB, &["-M", "local", "-J", "size=4M"]);
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    let stats_of = |d: &Path| {
        let (_tmp, copy) = without_mmp(d);
        their_debugfs("stats", &copy)
            .lines()
            .filter(|l| !l.contains("CRC32") && !l.contains("Last Check") && !l.contains("time:"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    for list in [
        "noappend-dio,noxattr",
        "append-dio,xattr",
        "nodiscontig-bg",
        "discontig-bg",
    ] {
        let arg = format!("--fs-features={list}");
        tunefs(&["-y", &arg], dev).expect(OK).stdout_has(": done");
        theirs(&[&arg], other);
        assert_eq!(stats_of(dev), stats_of(other), "{list}");
        both_clean(dev, list);
    }
    let whole = digest(dev, &[]);
    for (list, why) in [
        ("norefcount", "which this release does not do"),
        ("nosparse", "unwritten extents are enabled"),
    ] {
        let arg = format!("--fs-features={list}");
        let r = tunefs(&["-y", &arg], dev);
        assert!(
            matches!(r.status.code(), Some(1) | Some(16)),
            "{list}: {}",
            r.describe()
        );
        assert!(r.stderr.contains(why), "{list}: {}", r.describe());
    }
    assert_eq!(digest(dev, &[]), whole, "a refusal wrote to the volume");
    assert_eq!(stats(dev)["mmp"], true);
    // metaecc off: the superblock alone, as tunefs.ocfs2 turns it.
    let (a, b) = parity_pair(
        "features-ecc-",
        512 * MIB,
        &["-M", "local", "-J", "size=4M", "--fs-features=metaecc"],
    );
    tunefs(&["-y", "--fs-features=nometaecc"], &a.path)
        .expect(OK)
        .stdout_has("feature metaecc: off: done");
    theirs(&["--fs-features=nometaecc"], &b.path);
    assert_eq!(stats_of(&a.path), stats_of(&b.path), "nometaecc");
    both_clean(&a.path, "nometaecc");
}

/// Run `tunefs.ocfs2-mmp ARGS` on copies of `base`, killed before write 1,
/// 2, ... until a run finishes: after each kill `fsck.ocfs2-mmp -fy` exits
/// 0 or 1, both checkers find the copy clean, and `check(img, n)` judges
/// its shape. Returns the number of the write the finished run reached.
fn kill_at_every_write(base: &Path, args: &[&str], check: &mut dyn FnMut(&Path, u32)) -> u32 {
    kill_at_writes(base, args, 1, check)
}

/// [`kill_at_every_write`] at writes 1, 1 + `step`, 1 + 2 `step`, ... (for
/// operations that write hundreds of blocks the same way).
fn kill_at_writes(base: &Path, args: &[&str], step: u32, check: &mut dyn FnMut(&Path, u32)) -> u32 {
    let tmp = scratch("kill-run-");
    let img = tmp.path().join("c.img");
    let mut n = 1;
    loop {
        cp_sparse(base, &img);
        let mut c = tunefs_cmd(args, &img);
        c.env("OCFS2_MMP_FAILPOINT_WRITE", n.to_string());
        let r = run_cmd(
            c,
            format!("tunefs {} with a kill before write {n}", args.join(" ")),
        );
        if r.status.success() {
            return n;
        }
        assert!(r.status.code() != Some(REFUSED), "{}", r.describe());
        fsck_y(&img, n);
        both_clean(
            &img,
            &format!("{}: kill before write {n}, then -fy", args.join(" ")),
        );
        check(&img, n);
        n += step;
        assert!(n < 400 * step, "tunefs {} never finished", args.join(" "));
    }
}

/// A volume mkfs.ocfs2 made (`size`, 4 KiB blocks, two slots, `args`) and
/// an identical copy; MMP is then turned on on the first (ours): the
/// second is for tunefs.ocfs2.
fn parity_pair(prefix: &str, size: u64, args: &[&str]) -> (Image, Image) {
    parity_pair_with(prefix, size, 2, args, &|_| {})
}

/// [`parity_pair`] with `slots` slots, `prepare` run on the volume before
/// it is copied.
fn parity_pair_with(
    prefix: &str,
    size: u64,
    slots: u16,
    args: &[&str],
    prepare: &dyn Fn(&Path),
) -> (Image, Image) {
    let a = Image::sparse(prefix, size);
    mkfs(&a.path, 4096, slots, args);
    prepare(&a.path);
    let b = Image::sparse(&format!("{prefix}theirs-"), size);
    cp_sparse(&a.path, &b.path);
    tunefs(&["-y", "--enable-mmp", "--mmp-update-interval=1"], &a.path)
        .expect(OK)
        .quick();
    (a, b)
}

/// Give slots `slots` of volume `img` what a node mounted there leaves: a
/// group in each of its inode and extent allocators (as libocfs2's
/// ocfs2_chain_add_group adds one) and directories whose inodes it
/// allocated (`slotN/d0..d2` under the root). Both checkers must then pass
/// the volume.
fn populate_slots(img: &Path, slots: std::ops::Range<u16>) {
    {
        let mode = OpenMode {
            write: true,
            exclusive: false,
        };
        let d = FileDevice::open(img, mode).expect("open the image read-write");
        let vol = Volume::open(Box::new(d)).expect("open the volume");
        let root = vol.root_blkno();
        for s in slots {
            for base in ["inode_alloc", "extent_alloc"] {
                let a = vol.system_inode(&format!("{base}:{s:04}")).expect(base);
                ocfs2_format::alloc::add_group(&vol, a).expect("add a group");
            }
            let top = ocfs2_format::link::make_subdir(
                &vol,
                s,
                root,
                format!("slot{s}").as_bytes(),
                &|_| true,
            )
            .expect("make a directory");
            for k in 0..3 {
                ocfs2_format::link::make_subdir(&vol, s, top, format!("d{k}").as_bytes(), &|_| {
                    true
                })
                .expect("make a directory");
            }
        }
    }
    both_clean(img, "slots populated");
}

/// Issue 13, item 3: `-N` to fewer slots removes the highest slots as
/// tunefs.ocfs2 removes them on a copy without MMP: their allocators'
/// groups relinked to the slots kept, chain for chain (the same chain
/// records, counts and sizes), the inodes they hold given their new slot,
/// their journals, orphan directories and local files freed and their
/// system files gone; under the MMP guard. A slot whose truncate log holds
/// records is refused, nothing written.
#[test]
fn node_slots_are_removed_as_tunefs_ocfs2_removes_them() {
    for features in [
        "--fs-features=usrquota,grpquota",
        "--fs-features=noinline-data,metaecc",
    ] {
        let (a, b) = parity_pair_with(
            "unslots-",
            1024 * MIB,
            4,
            &["-M", "local", "-J", "size=8M", features],
            &|p| populate_slots(p, 1..4),
        );
        let (dev, other) = (a.path.as_path(), b.path.as_path());
        let whole = digest(dev, &[]);
        tunefs(&["-n", "-N", "2"], dev)
            .expect(OK)
            .stdout_has("node slots 4 -> 2: slots 2 to 3 removed");
        // A truncate log with a record: refused by name.
        let busy = a.copy("busy.img");
        {
            let vol = open_ro(&busy);
            let tl = vol.system_inode("truncate_log:0003").unwrap();
            let mut ino = vol.read_inode(tl).unwrap();
            // tl_used (id2 + 2) = 1, block check recomputed.
            ino.buf[0xC0 + 2] = 1;
            if vol.meta_ecc() {
                blockcheck::update(&mut ino.buf, CheckAt::Inode);
            }
            let f = fs::OpenOptions::new().write(true).open(&busy).unwrap();
            f.write_all_at(&ino.buf, tl * 4096).unwrap();
        }
        tunefs(&["-y", "-N", "2"], &busy)
            .expect(REFUSED)
            .quick()
            .one_error(s(&busy), &["truncate_log:0003", "record"]);
        assert_eq!(digest(dev, &[]), whole, "-n wrote to the volume");
        tunefs(&["-y", "-N", "2"], dev)
            .expect(OK)
            .stdout_has("node slots 4 -> 2")
            .stdout_has(": done");
        theirs(&["-N", "2"], other);
        assert_eq!(
            slots_shape(dev, 0..2),
            slots_shape(other, 0..2),
            "{features}: -N 2"
        );
        assert_eq!(stats(dev)["mmp"], true);
        assert_eq!(open_ro(dev).max_slots(), 2);
        both_clean(dev, &format!("{features}: -N 2"));
        // The directories made in the removed slots are still there.
        let (_tmp, judged) = without_mmp(dev);
        let ls = their_debugfs("ls -l /slot3", &judged);
        assert!(ls.contains(" d2"), "{ls}");
    }
}

/// Issue 13, item 3: a kill before each write of `-N` to fewer slots
/// leaves a volume `fsck.ocfs2-mmp -fy` repairs (it finishes the removal
/// the superblocks announce) and both checkers accept, with the old number
/// of slots (a kill before the first write) or the new one.
#[test]
fn node_slot_removal_crash_at_every_write() {
    let base = Image::sparse("unslots-crash-", 512 * MIB);
    mkfs(
        &base.path,
        4096,
        3,
        &["-M", "local", "-J", "size=4M", "--fs-features=usrquota"],
    );
    populate_slots(&base.path, 2..3);
    let mut counts = std::collections::BTreeSet::new();
    let n = kill_at_every_write(&base.path, &["-y", "-N", "2"], &mut |img, n| {
        let slots = open_ro(img).max_slots();
        assert!(
            slots == 2 || n == 1 && slots == 3,
            "kill before write {n}: {slots} slots"
        );
        counts.insert(slots);
        let (_tmp, judged) = without_mmp(img);
        let ls = their_debugfs("ls -l /slot2", &judged);
        assert!(ls.contains(" d2"), "kill before write {n}: {ls}");
    });
    assert!(n >= 20, "only {n} writes");
    assert!(counts.contains(&2), "{counts:?}");
}

/// Issue 13, item 3: `-N` to more slots than the global inode allocator
/// has free inodes for grows it by a group when it runs out, as libocfs2
/// does (the same group, chain and counts as tunefs.ocfs2 on a copy).
#[test]
fn node_slots_grow_the_global_inode_allocator() {
    // Without indexed directories the full inline system directory moves
    // to a block, then grows (with them, that is refused: below).
    let (a, b) = parity_pair(
        "manyslots-",
        1024 * MIB,
        &[
            "-M",
            "local",
            "-J",
            "size=4M",
            "--fs-features=noindexed-dirs",
        ],
    );
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    let free_before = {
        let vol = open_ro(dev);
        let gia = vol.system_inode("global_inode_alloc").unwrap();
        vol.read_inode(gia).unwrap().di().bitmap_free()
    };
    // Seven system files a slot (no quotas).
    let to = (free_before / 7 + 8) as u16;
    tunefs(&["-y", "-N", &to.to_string()], dev)
        .expect(OK)
        .stdout_has(": done");
    theirs(&["-N", &to.to_string()], other);
    let gia = |p: &Path| {
        let (_tmp, judged) = without_mmp(p);
        their_debugfs("stat //global_inode_alloc", &judged)
            .lines()
            .filter(|l| !l.contains("time:") && !l.contains("CRC32"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let ours = gia(dev);
    assert_eq!(ours, gia(other));
    assert!(ours.contains("##   Total"), "{ours}");
    assert_eq!(
        slots_shape(dev, to - 2..to),
        slots_shape(other, to - 2..to),
        "-N {to}"
    );
    both_clean(dev, &format!("-N {to}"));
    let (c, _) = parity_pair(
        "manyslots-dx-",
        1024 * MIB,
        &["-M", "local", "-J", "size=4M"],
    );
    let whole = digest(&c.path, &[]);
    tunefs(&["-y", "-N", &to.to_string()], &c.path)
        .expect(REFUSED)
        .quick()
        .one_error(s(&c.path), &["system directory", "index"]);
    assert_eq!(digest(&c.path, &[]), whole, "a refusal wrote");
}

/// The bytes of system file `name` on `dev` past its first block
/// (debugfs.ocfs2 `dump` on a copy without MMP).
fn system_file_tail(dev: &Path, name: &str) -> Vec<u8> {
    let (tmp, judged) = without_mmp(dev);
    let out = tmp.path().join("dumped");
    their_debugfs(&format!("dump //{name} {}", out.display()), &judged);
    let bytes = fs::read(&out).unwrap_or_default();
    bytes.get(4096..).unwrap_or_default().to_vec()
}

/// Issue 13, item 6: `--fs-features=usrquota,grpquota` makes the quota
/// files as tunefs.ocfs2 makes them on a copy without MMP (the same inodes,
/// clusters and sizes; the same dquots past block 0, where tunefs.ocfs2
/// 1.8.7 leaves stale bytes after the info header), and the `no` forms
/// remove them as it does; both checkers pass each result.
#[test]
fn quotas_change_as_tunefs_ocfs2_changes_them() {
    let (a, b) = parity_pair_with(
        "quota-",
        512 * MIB,
        3,
        &["-M", "local", "-J", "size=4M"],
        &|p| populate_slots(p, 1..3),
    );
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    for (ours, what) in [
        (&["-y", "--fs-features=usrquota,grpquota"][..], "on"),
        (&["-y", "--fs-features=nousrquota,nogrpquota"][..], "off"),
    ] {
        tunefs(ours, dev).expect(OK).stdout_has(": done");
        theirs(&ours[1..], other);
        assert_eq!(
            slots_shape(dev, 0..3),
            slots_shape(other, 0..3),
            "quotas {what}"
        );
        for f in ["aquota.user", "aquota.group", "aquota.user:0002"] {
            assert_eq!(
                system_file_tail(dev, f),
                system_file_tail(other, f),
                "quotas {what}: {f}"
            );
        }
        both_clean(dev, &format!("quotas {what}"));
        assert_eq!(stats(dev)["mmp"], true);
    }
    assert!(system_file_tail(dev, "aquota.user").is_empty());
}

/// Issue 13, item 6: a kill before each write of turning quotas on, then
/// of turning them off, leaves a volume `fsck.ocfs2-mmp -fy` repairs and
/// both checkers accept, with the feature on and its files whole, or off;
/// the same command run again then finishes the change.
#[test]
fn quota_change_crash_at_every_write() {
    let base = Image::sparse("quota-crash-", 256 * MIB);
    mkfs(&base.path, 4096, 2, &["-M", "local", "-J", "size=4M"]);
    let on_img = base.copy("on.img");
    tunefs(&["-y", "--fs-features=usrquota"], &on_img).expect(OK);
    for (from, args, want) in [
        (base.path.as_path(), "--fs-features=usrquota", true),
        (on_img.as_path(), "--fs-features=nousrquota", false),
    ] {
        let n = kill_at_every_write(from, &["-y", args], &mut |img, n| {
            let on = open_ro(img).features().ro_compat
                & ocfs2_format::features::ro_compat::USRQUOTA
                != 0;
            if on {
                assert!(
                    !system_file_tail(img, "aquota.user").is_empty(),
                    "{args}: kill before {n}"
                );
            }
            tunefs(&["-y", args], img).expect(OK);
            both_clean(img, &format!("{args} again after a kill before write {n}"));
            let on = open_ro(img).features().ro_compat
                & ocfs2_format::features::ro_compat::USRQUOTA
                != 0;
            assert_eq!(on, want, "{args} rerun after a kill before write {n}");
        });
        assert!(n >= 8, "{args}: only {n} writes");
    }
}

/// Issue 13, item 6: `--fs-features=noindexed-dirs` takes every
/// directory's index away as tunefs.ocfs2 does on a copy without MMP (the
/// same inodes, allocators, superblock seeds), and a kill before each of
/// its writes leaves a volume `fsck.ocfs2-mmp -fy` repairs and both
/// checkers accept; turning indexes on is refused, nothing written.
/// Regular files whose clusters hold stale bytes under unwritten extents:
/// `/f1` (4 clusters, its record in the inode), `/f3` (3 clusters under an
/// extent block); `/f2` (2 clusters of 0xCD) written.
fn unwritten_files(img: &Path) {
    use common::edit::*;
    use ocfs2_format::ondisk::file_type;
    let v = open_rw(img);
    let root = v.root_blkno();
    let cs = u64::from(v.cluster_size());
    let bs = u64::from(v.block_size());
    let f1 = new_inode(&v, 0o100644, 1, Body::Extents(4, 4 * cs));
    add_entry(&v, root, b"f1", f1, file_type::REG_FILE);
    let f2 = new_inode(&v, 0o100644, 1, Body::Extents(2, 2 * cs));
    add_entry(&v, root, b"f2", f2, file_type::REG_FILE);
    let f3 = new_inode(&v, 0o100644, 1, Body::Deep(3));
    add_entry(&v, root, b"f3", f3, file_type::REG_FILE);
    for (f, byte) in [(f1, 0xABu8), (f2, 0xCD), (f3, 0xAB)] {
        let ino = v.read_inode(f).unwrap();
        for e in v.extents(&ino).unwrap() {
            let data = vec![byte; (u64::from(e.clusters) * cs) as usize];
            v.device().write_at(e.blkno * bs, &data).unwrap();
        }
    }
    edit_inode(&v, f1, |b| b[ext_rec(0) + 7] |= EXT_UNWRITTEN);
    let eb = v.read_inode(f3).unwrap().di().i_last_eb_blk.get();
    edit(&v, eb, CheckAt::ExtentBlock, |b| {
        b[0x40 + 7] |= EXT_UNWRITTEN
    });
}

/// A file's path, its bytes as the volume reads them, each extent's flags,
/// and the bytes on disk under its extents.
type FileView = (String, Vec<u8>, Vec<u8>, Vec<u8>);

fn files_and_flags(dev: &Path) -> Vec<FileView> {
    let v = open_ro(dev);
    let bs = u64::from(v.block_size());
    let cs = u64::from(v.cluster_size());
    ["/f1", "/f2", "/f3"]
        .iter()
        .map(|p| {
            let ino = v.read_inode(v.resolve_path(p).unwrap()).unwrap();
            let ext = v.extents(&ino).unwrap();
            let mut raw = Vec::new();
            for e in &ext {
                let mut b = vec![0u8; (u64::from(e.clusters) * cs) as usize];
                v.device().read_at(e.blkno * bs, &mut b).unwrap();
                raw.extend(b);
            }
            let flags = ext.iter().map(|e| e.flags).collect();
            (
                p.to_string(),
                v.read_file(&ino, 1 << 30).unwrap(),
                flags,
                raw,
            )
        })
        .collect()
}

/// `nounwritten`: every unwritten extent's clusters zeroed, then marked
/// written, then the feature bit, as tunefs.ocfs2 does; the written file
/// keeps its bytes; a kill at any write leaves a volume a rerun finishes.
#[test]
fn unwritten_extents_are_zeroed_as_tunefs_ocfs2_zeroes_them() {
    let (a, b) = parity_pair_with(
        "nounwritten-",
        256 * MIB,
        2,
        &["-M", "local", "-J", "size=4M"],
        &unwritten_files,
    );
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    let base = b.copy("base.img");
    let before = files_and_flags(dev);
    assert_eq!(before[0].2, vec![EXT_UNWRITTEN], "f1 is not unwritten");
    assert!(
        before[0].1.iter().all(|&x| x == 0),
        "an unwritten extent reads as zeros"
    );
    assert!(
        before[0].3.iter().all(|&x| x == 0xAB),
        "f1's clusters hold stale bytes"
    );
    tunefs(&["-y", "--fs-features=nounwritten"], dev)
        .expect(OK)
        .stdout_has("feature unwritten: off: done");
    theirs(&["--fs-features=nounwritten"], other);
    let (ours, theirs_) = (files_and_flags(dev), files_and_flags(other));
    for ((p, data, flags, raw), (_, tdata, tflags, traw)) in ours.iter().zip(&theirs_) {
        assert_eq!(data, tdata, "{p}: bytes");
        assert_eq!(flags, tflags, "{p}: extent flags");
        assert_eq!(raw, traw, "{p}: the bytes under its extents");
        assert!(
            flags.iter().all(|f| f & EXT_UNWRITTEN == 0),
            "{p}: {flags:?}"
        );
    }
    assert!(
        ours[0].3.iter().all(|&x| x == 0),
        "f1's clusters were not zeroed"
    );
    assert!(ours[1].1.iter().all(|&x| x == 0xCD), "f2 lost its bytes");
    for d in [dev, other] {
        assert_eq!(
            open_ro(d).sb().s_feature_ro_compat.get() & 1,
            0,
            "unwritten still on"
        );
    }
    both_clean(dev, "nounwritten");
    kill_at_every_write(
        &base,
        &["-y", "--fs-features=nounwritten"],
        &mut |img, n| {
            tunefs(&["-y", "--fs-features=nounwritten"], img).expect(OK);
            both_clean(
                img,
                &format!("nounwritten again after a kill before write {n}"),
            );
            assert_eq!(files_and_flags(img), ours, "after a kill before write {n}");
        },
    );
}

/// Files on a volume without sparse files: `/f1` holds three clusters
/// for a size of one cluster and 100 bytes, `/f2` two full clusters; every
/// cluster filled with a byte of its own.
fn past_size_files(img: &Path) {
    use common::edit::*;
    use ocfs2_format::ondisk::file_type;
    let v = open_rw(img);
    let root = v.root_blkno();
    let cs = u64::from(v.cluster_size());
    let bs = u64::from(v.block_size());
    let f1 = new_inode(&v, 0o100644, 1, Body::Extents(3, cs + 100));
    add_entry(&v, root, b"f1", f1, file_type::REG_FILE);
    let f2 = new_inode(&v, 0o100644, 1, Body::Extents(2, 2 * cs));
    add_entry(&v, root, b"f2", f2, file_type::REG_FILE);
    for (f, byte) in [(f1, 0x5Au8), (f2, 0xC3)] {
        let ino = v.read_inode(f).unwrap();
        for e in v.extents(&ino).unwrap() {
            let data = vec![byte; (u64::from(e.clusters) * cs) as usize];
            v.device().write_at(e.blkno * bs, &data).unwrap();
        }
    }
}

/// Files with holes on a sparse volume: `/f1` two clusters then a hole of
/// two to its size, `/f2` a hole of two clusters then one; every cluster
/// filled with a byte of its own. (Clusters past a file's size are
/// INODE_SPARSE_SIZE to both checkers on a sparse volume without
/// unwritten extents, and nosparse refuses unwritten ones.)
fn holey_files(img: &Path) {
    use common::edit::*;
    use ocfs2_format::ondisk::file_type;
    let v = open_rw(img);
    let root = v.root_blkno();
    let cs = u64::from(v.cluster_size());
    let bs = u64::from(v.block_size());
    let f1 = new_inode(&v, 0o100644, 1, Body::Extents(2, 4 * cs));
    add_entry(&v, root, b"f1", f1, file_type::REG_FILE);
    let f2 = new_inode(&v, 0o100644, 1, Body::Extents(1, 3 * cs));
    add_entry(&v, root, b"f2", f2, file_type::REG_FILE);
    edit_inode(&v, f2, |b| put32(b, ext_rec(0), 2));
    for (f, byte) in [(f1, 0x5Au8), (f2, 0xC3)] {
        let ino = v.read_inode(f).unwrap();
        for e in v.extents(&ino).unwrap() {
            let data = vec![byte; (u64::from(e.clusters) * cs) as usize];
            v.device().write_at(e.blkno * bs, &data).unwrap();
        }
    }
}

/// `/f1` and `/f2`: clusters, bytes read, and the bytes on disk under
/// their extents.
fn clusters_and_bytes(dev: &Path) -> Vec<(u32, Vec<u8>, Vec<u8>)> {
    let v = open_ro(dev);
    let bs = u64::from(v.block_size());
    ["/f1", "/f2"]
        .iter()
        .map(|p| {
            let ino = v.read_inode(v.resolve_path(p).unwrap()).unwrap();
            let mut raw = Vec::new();
            for e in v.extents(&ino).unwrap() {
                let mut b =
                    vec![0u8; (u64::from(e.clusters) * u64::from(v.cluster_size())) as usize];
                v.device().read_at(e.blkno * bs, &mut b).unwrap();
                raw.extend(b);
            }
            (
                ino.di().i_clusters.get(),
                v.read_file(&ino, 1 << 30).unwrap(),
                raw,
            )
        })
        .collect()
}

/// `sparse` on: a file's clusters past its size are given back and the
/// rest of its last cluster zeroed, as tunefs.ocfs2's truncate_to_i_size
/// does, then the bit; a kill at any write leaves a volume a rerun
/// finishes.
#[test]
fn sparse_is_turned_on_as_tunefs_ocfs2_turns_it() {
    let (a, b) = parity_pair_with(
        "sparse-",
        256 * MIB,
        2,
        &[
            "-M",
            "local",
            "-J",
            "size=4M",
            "--fs-features=nosparse,nounwritten",
        ],
        &past_size_files,
    );
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    let base = b.copy("base.img");
    let before = clusters_and_bytes(dev);
    assert_eq!(before[0].0, 3, "f1 holds three clusters");
    tunefs(&["-y", "--fs-features=sparse"], dev)
        .expect(OK)
        .stdout_has("feature sparse: on: done");
    theirs(&["--fs-features=sparse"], other);
    let ours = clusters_and_bytes(dev);
    assert_eq!(
        ours,
        clusters_and_bytes(other),
        "ours and tunefs.ocfs2's files"
    );
    assert_eq!(ours[0].0, 2, "f1 keeps the two clusters its size needs");
    assert_eq!(ours[0].1, before[0].1, "f1 reads the same bytes");
    assert!(
        ours[0].2[ours[0].1.len()..].iter().all(|&x| x == 0),
        "f1's tail is zeroed"
    );
    assert_eq!(ours[1], before[1], "f2 is left as it was");
    for d in [dev, other] {
        let sb = *open_ro(d).sb();
        assert_ne!(sb.s_feature_incompat.get() & 0x0010, 0, "sparse is off");
    }
    both_clean(dev, "sparse");
    kill_at_every_write(&base, &["-y", "--fs-features=sparse"], &mut |img, n| {
        tunefs(&["-y", "--fs-features=sparse"], img).expect(OK);
        both_clean(img, &format!("sparse again after a kill before write {n}"));
        assert_eq!(
            clusters_and_bytes(img),
            ours,
            "after a kill before write {n}"
        );
    });
}

/// `nosparse`: every hole below a file's size filled with zeroed clusters,
/// as tunefs.ocfs2 does, then the bit; the bytes read stay; a kill at any write leaves a volume a rerun
/// finishes.
#[test]
fn sparse_is_turned_off_as_tunefs_ocfs2_turns_it() {
    let (a, b) = parity_pair_with(
        "nosparse-",
        256 * MIB,
        2,
        &["-M", "local", "-J", "size=4M", "--fs-features=nounwritten"],
        &holey_files,
    );
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    let base = b.copy("base.img");
    both_clean(&base, "the holey files");
    let before = clusters_and_bytes(dev);
    assert_eq!(
        before.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![2, 1],
        "the files' clusters before"
    );
    tunefs(&["-y", "--fs-features=nosparse"], dev)
        .expect(OK)
        .stdout_has("feature sparse: off: done");
    theirs(&["--fs-features=nosparse"], other);
    let ours = clusters_and_bytes(dev);
    assert_eq!(
        ours,
        clusters_and_bytes(other),
        "ours and tunefs.ocfs2's files"
    );
    assert_eq!(
        ours.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec![4, 3],
        "every file holds the clusters its size needs"
    );
    for (o, b) in ours.iter().zip(&before) {
        assert_eq!(o.1, b.1, "the bytes read stay");
    }
    for d in [dev, other] {
        let sb = *open_ro(d).sb();
        assert_eq!(
            sb.s_feature_incompat.get() & 0x0010,
            0,
            "sparse is still on"
        );
    }
    both_clean(dev, "nosparse");
    // With unwritten extents on (mkfs's default), refused as tunefs.ocfs2
    // refuses it, writing nothing.
    let u = Image::sparse("nosparse-unwritten-", 256 * MIB);
    mkfs(&u.path, 4096, 2, &["-M", "local", "-J", "size=4M"]);
    let whole = digest(&u.path, &[]);
    tunefs(&["-y", "--fs-features=nosparse"], &u.path)
        .expect(REFUSED)
        .stderr_has("unwritten extents are enabled");
    assert_eq!(digest(&u.path, &[]), whole, "a refused nosparse wrote");
    kill_at_every_write(&base, &["-y", "--fs-features=nosparse"], &mut |img, n| {
        tunefs(&["-y", "--fs-features=nosparse"], img).expect(OK);
        both_clean(
            img,
            &format!("nosparse again after a kill before write {n}"),
        );
        let got = clusters_and_bytes(img);
        for (i, (g, o)) in got.iter().zip(&ours).enumerate() {
            assert_eq!(g.0, o.0, "file {i}: clusters after a kill before write {n}");
            assert!(
                g.1 == o.1,
                "file {i}: bytes read after a kill before write {n}"
            );
            let at = g.2.iter().zip(&o.2).position(|(x, y)| x != y);
            assert!(
                g.2.len() == o.2.len() && at.is_none(),
                "file {i}: bytes under its extents after a kill before write {n}: lengths {} {}, first difference at {at:?}",
                g.2.len(),
                o.2.len()
            );
        }
    });
}

/// Inline inodes besides the root: `/i1` (a file of 300 bytes), `/e`
/// (empty), `/dinl` (a directory holding `/dinl/i2`).
fn inline_files(img: &Path) {
    use common::edit::*;
    use ocfs2_format::ondisk::file_type;
    let v = open_rw(img);
    let root = v.root_blkno();
    let data: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
    let i1 = new_inode(&v, 0o100644, 1, Body::Inline(data));
    add_entry(&v, root, b"i1", i1, file_type::REG_FILE);
    let e = new_inode(&v, 0o100600, 1, Body::Inline(Vec::new()));
    add_entry(&v, root, b"e", e, file_type::REG_FILE);
    let d = new_inode(&v, 0o040755, 2, Body::DirInline(root));
    add_entry(&v, root, b"dinl", d, file_type::DIR);
    edit_inode(&v, root, |b| {
        let di = dino(b);
        di.i_links_count.set(di.i_links_count.get() + 1);
    });
    let i2 = new_inode(&v, 0o100644, 1, Body::Inline(b"in a directory\n".to_vec()));
    add_entry(&v, d, b"i2", i2, file_type::REG_FILE);
}

/// Every file and directory under the root: path, mode, size, bytes (for
/// a directory, its names and inodes), and whether it is still inline.
fn tree_view(dev: &Path) -> Vec<(String, u16, u64, Vec<u8>, bool)> {
    let v = open_ro(dev);
    let mut out = Vec::new();
    let mut todo = vec![("/".to_string(), v.root_blkno())];
    while let Some((p, b)) = todo.pop() {
        let ino = v.read_inode(b).unwrap();
        let bytes = if ino.is_dir() {
            let mut names = Vec::new();
            for e in v.dir_entries(&ino).unwrap() {
                names.extend_from_slice(&e.name);
                names.extend_from_slice(format!("={};", e.inode).as_bytes());
                if ino.blkno == v.root_blkno() && e.name == b"lost+found" {
                    continue;
                }
                if e.name != b"." && e.name != b".." {
                    todo.push((format!("{p}{}/", String::from_utf8_lossy(&e.name)), e.inode));
                }
            }
            names
        } else {
            v.read_file(&ino, 1 << 20).unwrap()
        };
        let size = if ino.is_dir() { 0 } else { ino.size() };
        out.push((p, ino.mode(), size, bytes, ino.is_inline()));
    }
    out.sort();
    out
}

/// `noinline-data`: every inline file and directory moves to a cluster as
/// tunefs.ocfs2 moves it (the same bytes, names and modes), directories
/// on a volume with indexed directories get their index (which
/// tunefs.ocfs2 leaves to fsck.ocfs2 to rebuild), quota usage follows the
/// clusters; both checkers pass; a kill at any write leaves a volume a
/// rerun finishes.
#[test]
fn inline_data_moves_out_as_tunefs_ocfs2_moves_it() {
    let (a, b) = parity_pair_with(
        "noinline-",
        256 * MIB,
        2,
        &["-M", "local", "-J", "size=4M", "--fs-features=usrquota"],
        &inline_files,
    );
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    let before = tree_view(dev);
    assert!(before.iter().filter(|f| f.4).count() >= 5, "{before:?}");
    tunefs(&["-y", "--fs-features=noinline-data"], dev)
        .expect(OK)
        .stdout_has("feature inline-data: off: done");
    theirs(&["--fs-features=noinline-data"], other);
    let (ours, theirs_) = (tree_view(dev), tree_view(other));
    assert_eq!(ours, theirs_, "ours against tunefs.ocfs2's");
    assert!(ours.iter().all(|f| !f.4), "still inline: {ours:?}");
    let strip = |v: &[(String, u16, u64, Vec<u8>, bool)]| -> Vec<(String, u16, u64, Vec<u8>)> {
        v.iter()
            .map(|f| (f.0.clone(), f.1, f.2, f.3.clone()))
            .collect()
    };
    assert_eq!(strip(&ours), strip(&before), "the tree changed");
    let vol = open_ro(dev);
    assert!(!vol
        .features()
        .has_incompat(ocfs2_format::features::incompat::INLINE_DATA));
    for d in ["/", "/dinl"] {
        let ino = vol.read_inode(vol.resolve_path(d).unwrap()).unwrap();
        assert!(
            ino.dyn_features() & ocfs2_format::ondisk::dyn_features::INDEXED_DIR != 0,
            "{d} has no index"
        );
    }
    both_clean(dev, "noinline-data");
    // The crash loop without quotas (their rebuild is fsck's, tested there).
    let base = Image::sparse("noinline-crash-", 128 * MIB);
    mkfs(&base.path, 4096, 2, &["-M", "local", "-J", "size=4M"]);
    inline_files(&base.path);
    let before = tree_view(&base.path);
    let n = kill_at_every_write(
        &base.path,
        &["-y", "--fs-features=noinline-data"],
        &mut |img, n| {
            // (The loop has judged the repaired copy with both checkers.)
            tunefs(&["-y", "--fs-features=noinline-data"], img).expect(OK);
            assert_eq!(
                strip(&tree_view(img)),
                strip(&before),
                "after a kill before write {n}"
            );
        },
    );
    assert!(n >= 10, "only {n} writes");
}

#[test]
fn indexes_are_removed_as_tunefs_ocfs2_removes_them() {
    let (a, b) = parity_pair_with(
        "noindex-",
        512 * MIB,
        3,
        &[
            "-M",
            "local",
            "-J",
            "size=4M",
            "--fs-features=noinline-data",
        ],
        &|p| populate_slots(p, 1..3),
    );
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    // Without MMP: the crash loop's reruns then wait for nothing.
    let base = b.copy("base.img");
    assert!(
        !ocfs2_format::dx::indexed_dirs(&open_ro(dev))
            .unwrap()
            .is_empty(),
        "no indexed directory to take"
    );
    tunefs(&["-y", "--fs-features=noindexed-dirs"], dev)
        .expect(OK)
        .stdout_has("feature indexed-dirs: off: done");
    theirs(&["--fs-features=noindexed-dirs"], other);
    assert_eq!(
        slots_shape(dev, 0..3),
        slots_shape(other, 0..3),
        "noindexed-dirs"
    );
    for d in ["/slot1", "/slot2/d1"] {
        let st = |p: &Path| {
            let (_tmp, j) = without_mmp(p);
            their_debugfs(&format!("stat {d}"), &j)
                .lines()
                .filter(|l| !l.contains("time:") && !l.contains("CRC32"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(st(dev), st(other), "{d}");
    }
    both_clean(dev, "noindexed-dirs");
    assert!(ocfs2_format::dx::indexed_dirs(&open_ro(dev))
        .unwrap()
        .is_empty());
    kill_at_every_write(
        &base,
        &["-y", "--fs-features=noindexed-dirs"],
        &mut |img, n| {
            tunefs(&["-y", "--fs-features=noindexed-dirs"], img).expect(OK);
            both_clean(
                img,
                &format!("noindexed-dirs again after a kill before write {n}"),
            );
        },
    );
}

/// Directories of `img` for the index tests: /big with 700 names (an index
/// with leaf clusters), /mid with 150 (an index in its root), /few with 3.
fn index_dirs(img: &Path) {
    {
        let vol = common::edit::open_rw(img);
        let root = vol.root_blkno();
        for (name, n) in [("big", 700), ("mid", 150), ("few", 3)] {
            let d = ocfs2_format::link::make_subdir(&vol, 0, root, name.as_bytes(), &|_| true)
                .expect("make a directory");
            for k in 0..n {
                ocfs2_format::link::make_subdir(
                    &vol,
                    0,
                    d,
                    format!("a-directory-with-a-long-name-{k}").as_bytes(),
                    &|_| true,
                )
                .expect("make a directory");
            }
        }
    }
    both_clean(img, "directories made");
}

/// A smaller volume for the crash loop: /big names one file 300 times (an
/// index with leaf clusters, few directories to index), /few holds 3
/// directories.
fn index_links(img: &Path) {
    {
        let vol = common::edit::open_rw(img);
        let root = vol.root_blkno();
        let file = common::edit::new_inode(&vol, 0o100644, 300, common::edit::Body::Extents(1, 10));
        for (name, n) in [("big", 300), ("few", 3)] {
            let d = ocfs2_format::link::make_subdir(&vol, 0, root, name.as_bytes(), &|_| true)
                .expect("make a directory");
            for k in 0..n {
                let entry = format!("a-name-of-some-length-{k}");
                if name == "big" {
                    ocfs2_format::link::insert_entry(&vol, d, entry.as_bytes(), file, 1)
                        .expect("name the file");
                } else {
                    ocfs2_format::link::make_subdir(&vol, 0, d, entry.as_bytes(), &|_| true)
                        .expect("make a directory");
                }
            }
        }
    }
    both_clean(img, "names made");
}

/// Issue 13, item 6: `indexed-dirs` on gives every block directory an
/// index as tunefs.ocfs2 gives it on a copy without MMP (the same
/// superblock but for the random hash seeds, the same directories, inode
/// for inode), which fsck.ocfs2 finds every name through; under the MMP
/// guard. A kill at every write leaves a volume both checkers pass after
/// our -fy, which a second run finishes.
#[test]
fn indexes_are_built_as_tunefs_ocfs2_builds_them() {
    let (a, b) = parity_pair_with(
        "index-",
        256 * MIB,
        2,
        &[
            "-M",
            "local",
            "-J",
            "size=4M",
            "--fs-features=noinline-data,noindexed-dirs",
        ],
        &index_dirs,
    );
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    // The tree, each directory's names in sorted order (trailers move
    // names to new blocks).
    let tree = |p: &Path| -> Vec<(String, u16, u64, Vec<String>)> {
        tree_view(p)
            .into_iter()
            .map(|(path, mode, size, bytes, _)| {
                let mut names: Vec<String> = String::from_utf8_lossy(&bytes)
                    .split(';')
                    .map(str::to_string)
                    .collect();
                names.sort();
                (path, mode, size, names)
            })
            .collect()
    };
    let before = tree(dev);
    tunefs(&["-y", "--fs-features=indexed-dirs"], dev)
        .expect(OK)
        .stdout_has("feature indexed-dirs: on: done");
    theirs(&["--fs-features=indexed-dirs"], other);
    let stats_of = |d: &Path| {
        let (_tmp, copy) = without_mmp(d);
        their_debugfs("stats", &copy)
            .lines()
            .filter(|l| !l.contains("DX Seeds") && !l.contains("CRC32") && !l.contains("time:"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    assert_eq!(stats_of(dev), stats_of(other), "the superblocks");
    for d in ["/", "/big", "/mid", "/few", "//"] {
        let view = |p: &Path| {
            let (_tmp, j) = without_mmp(p);
            // Extent rows without their block: the two builders take the
            // clusters of indexes and directory blocks in their own order.
            let st: Vec<String> = their_debugfs(&format!("stat {d}"), &j)
                .lines()
                .filter(|l| {
                    !l.contains("time:") && !l.contains("CRC32") && !l.contains("Indexed Tree Root")
                })
                .map(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    if w.len() == 5 && w[..4].iter().all(|x| x.parse::<u64>().is_ok()) {
                        format!("{} {} {} {}", w[0], w[1], w[2], w[4])
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            (st, their_debugfs(&format!("ls -l {d}"), &j))
        };
        let (ours, theirs_) = (view(dev), view(other));
        let differ: Vec<(String, String)> = ours
            .0
            .iter()
            .chain(
                ours.1
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
                    .iter(),
            )
            .zip(
                theirs_.0.iter().chain(
                    theirs_
                        .1
                        .lines()
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                        .iter(),
                ),
            )
            .filter(|(a, b)| a != b)
            .map(|(a, b)| (a.clone(), b.clone()))
            .take(8)
            .collect();
        assert!(differ.is_empty(), "{d}: ours, theirs: {differ:#?}");
        assert_eq!(ours, theirs_, "{d}");
    }
    assert!(tree(dev) == before, "the tree changed");
    let vol = open_ro(dev);
    for d in ["/", "/big", "/mid", "/few", "//"] {
        let ino = vol.read_inode(vol.resolve_path(d).unwrap()).unwrap();
        assert!(
            ino.dyn_features() & ocfs2_format::ondisk::dyn_features::INDEXED_DIR != 0,
            "{d} has no index"
        );
        let read = ocfs2_format::dxtree::entries(&vol, &ino).unwrap();
        assert_eq!(read.problems, Vec::<String>::new(), "{d}");
        assert_eq!(
            ocfs2_format::dxtree::misses(&vol, &ino, &read).unwrap(),
            Vec::<String>::new(),
            "{d}"
        );
        if d == "/big" {
            assert!(
                read.runs.len() >= 2,
                "/big: {} leaf clusters",
                read.runs.len()
            );
        }
    }
    drop(vol);
    both_clean(dev, "indexed-dirs");
    let base = Image::sparse("index-crash-", 128 * MIB);
    mkfs(
        &base.path,
        4096,
        2,
        &[
            "-M",
            "local",
            "-J",
            "size=4M",
            "--fs-features=noinline-data,noindexed-dirs",
        ],
    );
    index_links(&base.path);
    let before = tree(&base.path);
    let n = kill_at_every_write(
        &base.path,
        &["-y", "--fs-features=indexed-dirs"],
        &mut |img, n| {
            tunefs(&["-y", "--fs-features=indexed-dirs"], img).expect(OK);
            both_clean(
                img,
                &format!("indexed-dirs again after a kill before write {n}"),
            );
            assert!(
                tree(img) == before,
                "the tree changed after a kill before write {n}"
            );
        },
    );
    assert!(n >= 10, "only {n} writes");
}

/// Issue 13, item 6: `metaecc` on gives every directory its trailers and
/// every metadata block its check as tunefs.ocfs2 does on a copy without
/// MMP (the same superblock, the same directories and files, which both
/// checkers then read under metaecc), under the MMP guard; a kill at
/// every seventh write leaves a volume without the feature that both
/// checkers pass and a second run finishes.
#[test]
fn metaecc_is_turned_on_as_tunefs_ocfs2_turns_it() {
    let prepare = |p: &Path| {
        common::edit::populate(p);
        index_links(p);
    };
    let (a, b) = parity_pair_with(
        "ecc-",
        256 * MIB,
        2,
        &[
            "-M",
            "local",
            "-J",
            "size=4M",
            "--fs-features=noinline-data,noindexed-dirs,noxattr",
        ],
        &prepare,
    );
    let (dev, other) = (a.path.as_path(), b.path.as_path());
    let base = b.copy("base.img");
    tunefs(&["-y", "--fs-features=metaecc"], dev)
        .expect(OK)
        .stdout_has("feature metaecc: on: done");
    theirs(&["--fs-features=metaecc"], other);
    let view = |p: &Path, req: &str| {
        let (_tmp, j) = without_mmp(p);
        their_debugfs(req, &j)
            .lines()
            // The superblocks differ in the MMP fields (ours had MMP on),
            // so their checks do.
            .filter(|l| !(l.contains("time:") || req == "stats" && l.contains("CRC32")))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    for req in [
        "stats",
        "ls -l /",
        "ls -l /big",
        "ls -l //",
        "stat /big",
        "stat /f3",
    ] {
        let (ours, theirs_) = (view(dev, req), view(other, req));
        assert!(ours == theirs_, "{req}: ours:\n{ours}\ntheirs:\n{theirs_}");
    }
    assert!(open_ro(dev).meta_ecc());
    both_clean(dev, "metaecc");
    let n = kill_at_writes(&base, &["-y", "--fs-features=metaecc"], 7, &mut |img, n| {
        tunefs(&["-y", "--fs-features=metaecc"], img).expect(OK);
        both_clean(img, &format!("metaecc again after a kill before write {n}"));
        assert!(open_ro(img).meta_ecc(), "after a kill before write {n}");
    });
    assert!(n >= 20, "only {n} writes");
}
