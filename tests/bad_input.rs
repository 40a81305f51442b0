//! Bad input for `debugfs-mmp` and a seeded fuzz of the format crate's parsers.
//!
//! * Devices that are not OCFS2 volumes (zeros, ext4, truncated images, a
//!   missing path, a directory, an unreadable file, a FIFO): one error line on
//!   stderr naming the path, a documented exit code, nothing on stdout, no panic.
//! * Bad requests and bad usage.
//! * Mutated copies of real `mkfs.ocfs2` images, run through every parser of
//!   `ocfs2-format` in memory (`MemDevice`) and through the real binary: results
//!   may be errors, never panics or absurd allocations.
//!
//! Images are made with Debian's ocfs2-tools and e2fsprogs (`make deps`); a
//! test that needs them fails loudly when they are missing.
//!
//! Reproduce a fuzz failure with `FUZZ_SEED=<seed> FUZZ_ITERS=<n> cargo test
//! --test bad_input fuzz`; every iteration derives its own RNG from
//! `seed + iteration`, so the printed pair is enough.

use ocfs2_format::blockcheck::{self, CheckAt};
use ocfs2_format::ondisk::inode_flags;
use ocfs2_format::{FileDevice, MemDevice, OpenMode, Volume};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;
use common::{euid, find_tool, sparse_file, MIB};

const BIN: &str = env!("CARGO_BIN_EXE_debugfs-mmp");
const PREFIX: &str = "debugfs-mmp: ";

/// Exit codes of debugfs-mmp (crates/toolkit `exit`).
const OK: i32 = 0;
const MMP_IN_USE: i32 = 1;
const MMP_UNKNOWN: i32 = 2;
const REQUEST_FAILED: i32 = 4;
const OPERATIONAL: i32 = 8;
const USAGE: i32 = 16;
const DOCUMENTED: [i32; 6] = [
    OK,
    MMP_IN_USE,
    MMP_UNKNOWN,
    REQUEST_FAILED,
    OPERATIONAL,
    USAGE,
];

// ------------------------------------------------------------ allocation cap

/// Largest single allocation this test binary allows. The biggest legitimate
/// one is the 128 MiB in-memory image of the fuzz test; anything above this
/// is a length taken from disk without a bound.
const ALLOC_CAP: usize = 256 << 20;
static FUZZ_SEED_NOW: AtomicU64 = AtomicU64::new(u64::MAX);
static FUZZ_ITER_NOW: AtomicU64 = AtomicU64::new(u64::MAX);
static ABSURD: AtomicUsize = AtomicUsize::new(0);

struct CappedAlloc;

impl CappedAlloc {
    fn refuse(size: usize) {
        ABSURD.store(size, Ordering::SeqCst);
        // Formatting integers does not allocate; the process aborts right after.
        eprintln!(
            "bad_input: absurd allocation of {size} bytes (cap {ALLOC_CAP}) at fuzz seed {} iteration {} \
             (u64::MAX = outside the fuzz loop)",
            FUZZ_SEED_NOW.load(Ordering::SeqCst),
            FUZZ_ITER_NOW.load(Ordering::SeqCst)
        );
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged, except
// that requests above the cap return null (a valid "allocation failed").
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_CAP {
            Self::refuse(layout.size());
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > ALLOC_CAP {
            Self::refuse(layout.size());
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > ALLOC_CAP {
            Self::refuse(new_size);
            return std::ptr::null_mut();
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CappedAlloc = CappedAlloc;

// ------------------------------------------------------------ helpers

/// A temporary directory of this test under `CARGO_TARGET_TMPDIR`.
fn scratch() -> tempfile::TempDir {
    common::scratch("bad_input-")
}

/// `mkfs.ocfs2 -q -M local ARGS PATH` on a fresh sparse file of `size` bytes.
fn mkfs_local(path: &Path, size: u64, args: &[&str]) {
    let mkfs = find_tool("mkfs.ocfs2", "ocfs2-tools");
    sparse_file(path, size);
    let out = Command::new(&mkfs)
        .arg("-q")
        .args(["-M", "local"])
        .args(args)
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", mkfs.display()));
    assert!(
        out.status.success(),
        "mkfs.ocfs2 -q -M local {args:?} {} failed ({}): {}{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run a command with a deadline; panics if it hangs or dies of a signal.
fn run_cmd(mut cmd: Command, what: &str) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
    let mut so = child.stdout.take().expect("stdout piped");
    let mut se = child.stderr.take().expect("stderr piped");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for the child") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after 60 s (a hang on bad input?)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().expect("stdout reader")).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().expect("stderr reader")).into_owned();
    let code = status
        .code()
        .unwrap_or_else(|| panic!("{what}: killed by a signal ({status})\n{stderr}"));
    Run {
        code,
        stdout,
        stderr,
    }
}

fn debugfs(args: &[&str]) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("TZ", "UTC");
    run_cmd(cmd, &format!("debugfs-mmp {args:?}"))
}

fn no_panic(r: &Run, what: &str) {
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("RUST_BACKTRACE"),
        "{what}: the binary panicked\n{}",
        r.describe()
    );
}

/// Exactly one stderr line `debugfs-mmp: ...` that names `path`, exit
/// `code`; on stdout nothing, or with `--json` one object carrying the exit
/// code (issue 15).
fn assert_one_error(r: &Run, code: i32, path: &str, what: &str) {
    no_panic(r, what);
    assert_eq!(r.code, code, "{what}: wrong exit code\n{}", r.describe());
    assert_json_or_nothing(r, code, what);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected exactly one line on stderr\n{}",
        r.describe()
    );
    assert!(
        lines[0].starts_with(PREFIX),
        "{what}: error line does not start with {PREFIX:?}\n{}",
        r.describe()
    );
    assert!(
        lines[0].contains(path),
        "{what}: error line does not name {path}\n{}",
        r.describe()
    );
    assert!(
        r.stderr.ends_with('\n'),
        "{what}: error line not terminated\n{}",
        r.describe()
    );
}

/// Stdout after an error: empty, or (when `--json` was given, which the
/// description names) one JSON object with the exit code.
fn assert_json_or_nothing(r: &Run, code: i32, what: &str) {
    if r.stdout.is_empty() {
        return;
    }
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{what}: stdout is neither empty nor one JSON object ({e})\n{}",
            r.describe()
        )
    });
    assert_eq!(
        v["exit_code"],
        code,
        "{what}: JSON exit code\n{}",
        r.describe()
    );
}

/// The operational-error contract for a device that cannot be used: exit 8
/// with other requests, exit 2 when `mmp status` is the only request, with
/// and without `--json`.
fn assert_bad_device(dev: &str, what: &str) {
    for (args, code) in [
        (vec!["-R", "stats", dev], OPERATIONAL),
        (vec!["--json", "-R", "stats", dev], OPERATIONAL),
        (
            vec!["-R", "stats", "-R", "slotmap", "-R", "ls -l //", dev],
            OPERATIONAL,
        ),
        (vec!["-R", "mmp status", dev], MMP_UNKNOWN),
        (vec!["-R", "mmp status -i", dev], MMP_UNKNOWN),
        (vec!["--json", "-R", "mmp status", dev], MMP_UNKNOWN),
        (
            vec!["-R", "mmp status -i", "-R", "mmp status", dev],
            MMP_UNKNOWN,
        ),
    ] {
        let r = debugfs(&args);
        assert_one_error(&r, code, dev, &format!("{what}: {args:?}"));
    }
}

fn s(p: &Path) -> String {
    p.to_str().expect("UTF-8 temp path").to_string()
}

// ------------------------------------------------------------ bad devices

#[test]
fn zeros_are_not_ocfs2() {
    let dir = scratch();
    let img = dir.path().join("zeros.img");
    sparse_file(&img, 64 * MIB);
    assert_bad_device(&s(&img), "64 MiB of zeros");
    let r = debugfs(&["-R", "stats", &s(&img)]);
    assert!(
        r.stderr.contains("no OCFS2 superblock"),
        "the error should say why:\n{}",
        r.describe()
    );
}

#[test]
fn ext4_is_not_ocfs2() {
    let mkfs = find_tool("mkfs.ext4", "e2fsprogs");
    let dir = scratch();
    let img = dir.path().join("ext4.img");
    sparse_file(&img, 64 * MIB);
    let out = Command::new(&mkfs)
        .args(["-q", "-F"])
        .arg(&img)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", mkfs.display()));
    assert!(
        out.status.success(),
        "mkfs.ext4 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_bad_device(&s(&img), "ext4 image");
}

#[test]
fn truncated_ocfs2_images() {
    let dir = scratch();
    let full = dir.path().join("full.img");
    mkfs_local(&full, 256 * MIB, &[]);
    let bytes_2k = {
        let mut f = File::open(&full).expect("open image");
        let mut b = vec![0u8; 8192];
        f.read_exact(&mut b).expect("read head");
        b
    };
    // Requests that need a block past each cut (the slot map's data and
    // lost+found's inode lie beyond 1 MiB; the system directory at block 10
    // lies beyond 8 KiB).
    // The superblock (block 2) survives both cuts, but it describes a
    // volume larger than the device: every request refuses the device as a
    // whole with one line (exit 8, or 2 for `mmp status`).
    for (name, len) in [("1m", MIB), ("8k", 8192)] {
        let img = dir.path().join(format!("trunc-{name}.img"));
        fs::copy(&full, &img).expect("copy image");
        File::options()
            .write(true)
            .open(&img)
            .and_then(|f| f.set_len(len))
            .expect("truncate");
        let dev = s(&img);
        let what = format!("OCFS2 image truncated to {name}");
        assert_bad_device(&dev, &what);
        let r = debugfs(&["-R", "stats", &dev]);
        assert!(
            r.stderr.contains("truncated volume"),
            "{what}: the error should say the volume is truncated\n{}",
            r.describe()
        );
    }
    // Cut before the end of the superblock block: no volume at all.
    let img = dir.path().join("trunc-2k.img");
    fs::write(&img, &bytes_2k[..2048]).expect("write head");
    assert_bad_device(&s(&img), "OCFS2 image truncated to 2 KiB");
}

#[test]
fn missing_path() {
    let dir = scratch();
    let p = dir.path().join("no-such-device");
    assert_bad_device(&s(&p), "missing path");
    let r = debugfs(&["-R", "stats", &s(&p)]);
    assert!(r.stderr.contains("No such file"), "{}", r.describe());
}

#[test]
fn directory_is_not_a_device() {
    let dir = scratch();
    assert_bad_device(&s(dir.path()), "a directory");
    let r = debugfs(&["-R", "stats", &s(dir.path())]);
    assert!(r.stderr.contains("directory"), "{}", r.describe());
}

#[test]
fn fifo_and_char_device_are_not_devices() {
    let mkfifo = find_tool("mkfifo", "coreutils");
    let dir = scratch();
    let fifo = dir.path().join("fifo");
    let st = Command::new(mkfifo)
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(st.success(), "mkfifo failed");
    // A reader that opened the FIFO would block forever: run_cmd's deadline
    // turns that into a failure instead of a hang.
    assert_bad_device(&s(&fifo), "a FIFO");
    assert_bad_device("/dev/null", "a character device");
}

#[test]
fn unreadable_file() {
    // Root ignores permission bits, so run the binary as `nobody` on a
    // mode-000 image inside a directory nobody can reach.
    let dir = tempfile::Builder::new()
        .prefix("bad_input-perm-")
        .tempdir_in(std::env::temp_dir())
        .expect("temporary directory");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod 755 dir");
    let img = dir.path().join("locked.img");
    mkfs_local(&img, 64 * MIB, &[]);
    let dev = s(&img);
    // Control: the image itself is fine.
    let r = debugfs(&["-R", "stats", &dev]);
    assert_eq!(
        r.code,
        OK,
        "control run on the readable image\n{}",
        r.describe()
    );
    fs::set_permissions(&img, fs::Permissions::from_mode(0o000)).expect("chmod 000");

    let as_user = |args: &[&str]| -> Run {
        if euid() != 0 {
            return debugfs(args);
        }
        let mut cmd = if let Some(setpriv) = which("setpriv") {
            let mut c = Command::new(setpriv);
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                BIN,
            ]);
            c
        } else if let Some(runuser) = which("runuser") {
            let mut c = Command::new(runuser);
            c.args(["-u", "nobody", "--", BIN]);
            c
        } else {
            panic!(
                "running as root and neither setpriv nor runuser exists: cannot test an unreadable \
                 file; run `make deps` or `apt-get install util-linux`"
            );
        };
        cmd.args(args).env("TZ", "UTC");
        run_cmd(cmd, &format!("debugfs-mmp as nobody {args:?}"))
    };
    // The binary must be runnable as nobody, or the test proves nothing.
    let v = as_user(&["--version"]);
    assert_eq!(
        v.code,
        0,
        "cannot run {BIN} as user nobody (are target/ and its parents world-executable?)\n{}",
        v.describe()
    );
    for (args, code) in [
        (vec!["-R", "stats", dev.as_str()], OPERATIONAL),
        (vec!["--json", "-R", "slotmap", dev.as_str()], OPERATIONAL),
        (vec!["-R", "mmp status", dev.as_str()], MMP_UNKNOWN),
        (vec!["-R", "mmp status -i", dev.as_str()], MMP_UNKNOWN),
    ] {
        let r = as_user(&args);
        assert_one_error(&r, code, &dev, &format!("unreadable file: {args:?}"));
        assert!(
            r.stderr.contains("Permission denied"),
            "unreadable file: {args:?}: the error should give the reason\n{}",
            r.describe()
        );
    }
    fs::set_permissions(&img, fs::Permissions::from_mode(0o644)).expect("chmod back");
}

fn which(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

// ------------------------------------------------------------ bad requests, usage

#[test]
fn bad_requests() {
    let dir = scratch();
    let img = dir.path().join("good.img");
    mkfs_local(&img, 128 * MIB, &["-N", "2"]);
    let dev = s(&img);

    // Requests are parsed before the device is opened: a bad one is a usage
    // error (16) that names the request.
    for (req, word) in [
        ("frobnicate", "frobnicate"),
        ("mmp status -x", "mmp status -x"),
        ("mmp", "mmp"),
        ("stat", "stat"),
        ("ls -l / extra", "extra"),
    ] {
        for d in [dev.as_str(), "/nonexistent/device"] {
            let r = debugfs(&["-R", req, d]);
            assert_one_error(&r, USAGE, word, &format!("request {req:?} on {d}"));
        }
    }

    // A request that fails on a readable volume: 4, one line naming the
    // device, the request and the path.
    for (req, path) in [
        ("ls /nope", "/nope"),
        ("ls -l /nope", "/nope"),
        ("stat //nope", "//nope"),
        ("stat /lost+found/nope", "/lost+found/nope"),
        ("ls //slot_map", "//slot_map"),
        ("stat nope", "nope"),
        ("stat <99999999>", "99999999"),
        ("stat <1>", "block 1"),
        ("stat <x>", "<x>"),
    ] {
        for json in [false, true] {
            let mut args = vec![];
            if json {
                args.push("--json");
            }
            args.extend(["-R", req, &dev]);
            let r = debugfs(&args);
            let what = format!("{args:?}");
            assert_one_error(&r, REQUEST_FAILED, &dev, &what);
            assert!(
                r.stderr.contains(path),
                "{what}: the error should name {path}\n{}",
                r.describe()
            );
        }
    }

    // A failing request among good ones: the good ones print, the worst
    // code wins, one error line.
    let r = debugfs(&["-R", "stats", "-R", "ls /nope", "-R", "slotmap", &dev]);
    no_panic(&r, "mixed requests");
    assert_eq!(r.code, REQUEST_FAILED, "{}", r.describe());
    assert!(r.stdout.contains("Max Node Slots") && r.stdout.contains("Slot map:"));
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.describe());
    assert!(r.stderr.starts_with(PREFIX) && r.stderr.contains(&dev));

    // The good requests themselves succeed on this image.
    let r = debugfs(&["-R", "ls -l /lost+found", "-R", "stat //slot_map", &dev]);
    assert_eq!(r.code, OK, "{}", r.describe());
}

#[test]
fn bad_usage() {
    let dir = scratch();
    let img = dir.path().join("good.img");
    mkfs_local(&img, 64 * MIB, &[]);
    let dev = s(&img);
    let usage_cases: Vec<Vec<&str>> = vec![
        vec!["-R", "stats"],                  // no device
        vec!["--json", "-R", "mmp status"],   // no device, status only
        vec![],                               // nothing at all
        vec!["--bogus", "-R", "stats", &dev], // unknown option
        vec!["-R"],                           // -R without a value
        vec!["-R", "stats", &dev, &dev],      // two devices
    ];
    for args in usage_cases {
        let r = debugfs(&args);
        no_panic(&r, &format!("{args:?}"));
        assert_eq!(r.code, USAGE, "{args:?}\n{}", r.describe());
        assert_json_or_nothing(&r, USAGE, &format!("{args:?}"));
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}\n{}", r.describe());
        assert!(
            !r.stderr.is_empty(),
            "{args:?}: no message\n{}",
            r.describe()
        );
    }
    // A request file that does not exist: one line naming it.
    let missing = dir.path().join("no-requests.txt");
    let r = debugfs(&["-f", &s(&missing), &dev]);
    assert_one_error(&r, USAGE, &s(&missing), "-f missing file");
    // Empty request list from a file.
    let empty = dir.path().join("empty.txt");
    fs::write(&empty, "# nothing\n\n").expect("write empty request file");
    let r = debugfs(&["-f", &s(&empty), &dev]);
    assert_one_error(&r, USAGE, "no request", "-f empty file");
    // --help and --version are not errors.
    for a in ["--help", "--version"] {
        let r = debugfs(&[a]);
        assert_eq!(r.code, OK, "{a}\n{}", r.describe());
        assert!(!r.stdout.is_empty(), "{a}");
    }
}

// ------------------------------------------------------------ fuzz

/// A real image reduced to the parts the parsers look at: the first MiB
/// plus the metadata blocks found by walking the volume.
struct Base {
    name: &'static str,
    size: usize,
    block_size: usize,
    metaecc: bool,
    /// (byte offset, bytes) copied from the image.
    regions: Vec<(usize, Vec<u8>)>,
    /// Metadata blocks and the block check each carries under metaecc.
    meta: Vec<(u64, Option<CheckAt>)>,
    /// Named blocks for the targeted cases.
    named: BTreeMap<&'static str, u64>,
}

impl Base {
    fn image(&self) -> Vec<u8> {
        // vec![0; n] is calloc: pages the parsers never touch cost nothing.
        let mut v = vec![0u8; self.size];
        for (off, b) in &self.regions {
            v[*off..*off + b.len()].copy_from_slice(b);
        }
        v
    }

    fn block_range(&self, blkno: u64) -> std::ops::Range<usize> {
        let off = blkno as usize * self.block_size;
        off..off + self.block_size
    }
}

fn build_base(path: &Path, name: &'static str) -> Base {
    let dev = FileDevice::open(path, OpenMode::default()).expect("open image");
    let vol = Volume::open(Box::new(dev)).expect("open fresh mkfs.ocfs2 image");
    let bs = vol.block_size() as usize;
    let metaecc = vol.meta_ecc();
    let bpc = u64::from(vol.cluster_size()) / bs as u64;
    let dir_check = metaecc.then_some(CheckAt::DirTrailer);
    let mut meta: BTreeMap<u64, Option<CheckAt>> = BTreeMap::new();
    let mut named = BTreeMap::new();
    meta.insert(vol.super_blkno(), Some(CheckAt::Inode));
    named.insert("super", vol.super_blkno());

    let dir_blocks = |ino: &ocfs2_format::Inode| -> Vec<u64> {
        if ino.is_inline() {
            return Vec::new();
        }
        let nblocks = ino.size().div_ceil(bs as u64);
        let ext = vol.extents(ino).expect("extents of a fresh directory");
        (0..nblocks)
            .filter_map(|l| vol.map_block(&ext, l))
            .collect()
    };
    for (label, blkno) in [
        ("root", vol.root_blkno()),
        ("sysdir", vol.system_dir_blkno()),
    ] {
        let dir = vol.read_inode(blkno).expect("read directory inode");
        meta.insert(blkno, Some(CheckAt::Inode));
        named.insert(label, blkno);
        for b in dir_blocks(&dir) {
            meta.insert(b, dir_check);
            if label == "sysdir" {
                named.entry("sysdir_block").or_insert(b);
            }
        }
        for e in vol.dir_entries(&dir).expect("entries of a fresh directory") {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let ino = vol.read_inode(e.inode).expect("inode of a fresh entry");
            meta.insert(e.inode, Some(CheckAt::Inode));
            match e.name.as_slice() {
                b"slot_map" => named.insert("slot_map", e.inode),
                b"journal:0000" => named.insert("journal", e.inode),
                b"global_inode_alloc" => named.insert("inode_alloc", e.inode),
                b"lost+found" => named.insert("lost+found", e.inode),
                _ => None,
            };
            if ino.is_dir() {
                for b in dir_blocks(&ino) {
                    meta.insert(b, dir_check);
                }
            }
            if ino.flags() & inode_flags::CHAIN != 0 {
                for g in vol.chain_groups(&ino).expect("groups of a fresh allocator") {
                    meta.insert(g.blkno, Some(CheckAt::GroupDesc));
                }
            }
        }
    }
    let (_, runs) = vol.slot_map_layout().expect("slot map layout");
    for (_, dev_off, _) in runs {
        meta.insert(dev_off / bs as u64, None);
        named.entry("slot_map_data").or_insert(dev_off / bs as u64);
    }
    // Slot 0 sits at the start of the slot map's first block.
    assert_eq!(
        vol.slot_map_layout().expect("layout").1[0].1 % bs as u64,
        0,
        "slot map data does not start a block"
    );
    assert!(bpc >= 1);

    let size = usize::try_from(vol.device().size()).expect("image size fits usize");
    let mut f = File::open(path).expect("open image");
    let mut head = vec![0u8; MIB as usize];
    f.read_exact(&mut head).expect("read first MiB");
    let mut regions = vec![(0usize, head)];
    for &blk in meta.keys() {
        let off = blk as usize * bs;
        if off >= MIB as usize {
            let mut b = vec![0u8; bs];
            f.read_exact_at(&mut b, off as u64)
                .expect("read metadata block");
            regions.push((off, b));
        }
    }
    Base {
        name,
        size,
        block_size: bs,
        metaecc,
        regions,
        meta: meta.into_iter().collect(),
        named,
    }
}

/// Clock for the MMP check inside the fuzz: never sleeps, time only
/// advances on paper.
struct NoSleep(Duration);
impl ocfs2_mmp::Clock for NoSleep {
    fn sleep(&mut self, d: Duration) {
        self.0 += d;
    }
    fn now(&mut self) -> Duration {
        self.0
    }
}

/// Small limit for `read_file`: enough to cover several blocks.
const READ_LIMIT: u64 = 64 * 1024;

/// What a run of the parsers reached (for the summary).
#[derive(Default, Debug, Clone, Copy)]
struct Reach {
    opened: usize,
    sysdir_listed: usize,
    slot_map_read: usize,
}

/// Run every parser of the format crate (and the MMP check) over `data`.
/// Results may be errors; the point is that nothing panics.
fn exercise(data: Vec<u8>, reach: &mut Reach) {
    let vol = match Volume::open(Box::new(MemDevice::new(data))) {
        Ok(v) => v,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    reach.opened += 1;
    let sb = vol.sb();
    let _ = (
        sb.s_major_rev_level.get(),
        sb.s_max_slots.get(),
        sb.s_mmp_update_interval.get(),
        sb.s_first_cluster_group.get(),
        sb.s_uuid_hash.get(),
        sb.s_tunefs_flag.get(),
    );
    let f = vol.features();
    let _ = (f.names(), f.unknown(), vol.meta_ecc(), vol.super_corrected);
    let _ = (
        vol.label(),
        vol.uuid_hex(),
        vol.clusters(),
        vol.cluster_size(),
        vol.block_size(),
        vol.device_blocks(),
        vol.max_slots(),
        vol.slot_map_format(),
        vol.backup_super_blknos(),
        vol.super_inode().di().i_size.get(),
    );

    let look = |ino: &ocfs2_format::Inode| {
        let di = ino.di();
        let _ = (di.bitmap_used(), di.bitmap_total(), di.links(), di.rdev());
        let _ = (ino.is_dir(), ino.has_extent_list(), ino.is_inline());
        if let Ok((_, recs)) = ino.extent_list() {
            for r in recs {
                let _ = (r.clusters(1), r.flags(), r.leaf_clusters());
            }
        }
        let _ = vol.extents(ino).map_err(|e| e.to_string());
        if ino.flags() & inode_flags::CHAIN != 0 {
            let _ = ino.chain_list().map_err(|e| e.to_string());
            let _ = vol.chain_groups(ino).map_err(|e| e.to_string());
        }
        if ino.is_inline() {
            let _ = ino.inline_data().map_err(|e| e.to_string());
        }
        if ino.is_dir() {
            let _ = vol.dir_entries(ino).map_err(|e| e.to_string());
        }
        match vol.read_file(ino, READ_LIMIT) {
            Ok(bytes) => assert!(
                bytes.len() as u64 <= READ_LIMIT,
                "read_file returned {} bytes, limit {READ_LIMIT}",
                bytes.len()
            ),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    };
    for blk in [vol.root_blkno(), vol.system_dir_blkno()] {
        if let Ok(ino) = vol.read_inode(blk) {
            look(&ino);
        }
    }
    if let Ok(sysdir) = vol.read_inode(vol.system_dir_blkno()) {
        if let Ok(entries) = vol.dir_entries(&sysdir) {
            reach.sysdir_listed += 1;
            for e in entries.iter().take(64) {
                let _ = e.name_lossy();
                match vol.read_inode(e.inode) {
                    Ok(ino) => look(&ino),
                    Err(err) => {
                        let _ = err.to_string();
                    }
                }
            }
        }
    }
    match vol.slot_map_layout() {
        Ok((_, runs)) => {
            let io = ocfs2_mmp::engine::VolumeSlots::new(&vol).ok();
            if let (Ok(map), Some(io)) = (vol.read_slot_map_runs(&runs), io) {
                reach.slot_map_read += 1;
                for s in &map.slots {
                    let st = ocfs2_format::slotmap::MmpState::decode(s.raw);
                    let _ = (st.name(), st.describe(), s.legacy_in_use(map.format));
                }
                let _ = ocfs2_mmp::same_kind_rule(&map);
                for wait in [false, true] {
                    let r = ocfs2_mmp::check(
                        vol.sb().s_mmp_update_interval.get(),
                        ocfs2_mmp::CheckOptions {
                            wait,
                            feature_on: true,
                            // A short window: the heartbeat area of a
                            // damaged image is read a few times.
                            hb: ocfs2_mmp::engine::hb_options(&vol, Some(3)),
                        },
                        &io,
                        &mut NoSleep(Duration::ZERO),
                        &mut ocfs2_mmp::Silent,
                    );
                    if let Ok(rep) = r {
                        let _ = (rep.verdict.describe(), rep.verdict.exit_code());
                    }
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = vol.read_slot_map().map_err(|e| e.to_string());
    for p in [
        "//slot_map",
        "/lost+found",
        "//",
        "/",
        "<10>",
        "//orphan_dir:0000",
    ] {
        let _ = vol.resolve_path(p).map_err(|e| e.to_string());
    }
    let _ = vol.system_inode("global_bitmap").map_err(|e| e.to_string());
}

const INTERESTING_U64: [u64; 12] = [
    0,
    1,
    2,
    0x7F,
    0xFF,
    0xFFFF,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX - 1,
    u64::MAX,
];

/// Mutate an in-memory image: random bytes and runs in the first MiB and
/// inside metadata blocks; under metaecc the block check of a mutated
/// metadata block is often recomputed so the parsers look past it.
fn mutate(base: &Base, img: &mut [u8], rng: &mut StdRng) -> String {
    let mut log = Vec::new();
    let bs = base.block_size;
    let n = rng.random_range(1..=8);
    for _ in 0..n {
        let pick = rng.random_range(0..100);
        if pick < 35 {
            // A few random bytes anywhere in the first MiB.
            for _ in 0..rng.random_range(1..=4) {
                let off = rng.random_range(0..MIB as usize);
                img[off] = rng.random();
                log.push(format!("byte@{off}"));
            }
        } else if pick < 50 {
            // A random run in the first MiB: noise, zeros or 0xFF.
            let len = rng.random_range(2..=64);
            let off = rng.random_range(0..MIB as usize - len);
            let kind = rng.random_range(0..3);
            for b in &mut img[off..off + len] {
                *b = match kind {
                    0 => rng.random(),
                    1 => 0,
                    _ => 0xFF,
                };
            }
            log.push(format!("run{kind}@{off}+{len}"));
        } else {
            // Inside a metadata block found by walking the volume.
            let (blk, at) = base.meta[rng.random_range(0..base.meta.len())];
            let range = base.block_range(blk);
            let block = &mut img[range];
            // Headers (inode fields, id2 list headers) most of the time.
            let hot = rng.random_bool(0.7);
            let span = if hot { bs.min(0x140) } else { bs };
            if pick < 80 {
                let width = [1usize, 2, 4, 8][rng.random_range(0..4)];
                let off = rng.random_range(0..span / width) * width;
                let v = if rng.random_bool(0.5) {
                    INTERESTING_U64[rng.random_range(0..INTERESTING_U64.len())]
                } else {
                    rng.random()
                };
                block[off..off + width].copy_from_slice(&v.to_le_bytes()[..width]);
                log.push(format!("blk{blk}+{off}:{width}={v:#x}"));
            } else {
                let len = rng.random_range(1..=32).min(span);
                let off = rng.random_range(0..=span - len);
                rng.fill(&mut block[off..off + len]);
                log.push(format!("blk{blk}+{off}..{len}"));
            }
            if let (true, Some(at)) = (base.metaecc, at) {
                if rng.random_bool(0.7) {
                    blockcheck::update(block, at);
                    log.push("resealed".into());
                }
            }
        }
    }
    log.join(" ")
}

fn put(img: &mut [u8], off: usize, bytes: &[u8]) {
    img[off..off + bytes.len()].copy_from_slice(bytes);
}

/// Hand-made damage aimed at lengths, block numbers and depths taken from
/// disk. Each returns a description and the mutated image.
fn targeted(base: &Base) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let bs = base.block_size;
    let reseal = |img: &mut Vec<u8>, blk: u64, at: CheckAt| {
        if base.metaecc {
            blockcheck::update(&mut img[base.block_range(blk)], at);
        }
    };
    let field = |blk: u64, off: usize| blk as usize * bs + off;
    let last_blk = (base.size / bs - 1) as u64;

    for (name, key) in [
        ("journal", "journal"),
        ("sysdir", "sysdir"),
        ("slot_map", "slot_map"),
        ("root", "root"),
        ("lost+found", "lost+found"),
    ] {
        let Some(&blk) = base.named.get(key) else {
            continue;
        };
        for (what, off, val) in [
            ("i_size=u64::MAX", 0x20usize, u64::MAX),
            ("i_size=2^40", 0x20, 1 << 40),
            ("e_blkno=u64::MAX", 0xD8, u64::MAX),
            ("e_blkno=u64::MAX-1", 0xD8, u64::MAX - 1),
            (
                "e_cpos=u32::MAX,clusters=0xFFFF",
                0xD0,
                0x0000_FFFF_FFFF_FFFF,
            ),
        ] {
            let mut img = base.image();
            put(&mut img, field(blk, off), &val.to_le_bytes());
            if what.starts_with("e_blkno") {
                // Make the file span several blocks so the mapping adds to it.
                put(&mut img, field(blk, 0x20), &(8 * bs as u64).to_le_bytes());
            }
            reseal(&mut img, blk, CheckAt::Inode);
            out.push((format!("{name}: {what}"), img));
        }
        // Overlapping leaf records: the first maps cluster 0 to its real
        // block, the second maps clusters 0..2 near u64::MAX, so block 0 reads
        // fine and a later block is mapped through the second record.
        for far in [u64::MAX, u64::MAX - 1, u64::MAX - 3] {
            let mut img = base.image();
            put(&mut img, field(blk, 0xC0), &0u16.to_le_bytes()); // depth 0
            put(&mut img, field(blk, 0xC4), &2u16.to_le_bytes()); // two records
            put(&mut img, field(blk, 0xD4), &1u32.to_le_bytes()); // rec0: 1 cluster
            put(&mut img, field(blk, 0xE0), &0u32.to_le_bytes()); // rec1: cpos 0
            put(&mut img, field(blk, 0xE4), &2u32.to_le_bytes()); // rec1: 2 clusters
            put(&mut img, field(blk, 0xE8), &far.to_le_bytes());
            put(&mut img, field(blk, 0x20), &(16 * bs as u64).to_le_bytes());
            reseal(&mut img, blk, CheckAt::Inode);
            out.push((format!("{name}: overlapping extent at {far:#x}"), img));
        }
        // Inline data with a huge i_size / id_count.
        let mut img = base.image();
        let dynf = field(blk, 0x76);
        img[dynf] |= 1;
        put(&mut img, field(blk, 0xC0), &0xFFFFu16.to_le_bytes());
        put(&mut img, field(blk, 0x20), &u64::MAX.to_le_bytes());
        reseal(&mut img, blk, CheckAt::Inode);
        out.push((
            format!("{name}: inline, id_count=0xFFFF, i_size=u64::MAX"),
            img,
        ));

        // An extent tree whose child block claims depth 0xFFFF (and other
        // depths), under a list of depth 1.
        for child_depth in [0xFFFFu16, 0, 1, 16, 17] {
            let mut img = base.image();
            put(&mut img, field(blk, 0xC0), &1u16.to_le_bytes()); // l_tree_depth
            put(&mut img, field(blk, 0xC4), &1u16.to_le_bytes()); // l_next_free_rec
            put(&mut img, field(blk, 0xD0), &0u32.to_le_bytes()); // e_cpos
            put(&mut img, field(blk, 0xD4), &1u32.to_le_bytes()); // e_int_clusters
            put(&mut img, field(blk, 0xD8), &last_blk.to_le_bytes());
            put(&mut img, field(blk, 0x20), &(4 * bs as u64).to_le_bytes());
            let eb = field(last_blk, 0);
            put(&mut img, eb, b"EXBLK01\0");
            put(&mut img, eb + 0x30, &child_depth.to_le_bytes());
            put(&mut img, eb + 0x32, &4u16.to_le_bytes()); // l_count
            put(&mut img, eb + 0x34, &1u16.to_le_bytes()); // l_next_free_rec
            put(&mut img, eb + 0x40, &0u32.to_le_bytes());
            put(&mut img, eb + 0x44, &1u32.to_le_bytes());
            // Points back to itself: a loop at any depth.
            put(&mut img, eb + 0x48, &last_blk.to_le_bytes());
            reseal(&mut img, blk, CheckAt::Inode);
            reseal(&mut img, last_blk, CheckAt::ExtentBlock);
            out.push((
                format!("{name}: depth-1 list over an extent block of depth {child_depth:#x}"),
                img,
            ));
        }
    }
    // A chain whose group points back to itself, and one far past the end.
    if let Some(&blk) = base.named.get("inode_alloc") {
        for (what, c_blkno) in [("self loop", last_blk), ("past end", u64::MAX)] {
            let mut img = base.image();
            put(
                &mut img,
                field(blk, 0xC0 + 0x10 + 8),
                &c_blkno.to_le_bytes(),
            );
            reseal(&mut img, blk, CheckAt::Inode);
            let g = field(last_blk, 0);
            put(&mut img, g, b"GROUP01\0");
            put(&mut img, g + 0x18, &last_blk.to_le_bytes()); // bg_next_group
            reseal(&mut img, last_blk, CheckAt::GroupDesc);
            out.push((format!("global_inode_alloc: chain {what}"), img));
        }
        let mut img = base.image();
        put(&mut img, field(blk, 0xC4), &0xFFFFu16.to_le_bytes()); // cl_count
        put(&mut img, field(blk, 0xC6), &0xFFFFu16.to_le_bytes()); // cl_next_free_rec
        reseal(&mut img, blk, CheckAt::Inode);
        out.push((
            "global_inode_alloc: cl_count=cl_next_free_rec=0xFFFF".into(),
            img,
        ));
    }
    // Superblock fields.
    let sb = base.named["super"];
    for (what, off, bytes) in [
        (
            "s_max_slots=255",
            0xC0 + 0x40,
            255u64.to_le_bytes()[..2].to_vec(),
        ),
        ("s_max_slots=0", 0xC0 + 0x40, vec![0, 0]),
        (
            "s_root_blkno=u64::MAX",
            0xC0 + 0x28,
            u64::MAX.to_le_bytes().to_vec(),
        ),
        (
            "s_system_dir_blkno=u64::MAX",
            0xC0 + 0x30,
            u64::MAX.to_le_bytes().to_vec(),
        ),
        (
            "s_system_dir_blkno=0",
            0xC0 + 0x30,
            0u64.to_le_bytes().to_vec(),
        ),
        (
            "s_clustersize_bits=31",
            0xC0 + 0x3C,
            31u32.to_le_bytes().to_vec(),
        ),
        (
            "s_clustersize_bits=20",
            0xC0 + 0x3C,
            20u32.to_le_bytes().to_vec(),
        ),
        (
            "s_feature_incompat=all",
            0xC0 + 0x20,
            u32::MAX.to_le_bytes().to_vec(),
        ),
        (
            "s_mmp_update_interval=0xFFFF",
            0xC0 + 0xBA,
            vec![0xFF, 0xFF],
        ),
    ] {
        let mut img = base.image();
        put(&mut img, field(sb, off), &bytes);
        reseal(&mut img, sb, CheckAt::Inode);
        out.push((format!("superblock: {what}"), img));
    }
    // A system directory block whose first entry has a garbage rec_len.
    if let Some(&blk) = base.named.get("sysdir_block") {
        for rec_len in [0u16, 12, 13, 0xFFFC, bs as u16] {
            let mut img = base.image();
            put(&mut img, field(blk, 8), &rec_len.to_le_bytes());
            put(&mut img, field(blk, 10), &[0xFF]); // name_len
            reseal(&mut img, blk, CheckAt::DirTrailer);
            out.push((
                format!("system directory block {blk}: rec_len={rec_len}, name_len=255"),
                img,
            ));
        }
    }
    out
}

/// Run one case under catch_unwind; a panic becomes a failure line.
fn guarded(failures: &mut Vec<String>, reach: &mut Reach, label: String, img: Vec<u8>) {
    let res = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut r = Reach::default();
        exercise(img, &mut r);
        r
    }));
    match res {
        Ok(r) => {
            reach.opened += r.opened;
            reach.sysdir_listed += r.sysdir_listed;
            reach.slot_map_read += r.slot_map_read;
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            failures.push(format!("{label}: PANIC: {msg}"));
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fuzz_one_base(base: &Base, seed: u64, iters: u64) -> (Vec<String>, Reach) {
    let mut failures = Vec::new();
    let mut reach = Reach::default();
    // The unmutated image must reach everything.
    let mut clean = Reach::default();
    exercise(base.image(), &mut clean);
    assert_eq!(
        (clean.opened, clean.sysdir_listed, clean.slot_map_read),
        (1, 1, 1),
        "{}: the unmutated image should open, list its system directory and read its slot map",
        base.name
    );
    for (what, img) in targeted(base) {
        guarded(
            &mut failures,
            &mut reach,
            format!("{} targeted case `{what}`", base.name),
            img,
        );
    }
    for i in 0..iters {
        FUZZ_SEED_NOW.store(seed, Ordering::SeqCst);
        FUZZ_ITER_NOW.store(i, Ordering::SeqCst);
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i));
        let mut img = base.image();
        let log = mutate(base, &mut img, &mut rng);
        guarded(
            &mut failures,
            &mut reach,
            format!(
                "{} seed {seed} iteration {i} (FUZZ_SEED={seed} FUZZ_ITERS={}): {log}",
                base.name,
                i + 1
            ),
            img,
        );
    }
    FUZZ_ITER_NOW.store(u64::MAX, Ordering::SeqCst);
    (failures, reach)
}

fn fuzz_images(dir: &Path) -> Vec<Base> {
    let plain = dir.join("plain.img");
    mkfs_local(&plain, 128 * MIB, &["-N", "2", "-b", "1024", "-C", "4096"]);
    let ecc = dir.join("metaecc.img");
    mkfs_local(
        &ecc,
        128 * MIB,
        &[
            "-N",
            "2",
            "-b",
            "1024",
            "-C",
            "4096",
            "--fs-features=metaecc",
        ],
    );
    let a = build_base(&plain, "plain");
    let b = build_base(&ecc, "metaecc");
    assert!(!a.metaecc && b.metaecc, "metaecc image without metaecc?");
    vec![a, b]
}

#[test]
fn fuzz_parsers_never_panic() {
    let dir = scratch();
    let bases = fuzz_images(dir.path());
    let seed = env_u64("FUZZ_SEED", 0x0CF5_2026);
    let iters = env_u64("FUZZ_ITERS", 300);
    let mut all = Vec::new();
    for base in &bases {
        let t = Instant::now();
        let (failures, reach) = fuzz_one_base(base, seed, iters);
        eprintln!(
            "fuzz {}: {iters} iterations + targeted cases in {:.1?}: opened {}, listed //: {}, read slot map: {}, failures: {}",
            base.name,
            t.elapsed(),
            reach.opened,
            reach.sysdir_listed,
            reach.slot_map_read,
            failures.len()
        );
        all.extend(failures);
    }
    // Each panic's message and backtrace went to stderr as it happened; the
    // labels below say which seed and iteration to rerun.
    assert!(
        all.is_empty(),
        "{} fuzz case(s) panicked (first 20 listed; rerun one with FUZZ_SEED/FUZZ_ITERS):\n{}",
        all.len(),
        all.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(ABSURD.load(Ordering::SeqCst), 0);
}

/// Write a mutated in-memory image to a sparse file of the full size.
fn write_sparse(path: &Path, size: usize, img: &[u8], regions: &[(usize, usize)]) {
    let f = File::create(path).expect("create mutated image");
    f.set_len(size as u64).expect("size mutated image");
    for &(off, len) in regions {
        f.write_all_at(&img[off..off + len], off as u64)
            .expect("write mutated image");
    }
}

/// Turn MMP on in the superblock (interval 5) and put a protocol value in
/// slot 0, so that `mmp status -i` gets past "feature off".
fn enable_mmp_in(base: &Base, img: &mut [u8], rng: &mut StdRng) -> String {
    let bs = base.block_size;
    let sb = base.named["super"] as usize * bs;
    let inc = sb + 0xC0 + 0x20;
    let word = u32::from_le_bytes(img[inc..inc + 4].try_into().expect("4 bytes")) | 0x1_0000;
    put(img, inc, &word.to_le_bytes());
    put(img, sb + 0xC0 + 0xBA, &5u16.to_le_bytes());
    if base.metaecc {
        blockcheck::update(&mut img[sb..sb + bs], CheckAt::Inode);
    }
    let values = [
        0u32,
        1,
        0x1234,
        0xE24D_4D4F,
        0xE24D_4D50,
        0xE24D_4D55,
        0xE24D_4D5A,
        0xFF4D_4D50,
        0xF000_0000,
    ];
    let v = values[rng.random_range(0..values.len())];
    let slot0 = base.named["slot_map_data"] as usize * bs;
    put(img, slot0, &v.to_le_bytes());
    format!("mmp on, slot 0 = {v:#x}; ")
}

#[test]
fn fuzz_binary_on_mutated_images() {
    let dir = scratch();
    let bases = fuzz_images(dir.path());
    let seed = env_u64("FUZZ_SEED", 0xB1_2026);
    let per_base = env_u64("FUZZ_BIN_ITERS", 40);
    let path = dir.path().join("mutated.img");
    let mut codes: BTreeMap<i32, usize> = BTreeMap::new();
    for base in &bases {
        // Every byte the mutations can touch lies in these regions.
        let mut regions: Vec<(usize, usize)> =
            base.regions.iter().map(|(o, b)| (*o, b.len())).collect();
        let last = base.size - base.block_size;
        regions.push((last, base.block_size));
        for i in 0..per_base {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i));
            let mut img = base.image();
            let mut log = String::new();
            if i % 2 == 1 {
                log = enable_mmp_in(base, &mut img, &mut rng);
            }
            log.push_str(&mutate(base, &mut img, &mut rng));
            write_sparse(&path, base.size, &img, &regions);
            let dev = s(&path);
            let out = dir.path().join(format!("rdump-{i}"));
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir(&out).unwrap();
            let rdump = format!("rdump / {}", s(&out));
            let r = debugfs(&[
                "-R",
                "stats",
                "-R",
                "slotmap",
                "-R",
                "ls -l //",
                "-R",
                "mmp status -i",
                // The rescue requests walk every tree a damaged volume has.
                "-R",
                "cat //slot_map",
                "-R",
                "ncheck 10 11 12 13 14 15 16 17 18 19 20",
                "-R",
                "findpath 12",
                "-R",
                "icheck 0 2 4 8 16 64 100 1000 4096 20000",
                "-R",
                "frag //journal:0000",
                "-R",
                "logdump 0",
                "-R",
                "logdump 1",
                "-R",
                &rdump,
                &dev,
            ]);
            let _ = std::fs::remove_dir_all(&out);
            let what = format!(
                "{} binary seed {seed} iteration {i} (FUZZ_SEED={seed}): {log}",
                base.name
            );
            no_panic(&r, &what);
            assert!(
                [OK, MMP_IN_USE, MMP_UNKNOWN, REQUEST_FAILED, OPERATIONAL].contains(&r.code),
                "{what}: undocumented exit code\n{}",
                r.describe()
            );
            assert!(DOCUMENTED.contains(&r.code));
            for line in r.stderr.lines() {
                assert!(
                    line.starts_with(PREFIX),
                    "{what}: stray stderr line {line:?}\n{}",
                    r.describe()
                );
            }
            if r.code >= REQUEST_FAILED {
                assert!(
                    r.stderr.lines().any(|l| l.contains(&dev)),
                    "{what}: no error line names the device\n{}",
                    r.describe()
                );
            }
            *codes.entry(r.code).or_default() += 1;
        }
    }
    // The hand-made cases too, with requests that walk the damaged trees.
    let base = &bases[0];
    let mut regions: Vec<(usize, usize)> =
        base.regions.iter().map(|(o, b)| (*o, b.len())).collect();
    regions.push((base.size - base.block_size, base.block_size));
    for (what, img) in targeted(base) {
        write_sparse(&path, base.size, &img, &regions);
        let dev = s(&path);
        let r = debugfs(&[
            "-R",
            "stats",
            "-R",
            "slotmap",
            "-R",
            "ls -l //",
            "-R",
            "stat //journal:0000",
            "-R",
            "stat //global_inode_alloc",
            "-R",
            "ls -l /lost+found",
            "-R",
            "mmp status -i",
            &dev,
        ]);
        let what = format!("binary on targeted case `{what}`");
        no_panic(&r, &what);
        assert!(
            [OK, MMP_UNKNOWN, REQUEST_FAILED, OPERATIONAL].contains(&r.code),
            "{what}: unexpected exit code\n{}",
            r.describe()
        );
        *codes.entry(r.code).or_default() += 1;
    }
    eprintln!("binary on mutated images: exit codes {codes:?}");
    let _ = fs::remove_file(&path);
    // The mutation mix must not be so harsh that nothing opens.
    assert!(
        codes.keys().any(|&c| c != OPERATIONAL),
        "every mutated image failed to open: the fuzz reaches nothing past the superblock"
    );
}

#[test]
fn inline_slot_map_stays_inside_its_inode() {
    // A slot map stored inline must fit in its inode's inline area; a disk
    // that claims more (i_size past id_count, or id_count past the block)
    // must not make the crate read, or worse write, the blocks after it.
    let dir = scratch();
    let plain = dir.path().join("inline.img");
    mkfs_local(&plain, 128 * MIB, &["-N", "2", "-b", "1024", "-C", "4096"]);
    let base = build_base(&plain, "plain");
    let bs = base.block_size;
    let blk = base.named["slot_map"];
    let ino = blk as usize * bs;
    let inline_room = bs - 0xC0 - 8;
    let make = |id_count: u16, i_size: u64, max_slots: u16| {
        let mut img = base.image();
        img[ino + 0x76] |= 1; // OCFS2_INLINE_DATA_FL
        put(&mut img, ino + 0xC0, &id_count.to_le_bytes());
        put(&mut img, ino + 0x20, &i_size.to_le_bytes());
        let sb = base.named["super"] as usize * bs;
        put(&mut img, sb + 0xC0 + 0x40, &max_slots.to_le_bytes());
        Volume::open(Box::new(MemDevice::new(img))).expect("open patched image")
    };
    // Sane: two slots inline, inside the inode block.
    let vol = make(inline_room as u16, 16, 2);
    let (_, runs) = vol.slot_map_layout().expect("a sane inline slot map");
    for (_, dev_off, n) in &runs {
        assert!(
            *dev_off >= ino as u64 && dev_off + *n as u64 <= (ino + bs) as u64,
            "inline slot map run {dev_off}+{n} leaves its inode block {blk}"
        );
    }
    vol.read_slot_map().expect("read a sane inline slot map");
    // 255 slots (2040 bytes) claimed inline in a 1 KiB inode: the i_size
    // covers them but the inline area cannot.
    for (id_count, i_size) in [(inline_room as u16, 4096u64), (0xFFFF, 4096), (4096, 2040)] {
        let vol = make(id_count, i_size, 255);
        match vol.slot_map_layout() {
            Err(e) => assert!(e.to_string().contains(&blk.to_string()), "{e}"),
            Ok((_, runs)) => panic!(
                "inline slot map with id_count {id_count}, i_size {i_size}, 255 slots: accepted \
                 as {runs:?}, which runs past inode block {blk} (room {inline_room} bytes)"
            ),
        }
        assert!(vol.read_slot_map().is_err());
    }
}
