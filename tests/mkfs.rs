//! `mkfs.ocfs2-mmp` (cargo target `mkfs-ocfs2-mmp`) against Debian's
//! `mkfs.ocfs2` 1.8.7, `debugfs.ocfs2` and `fsck.ocfs2`.
//!
//! 1. **Matrix.** For each geometry (its own `#[test]`, so they run in
//!    parallel) two sparse images of the same size are made, one by us and
//!    one by `mkfs.ocfs2 -q -F ... </dev/null`, with the same options. Both
//!    must exit 0; `fsck.ocfs2 -fn` must pass ours ("All passes succeeded.",
//!    exit 0) with exactly the bracketed problem lines it prints for
//!    theirs (`[DX_TREE_MISSING]` on some geometries, docs/mkfs-layout.md
//!    §3.6; `[QMAGIC_INVALID]`, a 1.8.7 defect ours does not copy, is
//!    allowed on theirs only, where §3.8.5 says it appears); and `debugfs.ocfs2` must print the same for [`REQUESTS`] on both
//!    images once [`normalise`] has masked what is random or time-dependent.
//!    The largest volumes are 16 TiB − 1 MiB: ext4 (the usual file system of
//!    `target/`) allows at most 16 TiB − 4 KiB in one file, and at 4 KiB
//!    blocks that size also keeps the block count within jbd2's 32 bits.
//!    `mkfs.ocfs2` takes only seconds there, so they are compared in full.
//! 2. **MMP.** Volumes born with MMP: the superblock fields through
//!    `debugfs-mmp --json`, a clean slot map, `mmp status -i` clean,
//!    `debugfs.ocfs2` refusing the unknown feature, and `fsck.ocfs2`
//!    passing the volume once the bit is cleared through the format crate.
//! 3. **Refusals.** Each is one stderr line starting `mkfs.ocfs2-mmp: ` and
//!    naming the device, exit 1 (refused) or 2 (usage), and leaves the
//!    target's bytes as they were.
//! 4. **`-n` and `-q`.**
//!
//! The tests never skip: a missing tool fails them with the `make deps`
//! hint. Every tool runs with `TZ=UTC` and stdin from /dev/null; as root,
//! `fsck.ocfs2` runs without CAP_IPC_LOCK (see [`fsck`]), which makes the
//! file four times faster and changes nothing in its output. A read-only
//! loop device is tried too where `losetup -r` works (said on stderr if not:
//! the `nobody` case covers read-only targets either way).

use ocfs2_format::slotmap::value;
use ocfs2_format::{FileDevice, OpenMode, Volume};
use serde_json::Value;
use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

mod common;
use common::{
    cmd, cp_sparse, euid, find_tool, require_modprobe, scratch, show, sparse_file, GIB,
    INCOMPAT_MMP, MIB, TIB,
};

const OURS: &str = env!("CARGO_BIN_EXE_mkfs-ocfs2-mmp");
const DEBUGFS_MMP: &str = env!("CARGO_BIN_EXE_debugfs-mmp");
/// How our mkfs names itself in messages.
const PROG: &str = "mkfs.ocfs2-mmp";
/// See the module comment.
const SIZE_16T: u64 = 16 * TIB - MIB;

/// Exit codes documented in `ocfs2_mkfs::exit`.
const EXIT_OK: i32 = 0;
const EXIT_FAILED: i32 = 1;
const EXIT_USAGE: i32 = 16;

// ------------------------------------------------------------------ tools

struct Tools {
    mkfs: PathBuf,
    debugfs: PathBuf,
    fsck: PathBuf,
}

fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| Tools {
        mkfs: find_tool("mkfs.ocfs2", "ocfs2-tools"),
        debugfs: find_tool("debugfs.ocfs2", "ocfs2-tools"),
        fsck: find_tool("fsck.ocfs2", "ocfs2-tools"),
    })
}

fn output(c: &mut Command) -> Output {
    c.output().unwrap_or_else(|e| panic!("running {c:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `mkfs-ocfs2-mmp ARGS DEV`.
fn ours(args: &[&str], dev: &Path) -> Output {
    output(cmd(OURS).args(args).arg(dev))
}

/// `mkfs-ocfs2-mmp ARGS DEV`, which must succeed.
fn ours_ok(args: &[&str], dev: &Path) -> Output {
    let out = ours(args, dev);
    assert!(
        out.status.code() == Some(EXIT_OK),
        "{PROG} {} {} failed:\n{}",
        args.join(" "),
        dev.display(),
        show(&out)
    );
    out
}

/// `debugfs-mmp --json -R REQ DEV`: exit code and the JSON object.
fn debugfs_mmp_json(dev: &Path, req: &str) -> (i32, Value) {
    let out = output(cmd(DEBUGFS_MMP).args(["--json", "-R", req]).arg(dev));
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "debugfs-mmp --json -R {req:?}: not one JSON object ({e}):\n{}",
            show(&out)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// `fsck.ocfs2 -fn DEV`. As root it runs without CAP_IPC_LOCK, so that the
/// memlock limit applies as for any other user: otherwise it mlocks an I/O
/// cache of a fifth of free memory (over a GiB here), which costs seconds of
/// system time per run and nothing else (the output is the same).
fn fsck(dev: &Path) -> Output {
    let mut c = if euid() == 0 {
        let mut c = cmd(find_tool("setpriv", "util-linux"));
        c.args(["--bounding-set=-ipc_lock", "--"])
            .arg(&tools().fsck);
        c
    } else {
        cmd(&tools().fsck)
    };
    output(c.arg("-fn").arg(dev))
}

/// `fsck.ocfs2 -fn` passes: exit 0 and "All passes succeeded.". Returns
/// the problem lines (`[CODE] ...`).
fn fsck_clean(dev: &Path, what: &str) -> Vec<String> {
    let out = fsck(dev);
    let stdout = text(&out.stdout);
    assert!(
        out.status.code() == Some(0) && stdout.contains("All passes succeeded."),
        "{what}: fsck.ocfs2 -fn {}:\n{}",
        dev.display(),
        show(&out)
    );
    problem_lines(&stdout)
}

fn problem_lines(fsck_stdout: &str) -> Vec<String> {
    fsck_stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('['))
        .map(str::to_string)
        .collect()
}

// ------------------------------------------------------------------ images

/// A temporary directory under `CARGO_TARGET_TMPDIR`, removed on drop
/// (also when the test fails).
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(prefix: &str) -> Scratch {
        Scratch {
            dir: scratch(&format!("mkfs-{prefix}-")),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A fresh sparse file of `size` bytes.
    fn sparse(&self, name: &str, size: u64) -> PathBuf {
        let p = self.path(name);
        sparse_file(&p, size);
        p
    }

    /// A sparse copy (`cp` copies only the data extents).
    fn copy(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.path(name);
        cp_sparse(from, &to);
        to
    }
}

/// What a refusal must leave alone: a file's size and a hash of its bytes
/// (all of them up to 256 MiB, else the first and last MiB).
#[derive(Debug, PartialEq, Eq)]
enum Fingerprint {
    Missing,
    Dir(Vec<std::ffi::OsString>),
    File { size: u64, hash: u64, whole: bool },
}

fn fingerprint(p: &Path) -> Fingerprint {
    let Ok(meta) = fs::metadata(p) else {
        return Fingerprint::Missing;
    };
    if meta.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)
            .expect("read_dir")
            .map(|e| e.expect("dir entry").file_name())
            .collect();
        names.sort();
        return Fingerprint::Dir(names);
    }
    let size = meta.len();
    let mut f = fs::File::open(p).unwrap_or_else(|e| panic!("open {}: {e}", p.display()));
    let mut h = DefaultHasher::new();
    let mut buf = vec![0u8; MIB as usize];
    let whole = size <= 256 * MIB;
    let mut hash_range = |f: &mut fs::File, off: u64, len: u64| {
        f.seek(SeekFrom::Start(off)).expect("seek");
        let mut left = len;
        while left > 0 {
            let n = left.min(MIB) as usize;
            f.read_exact(&mut buf[..n]).expect("read");
            h.write(&buf[..n]);
            left -= n as u64;
        }
    };
    if whole {
        hash_range(&mut f, 0, size);
    } else {
        hash_range(&mut f, 0, MIB);
        hash_range(&mut f, size - MIB, MIB);
    }
    Fingerprint::File {
        size,
        hash: h.finish(),
        whole,
    }
}

fn open_rw(p: &Path) -> Volume {
    let dev = FileDevice::open(
        p,
        OpenMode {
            write: true,
            exclusive: false,
        },
    )
    .unwrap_or_else(|e| panic!("open {} read-write: {e}", p.display()));
    Volume::open(Box::new(dev)).unwrap_or_else(|e| panic!("Volume::open {}: {e}", p.display()))
}

/// Write `raw` into slot `slot` of the slot map, as a mount would.
fn write_slot(p: &Path, slot: u16, raw: u32) {
    let v = open_rw(p);
    let (_, runs) = v.slot_map_layout().expect("slot map layout");
    v.write_slot(&runs, slot, raw, 0).expect("write_slot");
    v.device().flush().expect("flush");
}

// ------------------------------------------------------------------ normalising

/// Labels whose value is random or the time of the format: the rest of the
/// line after one of them is masked.
const MASKED: [&str; 10] = [
    "UUID",
    "Hash",
    "DX Seeds",
    "Generation",
    "FS Generation",
    "Last Check",
    "ctime",
    "atime",
    "mtime",
    "CRC32",
];

/// The reference normaliser, in Rust:
/// `sed -E 's/(UUID|Hash|DX Seeds|Generation|FS Generation|Last Check|ctime|atime|mtime|CRC32)[: ].*/\1 X/;
///          s/[ 0-9][0-9]-[A-Za-z]{3}-[0-9]{4} [0-9]{2}:[0-9]{2}/DATE/'`
fn normalise(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        out.push_str(&mask_dates(&mask_fields(line)));
        out.push('\n');
    }
    out
}

fn mask_fields(line: &str) -> String {
    let b = line.as_bytes();
    for p in 0..b.len() {
        if !line.is_char_boundary(p) {
            continue;
        }
        // Leftmost match; at one position, the longest label.
        let hit = MASKED
            .iter()
            .filter(|k| {
                line[p..].starts_with(**k) && matches!(b.get(p + k.len()), Some(b':' | b' '))
            })
            .max_by_key(|k| k.len());
        if let Some(k) = hit {
            return format!("{}{k} X", &line[..p]);
        }
    }
    line.to_string()
}

/// `DD-Mon-YYYY HH:MM` (the first one, as sed without `g`; a day below 10
/// is padded with a space, debugfs.ocfs2's `%2d`) becomes `DATE`.
fn mask_dates(line: &str) -> String {
    const PAT: &[u8] = b"_9-aaa-9999 99:99";
    let b = line.as_bytes();
    if b.len() < PAT.len() {
        return line.to_string();
    }
    for p in 0..=b.len() - PAT.len() {
        let ok = PAT.iter().zip(&b[p..]).all(|(&want, &c)| match want {
            b'9' => c.is_ascii_digit(),
            b'_' => c.is_ascii_digit() || c == b' ',
            b'a' => c.is_ascii_alphabetic(),
            w => c == w,
        });
        if ok {
            return format!("{}DATE{}", &line[..p], &line[p + PAT.len()..]);
        }
    }
    line.to_string()
}

#[test]
fn missing_tool_fails_loudly() {
    // The helper panics, with the install hint, rather than skipping.
    let err = std::panic::catch_unwind(|| find_tool("mkfs.ocfs2-does-not-exist", "ocfs2-tools"))
        .expect_err("a missing tool must panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("make deps") && msg.contains("apt-get install -y ocfs2-tools"),
        "{msg}"
    );
}

#[test]
fn normaliser_matches_the_sed() {
    assert_eq!(
        mask_fields("\tInode: 17939   Mode: 0755   Generation: 286615918 (0x1115696e)"),
        "\tInode: 17939   Mode: 0755   Generation X"
    );
    assert_eq!(
        mask_fields("\tFS Generation: 286615918 (0x1115696e)"),
        "\tFS Generation X"
    );
    assert_eq!(
        mask_fields("\tCheck Interval: 0   Last Check: Wed Nov 25 12:18:46 2026"),
        "\tCheck Interval: 0   Last Check X"
    );
    assert_eq!(mask_fields("\tCRC32: 00000000   ECC: 0000"), "\tCRC32 X");
    assert_eq!(
        mask_fields("\tDX Seeds: 1 2 3 (0x1 0x2 0x3)"),
        "\tDX Seeds X"
    );
    assert_eq!(
        mask_fields("\tRecovery Generation: 0"),
        "\tRecovery Generation X"
    );
    assert_eq!(mask_fields("\tLabel: UUIDish"), "\tLabel: UUIDish");
    assert_eq!(
        mask_dates("\t6  drwxr-xr-x   3     0     0   3896 25-Nov-2026 12:18 ."),
        "\t6  drwxr-xr-x   3     0     0   3896 DATE ."
    );
    // The first of the month: " 1-Dec-2026".
    assert_eq!(
        mask_dates("\t514  drwxr-xr-x  18     0     0   4096  1-Dec-2026 02:12 ."),
        "\t514  drwxr-xr-x  18     0     0   4096 DATE ."
    );
}

// ------------------------------------------------------------------ 1. the matrix

/// What `debugfs.ocfs2` must print the same on both images.
const REQUESTS: [&str; 12] = [
    "stats",
    "ls -l //",
    "ls -l /",
    "slotmap",
    "stat //global_bitmap",
    "stat //global_inode_alloc",
    "stat //journal:0000",
    "stat //extent_alloc:0000",
    "stat //inode_alloc:0000",
    "stat //slot_map",
    "stat //heartbeat",
    "stat /lost+found",
];

/// `debugfs.ocfs2 -R REQ DEV`: (normalised stdout, stderr with the device
/// path replaced by `DEV`).
fn debugfs_ocfs2(dev: &Path, req: &str) -> (String, String) {
    let out = output(cmd(&tools().debugfs).arg("-R").arg(req).arg(dev));
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr).replace(&dev.display().to_string(), "DEV");
    (normalise(&stdout), stderr)
}

/// The first line where two texts differ, for the failure message.
fn first_difference(a: &str, b: &str) -> String {
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for i in 0..al.len().max(bl.len()) {
        let (x, y) = (al.get(i), bl.get(i));
        if x != y {
            return format!(
                "first difference at line {}:\n  mkfs.ocfs2:     {:?}\n  mkfs.ocfs2-mmp: {:?}",
                i + 1,
                x.unwrap_or(&"<end>"),
                y.unwrap_or(&"<end>")
            );
        }
    }
    "no line differs (trailing newline?)".into()
}

/// One geometry: both mkfs, fsck on both, every request compared.
fn matrix_case(name: &str, size: u64, args: &[&str]) {
    matrix_case_with(name, size, args, &[]);
}

/// [`matrix_case`], where fsck.ocfs2 reports problems on mkfs.ocfs2's
/// image that ours does not have by design: `theirs_only` lists their codes
/// (`[QMAGIC_INVALID]`), each of which must be there.
fn matrix_case_with(name: &str, size: u64, args: &[&str], theirs_only: &[&str]) {
    let t0 = Instant::now();
    let clustered = !args.windows(2).any(|w| w == ["-M", "local"]);
    if clustered {
        require_modprobe();
    }
    let tmp = Scratch::new(name);
    let mine = tmp.sparse("ours.img", size);
    let theirs = tmp.sparse("theirs.img", size);
    let what = format!("[{name}] {} bytes, {}", size, args.join(" "));

    let mut our_args = vec!["-q", "-F"];
    our_args.extend_from_slice(args);
    let out = ours_ok(&our_args, &mine);
    assert!(
        out.stdout.is_empty(),
        "{what}: -q must print nothing on stdout:\n{}",
        show(&out)
    );

    let out = output(
        cmd(&tools().mkfs)
            .args(["-q", "-F"])
            .args(args)
            .arg(&theirs),
    );
    assert!(
        out.status.success(),
        "{what}: mkfs.ocfs2 -q -F {} failed:\n{}",
        args.join(" "),
        show(&out)
    );
    let t_mkfs = t0.elapsed();

    let our_problems = fsck_clean(&mine, &format!("{what}: our image"));
    let mut their_problems = fsck_clean(&theirs, &format!("{what}: mkfs.ocfs2's image"));
    for code in theirs_only {
        let n = their_problems.len();
        their_problems.retain(|l| !l.starts_with(code));
        assert!(
            their_problems.len() < n,
            "{what}: expected fsck.ocfs2 to report {code} on mkfs.ocfs2's image (a known \
             mkfs.ocfs2 1.8.7 defect ours does not copy); it did not"
        );
    }
    let t_fsck = t0.elapsed();

    let mut failures = Vec::new();
    if our_problems != their_problems {
        failures.push(format!(
            "---- fsck.ocfs2 -fn problem lines differ:\n\
             ==== on mkfs.ocfs2's image:\n{their_problems:#?}\n==== on ours:\n{our_problems:#?}"
        ));
    }

    for req in REQUESTS {
        let (o_out, o_err) = debugfs_ocfs2(&mine, req);
        let (t_out, t_err) = debugfs_ocfs2(&theirs, req);
        assert!(
            !t_out.trim().is_empty(),
            "{what}: debugfs.ocfs2 -R {req:?} printed nothing on mkfs.ocfs2's image:\n{t_err}"
        );
        if o_out != t_out || o_err != t_err {
            failures.push(format!(
                "---- debugfs.ocfs2 -R {req:?} differs; {}\n\
                 ==== on mkfs.ocfs2's image (stderr: {t_err:?}):\n{t_out}\
                 ==== on ours (stderr: {o_err:?}):\n{o_out}",
                first_difference(&t_out, &o_out)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{what}: {} of {} comparisons (fsck and the debugfs.ocfs2 requests) differ \
         after normalising:\n{}",
        failures.len(),
        REQUESTS.len() + 1,
        failures.join("\n")
    );
    eprintln!(
        "[{name}] ok: mkfs both {:.1}s, fsck both {:.1}s, total {:.1}s; problems {:?}",
        t_mkfs.as_secs_f64(),
        (t_fsck - t_mkfs).as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        our_problems
    );
}

/// 512-byte blocks, 74 cluster groups on 19 chains (wrapped chains), 4 slots.
#[test]
fn matrix_b512_c4k_n4_local_1g() {
    matrix_case(
        "b512_c4k_n4_local_1g",
        GIB,
        &["-b", "512", "-C", "4K", "-N", "4", "-M", "local"],
    );
}

/// 1K blocks, 8K clusters, -T mail, clustered (4 slots by size); 52 groups on 51 chains.
#[test]
fn matrix_b1k_c8k_mail_clustered_3g() {
    matrix_case(
        "b1k_c8k_mail_clustered_3g",
        3 * GIB,
        &["-b", "1K", "-C", "8K", "-T", "mail"],
    );
}

/// 2K blocks, 64K clusters, -T vmstore; 2 backup superblocks.
#[test]
fn matrix_b2k_c64k_vmstore_local_5g() {
    matrix_case(
        "b2k_c64k_vmstore_local_5g",
        5 * GIB,
        &["-b", "2K", "-C", "64K", "-T", "vmstore", "-M", "local"],
    );
}

/// -T datafiles picks 128K clusters.
#[test]
fn matrix_datafiles_local_4g() {
    matrix_case(
        "datafiles_local_4g",
        4 * GIB,
        &["-T", "datafiles", "-M", "local"],
    );
}

/// -T vmstore on 70G picks 256K clusters; clustered, 8 slots by size.
#[test]
fn matrix_vmstore_clustered_70g() {
    matrix_case("vmstore_clustered_70g", 70 * GIB, &["-T", "vmstore"]);
}

/// max-compat: the old slot map, no incompat features, block dirs without trailers.
#[test]
fn matrix_max_compat_local_1g() {
    matrix_case(
        "max_compat_local_1g",
        GIB,
        &["--fs-feature-level=max-compat", "-M", "local"],
    );
}

/// max-compat, clustered, 1K blocks.
#[test]
fn matrix_max_compat_b1k_clustered_1g() {
    matrix_case(
        "max_compat_b1k_clustered_1g",
        GIB,
        &["--fs-feature-level=max-compat", "-b", "1K", "-N", "2"],
    );
}

/// metaecc, clustered, 4 slots.
#[test]
fn matrix_metaecc_clustered_n4_2g() {
    matrix_case(
        "metaecc_clustered_n4_2g",
        2 * GIB,
        &["--fs-features=metaecc", "-N", "4"],
    );
}

/// metaecc at 512-byte blocks and 128K clusters (256 blocks per cluster), with a label.
#[test]
fn matrix_metaecc_b512_c128k_label_1g() {
    matrix_case(
        "metaecc_b512_c128k_label_1g",
        GIB,
        &[
            "--fs-features=metaecc",
            "-b",
            "512",
            "-C",
            "128K",
            "-M",
            "local",
            "-L",
            "ecc512",
        ],
    );
}

/// --no-backup-super on 20G (3 backups otherwise), 8 slots, -J size with block64.
#[test]
fn matrix_no_backup_super_n8_block64_20g() {
    matrix_case(
        "no_backup_super_n8_block64_20g",
        20 * GIB,
        &[
            "--no-backup-super",
            "-M",
            "local",
            "-N",
            "8",
            "-J",
            "size=64M,block64",
        ],
    );
}

/// The smallest size of the matrix, -J size and a label.
#[test]
fn matrix_journal_label_local_64m() {
    matrix_case(
        "journal_label_local_64m",
        64 * MIB,
        &["-M", "local", "-J", "size=8M", "-L", "mylabel"],
    );
}

/// All defaults on 64M: clustered, 2 slots, 1K blocks, no extent allocator groups.
#[test]
fn matrix_defaults_clustered_64m() {
    matrix_case("defaults_clustered_64m", 64 * MIB, &[]);
}

/// 16 slots: the system directory is a block directory.
#[test]
fn matrix_n16_journal32m_local_4g() {
    matrix_case(
        "n16_journal32m_local_4g",
        4 * GIB,
        &["-M", "local", "-N", "16", "-J", "size=32M"],
    );
}

/// 4K blocks with 9 slots: the first slot count whose system directory is
/// not inline at 4K (DX_TREE_MISSING on both images); clustered.
#[test]
fn matrix_b4k_n9_clustered_8g() {
    matrix_case(
        "b4k_n9_clustered_8g",
        8 * GIB,
        &["-b", "4K", "-N", "9", "-J", "size=16M"],
    );
}

/// 1M clusters on 2K blocks, 3 slots (fcg at block 512).
#[test]
fn matrix_b2k_c1m_n3_local_3g() {
    matrix_case(
        "b2k_c1m_n3_local_3g",
        3 * GIB,
        &["-b", "2K", "-C", "1M", "-N", "3", "-M", "local"],
    );
}

/// max-features: metaecc, usrquota and grpquota (quota files), inline-data on.
#[test]
fn matrix_max_features_n4_local_2g() {
    matrix_case(
        "max_features_n4_local_2g",
        2 * GIB,
        &["--fs-feature-level=max-features", "-N", "4", "-M", "local"],
    );
}

/// noinline-data: block directories with index roots (dx) for the root,
/// the orphan dirs and lost+found; 1K blocks.
#[test]
fn matrix_noinline_b1k_local_1g() {
    matrix_case(
        "noinline_b1k_local_1g",
        GIB,
        &["-b", "1K", "--fs-features=noinline-data", "-M", "local"],
    );
}

/// noinline-data with metaecc and a user quota on 2K blocks and 1M
/// clusters. mkfs.ocfs2 1.8.7 leaves a stale user quota info block here
/// (docs/mkfs-layout.md §3.8.5: fsck.ocfs2 says `[QMAGIC_INVALID]`); ours
/// writes the correct one, so that line is expected on theirs only.
#[test]
fn matrix_noinline_metaecc_usrquota_b2k_c1m_n3_3g() {
    matrix_case_with(
        "noinline_metaecc_usrquota_b2k_c1m_n3_3g",
        3 * GIB,
        &[
            "-M",
            "local",
            "-b",
            "2K",
            "-C",
            "1M",
            "-N",
            "3",
            "--fs-features=metaecc,noinline-data,usrquota",
        ],
        &["[QMAGIC_INVALID]"],
    );
}

/// 64G with defaults: 521 cluster groups of 4K clusters on 243 chains, 8 slots, 3 backups.
#[test]
fn matrix_defaults_clustered_64g() {
    matrix_case("defaults_clustered_64g", 64 * GIB, &[]);
}

/// 16 TiB − 1 MiB at 64K clusters: 8323 cluster groups, and 4195
/// extent-allocator groups, more than the 243 chain records (the chain
/// allocator wraps round robin).
#[test]
fn matrix_16t_b4k_c64k_local() {
    matrix_case(
        "16t_b4k_c64k_local",
        SIZE_16T,
        &["-b", "4096", "-C", "64K", "-M", "local"],
    );
}

/// 16 TiB − 1 MiB at 1M clusters, clustered, 16 slots (256M journals).
#[test]
fn matrix_16t_b4k_c1m_n16_clustered() {
    matrix_case(
        "16t_b4k_c1m_n16_clustered",
        SIZE_16T,
        &["-b", "4096", "-C", "1M", "-N", "16"],
    );
}

// ------------------------------------------------------------------ 2. MMP

/// Check a volume born with MMP through debugfs-mmp.
fn assert_mmp_volume(dev: &Path, interval: u64, slots: usize) {
    let (code, stats) = debugfs_mmp_json(dev, "stats");
    assert_eq!(code, 0, "debugfs-mmp --json -R stats: {stats}");
    assert_eq!(stats["mmp"], true, "stats: {stats}");
    let incompat: Vec<&str> = stats["features"]["incompat"]
        .as_array()
        .unwrap_or_else(|| panic!("features.incompat in {stats}"))
        .iter()
        .map(|v| v.as_str().expect("feature name"))
        .collect();
    assert!(incompat.contains(&"mmp"), "features.incompat: {incompat:?}");
    assert_eq!(stats["mmp_update_interval"], interval, "stats: {stats}");
    assert_eq!(
        stats["feature_words"]["incompat"]
            .as_u64()
            .expect("feature_words.incompat")
            & u64::from(INCOMPAT_MMP),
        u64::from(INCOMPAT_MMP)
    );

    let (code, map) = debugfs_mmp_json(dev, "slotmap");
    assert_eq!(code, 0, "debugfs-mmp --json -R slotmap: {map}");
    assert_eq!(map["format"], "extended", "slotmap: {map}");
    let all = map["slots"].as_array().expect("slots");
    assert_eq!(all.len(), slots, "slotmap: {map}");
    assert!(
        all.iter().all(|s| s["state"] == "empty"),
        "a fresh slot map must be all empty: {map}"
    );

    let (code, st) = debugfs_mmp_json(dev, "mmp status -i");
    assert_eq!(code, 0, "mmp status -i must be clean: {st}");
    assert_eq!(st["verdict"]["kind"], "clean", "mmp status -i: {st}");
    assert_eq!(st["update_interval"], interval, "mmp status -i: {st}");
}

#[test]
fn mmp_feature_and_interval_7() {
    let tmp = Scratch::new("mmp7");
    let img = tmp.sparse("mmp.img", GIB);
    let out = ours_ok(
        &[
            "-M",
            "local",
            "--fs-features=mmp",
            "--mmp-update-interval=7",
        ],
        &img,
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("MMP update interval: 7 s") && stdout.contains("mmp\n"),
        "the summary names the feature and the interval:\n{stdout}"
    );
    assert_mmp_volume(&img, 7, 1);

    // debugfs.ocfs2 1.8.7 does not know the feature: it refuses the volume,
    // which proves the bit is really set on disk.
    let out = output(cmd(&tools().debugfs).args(["-R", "stats"]).arg(&img));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        !out.status.success() || all.contains("Unsupported feature"),
        "debugfs.ocfs2 must refuse a volume with the MMP bit:\n{}",
        show(&out)
    );
    let out = fsck(&img);
    assert!(
        !out.status.success(),
        "fsck.ocfs2 must refuse a volume with the MMP bit:\n{}",
        show(&out)
    );

    // Without the bit the rest of the volume is a clean OCFS2 volume.
    let copy = tmp.copy(&img, "nommp.img");
    {
        let mut v = open_rw(&copy);
        let mut sb = *v.sb();
        let inc = sb.s_feature_incompat.get();
        assert_ne!(inc & INCOMPAT_MMP, 0, "incompat {inc:#x}");
        sb.s_feature_incompat.set(inc & !INCOMPAT_MMP);
        v.write_super(&sb).expect("write_super");
    }
    fsck_clean(&copy, "MMP volume with the bit cleared");
    let (stats, err) = debugfs_ocfs2(&copy, "stats");
    assert!(
        stats.contains("Feature Incompat: 46936 local sparse"),
        "debugfs.ocfs2 stats after clearing MMP:\n{stats}{err}"
    );
}

#[test]
fn mmp_enable_default_interval_clustered() {
    let tmp = Scratch::new("mmp5");
    let img = tmp.sparse("mmp.img", GIB);
    ours_ok(&["-q", "--enable-mmp", "-N", "2"], &img);
    assert_mmp_volume(&img, 5, 2);
    // An interval of 0 means the default.
    let img0 = tmp.sparse("mmp0.img", 256 * MIB);
    ours_ok(
        &[
            "-q",
            "-M",
            "local",
            "--fs-features=mmp",
            "--mmp-update-interval",
            "0",
        ],
        &img0,
    );
    assert_mmp_volume(&img0, 5, 1);
    // The interval's limits are accepted.
    for (i, n) in [(1u64, "1"), (300, "300")] {
        let p = tmp.sparse(&format!("mmp{n}.img"), 64 * MIB);
        ours_ok(
            &[
                "-q",
                "-M",
                "local",
                "--enable-mmp",
                "--mmp-update-interval",
                n,
            ],
            &p,
        );
        assert_mmp_volume(&p, i, 1);
    }
}

// ------------------------------------------------------------------ 3. refusals

/// Run ours on `target` and check a refusal: the exit code, one stderr line
/// `mkfs.ocfs2-mmp: <target>...` containing `needle`, nothing on stdout,
/// and the target's bytes unchanged.
fn refuse(args: &[&str], target: &Path, code: i32, needle: &str) {
    let before = fingerprint(target);
    let out = ours(args, target);
    check_refusal(&out, args, target, code, needle, 1);
    assert_eq!(
        fingerprint(target),
        before,
        "{PROG} {args:?}: a refusal must not change {}",
        target.display()
    );
}

/// `lines`: how many stderr lines (notices of an MMP wait come first).
fn check_refusal(
    out: &Output,
    args: &[&str],
    target: &Path,
    code: i32,
    needle: &str,
    lines: usize,
) {
    let stderr = text(&out.stderr);
    let dev = target.display().to_string();
    let what = format!("{PROG} {} {dev}", args.join(" "));
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit code\n{}",
        show(out)
    );
    assert!(out.stdout.is_empty(), "{what}: stdout\n{}", show(out));
    let l: Vec<&str> = stderr.lines().collect();
    assert_eq!(l.len(), lines, "{what}: stderr lines\n{}", show(out));
    assert!(
        l.iter().all(|x| x.starts_with(&format!("{PROG}: "))),
        "{what}: every stderr line starts with '{PROG}: '\n{}",
        show(out)
    );
    let last = l.last().expect("one line");
    assert!(
        last.starts_with(&format!("{PROG}: {dev}")),
        "{what}: the message names the device first\n{}",
        show(out)
    );
    assert!(
        last.contains(needle),
        "{what}: the message should say {needle:?}\n{}",
        show(out)
    );
    assert!(!stderr.contains("panicked"), "{what}\n{}", show(out));
}

#[test]
fn refuses_bad_targets() {
    let tmp = Scratch::new("targets");
    let zero = tmp.sparse("zero.img", 0);
    refuse(&[], &zero, EXIT_FAILED, "empty (0 bytes)");
    let missing = tmp.path("missing.img");
    refuse(&[], &missing, EXIT_FAILED, "No such file or directory");
    assert!(!missing.exists(), "a refusal must not create the target");
    let dir = tmp.path("dir");
    fs::create_dir(&dir).unwrap();
    refuse(&["-F"], &dir, EXIT_FAILED, "is a directory");
    let small = tmp.sparse("small.img", MIB);
    refuse(&["-F"], &small, EXIT_FAILED, "too small");
    refuse(&["-F", "-M", "local"], &small, EXIT_FAILED, "too small");
}

#[test]
fn refuses_bad_options() {
    let tmp = Scratch::new("options");
    let img = tmp.sparse("v.img", GIB);
    let long_label = "x".repeat(64);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["-b", "3000"], EXIT_USAGE, "block size 3000"),
        (vec!["-C", "2K"], EXIT_USAGE, "cluster size 2048"),
        (vec!["-N", "0"], EXIT_USAGE, "node slots 0"),
        (vec!["-N", "256"], EXIT_USAGE, "node slots 256"),
        (
            vec!["-L", long_label.as_str()],
            EXIT_USAGE,
            "label is 64 bytes",
        ),
        (
            vec!["--enable-mmp", "--mmp-update-interval", "301"],
            EXIT_USAGE,
            "301 is out of range",
        ),
        (
            vec!["--enable-mmp", "--mmp-update-interval", "-1"],
            EXIT_USAGE,
            "-1 is out of range",
        ),
        (
            vec!["--enable-mmp", "--mmp-update-interval=-1"],
            EXIT_USAGE,
            "-1 is out of range",
        ),
        (
            vec!["--fs-features=mmp", "--mmp-update-interval", "abc"],
            EXIT_USAGE,
            "'abc' is not a number",
        ),
        (
            vec!["--mmp-update-interval", "7"],
            EXIT_USAGE,
            "--mmp-update-interval needs MMP",
        ),
        (
            vec!["--fs-feature-level=max-compat", "--fs-features=mmp"],
            EXIT_FAILED,
            "extended slot map",
        ),
        (
            vec!["--fs-features=noextended-slotmap", "--enable-mmp"],
            EXIT_FAILED,
            "extended slot map",
        ),
        (
            vec!["--fs-features=bogus"],
            EXIT_USAGE,
            "unknown feature 'bogus'",
        ),
    ];
    for (args, code, needle) in &cases {
        let mut a = vec!["-F"];
        a.extend_from_slice(args);
        refuse(&a, &img, *code, needle);
    }
    // The same on a volume: nothing of it changes either.
    ours_ok(&["-q", "-M", "local"], &img);
    let before = fingerprint(&img);
    for (args, code, needle) in &cases {
        let mut a = vec!["-F"];
        a.extend_from_slice(args);
        refuse(&a, &img, *code, needle);
    }
    assert_eq!(fingerprint(&img), before);
    fsck_clean(&img, "volume after refused re-formats");
}

struct LoopDev(String);
impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn refuses_read_only_target() {
    let setpriv = find_tool("setpriv", "util-linux");
    let tmp = Scratch::new("readonly");
    // nobody must reach the image: the temporary directory is 0700.
    fs::set_permissions(tmp.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let img = tmp.sparse("ro.img", 256 * MIB);
    ours_ok(&["-q", "-M", "local"], &img);
    fs::set_permissions(&img, fs::Permissions::from_mode(0o444)).unwrap();
    let as_nobody = |args: &[&str]| {
        output(
            cmd(&setpriv)
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--",
                    OURS,
                ])
                .args(args)
                .arg(&img),
        )
    };
    let v = output(
        cmd(&setpriv)
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                OURS,
            ])
            .arg("--version"),
    );
    assert!(
        v.status.success(),
        "cannot run {OURS} as user nobody (are target/ and its parents world-executable?)\n{}",
        show(&v)
    );
    let before = fingerprint(&img);
    for args in [&["-F"][..], &["-F", "-q", "-M", "local"][..]] {
        let out = as_nobody(args);
        check_refusal(&out, args, &img, EXIT_FAILED, "read-only target", 1);
        assert!(
            text(&out.stderr).contains("Permission denied"),
            "{}",
            show(&out)
        );
    }
    assert_eq!(fingerprint(&img), before, "read-only target changed");
    fs::set_permissions(&img, fs::Permissions::from_mode(0o644)).unwrap();

    // A read-only loop device, where the kernel gives one.
    find_tool("losetup", "mount");
    let att = output(
        Command::new("losetup")
            .args(["-r", "-f", "--show"])
            .arg(&img),
    );
    if !att.status.success() {
        eprintln!(
            "refuses_read_only_target: read-only loop device NOT RUN: losetup -r refused ({}); \
             the nobody case above covers read-only targets",
            text(&att.stderr).trim()
        );
        return;
    }
    let lo = LoopDev(text(&att.stdout).trim().to_string());
    let dev = PathBuf::from(&lo.0);
    let before = fingerprint(&img);
    let out = ours(&["-F", "-q"], &dev);
    check_refusal(
        &out,
        &["-F", "-q"],
        &dev,
        EXIT_FAILED,
        "read-only target",
        1,
    );
    drop(lo);
    assert_eq!(
        fingerprint(&img),
        before,
        "image behind the read-only loop device changed"
    );
}

#[test]
fn existing_file_systems_need_force() {
    let mkfs_ext4 = find_tool("mkfs.ext4", "e2fsprogs");
    let tmp = Scratch::new("existing");
    // ext4: refused without -F, made with -F.
    let ext4 = tmp.sparse("ext4.img", 256 * MIB);
    let out = output(cmd(&mkfs_ext4).args(["-q", "-F"]).arg(&ext4));
    assert!(out.status.success(), "mkfs.ext4:\n{}", show(&out));
    refuse(
        &[],
        &ext4,
        EXIT_FAILED,
        "existing ext2/ext3/ext4 file system",
    );
    refuse(
        &["-M", "local"],
        &ext4,
        EXIT_FAILED,
        "use -F to overwrite it",
    );
    refuse(&["-n"], &ext4, EXIT_FAILED, "use -F");
    let out = ours_ok(&["-q", "-F", "-M", "local"], &ext4);
    assert!(out.stdout.is_empty(), "-q: {}", show(&out));
    fsck_clean(&ext4, "OCFS2 over ext4");

    // OCFS2 made by mkfs.ocfs2: refused without -F.
    let ocfs2 = tmp.sparse("ocfs2.img", 256 * MIB);
    let out = output(
        cmd(&tools().mkfs)
            .args(["-q", "-F", "-M", "local"])
            .arg(&ocfs2),
    );
    assert!(out.status.success(), "mkfs.ocfs2:\n{}", show(&out));
    refuse(&[], &ocfs2, EXIT_FAILED, "existing ocfs2 file system");
    refuse(&["--enable-mmp"], &ocfs2, EXIT_FAILED, "use -F");
    ours_ok(&["-q", "-F", "--enable-mmp"], &ocfs2);
    assert_mmp_volume(&ocfs2, 5, 2);
    // Ours, with MMP and a clean slot map: refused without -F too.
    refuse(
        &["-M", "local"],
        &ocfs2,
        EXIT_FAILED,
        "existing ocfs2 file system",
    );
}

#[test]
fn mmp_fsck_marker_refused_even_with_force() {
    let tmp = Scratch::new("seqfsck");
    let img = tmp.sparse("v.img", 256 * MIB);
    ours_ok(&["-q", "-M", "local", "--enable-mmp"], &img);
    write_slot(&img, 0, value::SEQ_FSCK);
    let (_, st) = debugfs_mmp_json(&img, "mmp status -i");
    assert_eq!(st["verdict"]["kind"], "fsck_running", "{st}");
    refuse(&["-F"], &img, EXIT_FAILED, "SEQ_FSCK");
    refuse(
        &["-F", "-q", "-M", "local"],
        &img,
        EXIT_FAILED,
        "refusing even with -F",
    );
    refuse(&[], &img, EXIT_FAILED, "SEQ_FSCK");
    refuse(&["-n", "-F"], &img, EXIT_FAILED, "SEQ_FSCK");
}

/// A sequence that moves while mkfs watches it: a live mount. Takes the
/// kernel's wait (11 s at the default interval).
#[test]
fn mmp_moving_sequence_refused_even_with_force() {
    let tmp = Scratch::new("seqlive");
    let img = tmp.sparse("v.img", 256 * MIB);
    ours_ok(&["-q", "-M", "local", "--enable-mmp"], &img);
    let seq = 0x0000_1234;
    write_slot(&img, 0, seq);
    // What the image must look like at the end: our write of seq+1 only.
    let expected = tmp.copy(&img, "expected.img");
    write_slot(&expected, 0, seq + 1);

    let t0 = Instant::now();
    let mut child = cmd(OURS)
        .args(["-F", "-q"])
        .arg(&img)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mkfs-ocfs2-mmp");
    // The "live mount": a thread that bumps the sequence ~3 s after mkfs
    // started, and in any case only once mkfs has read the slot map and
    // announced its wait (so a slow start cannot make the test pass a
    // stale volume to mkfs).
    let mut err = BufReader::new(child.stderr.take().expect("stderr piped"));
    let mut notice = String::new();
    err.read_line(&mut notice).expect("read mkfs's stderr");
    let writer = {
        let img = img.clone();
        std::thread::spawn(move || {
            if let Some(left) = Duration::from_secs(3).checked_sub(t0.elapsed()) {
                std::thread::sleep(left);
            }
            write_slot(&img, 0, seq + 1);
        })
    };
    let mut rest = String::new();
    err.read_to_string(&mut rest).expect("read mkfs's stderr");
    let out = child.wait_with_output().expect("wait for mkfs-ocfs2-mmp");
    let took = t0.elapsed();
    writer.join().expect("writer thread");
    let out = Output {
        stderr: format!("{notice}{rest}").into_bytes(),
        ..out
    };
    // One notice of the wait, then the refusal.
    check_refusal(
        &out,
        &["-F", "-q"],
        &img,
        EXIT_FAILED,
        "refusing even with -F",
        2,
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("waiting 11 s") && stderr.contains("moved from 0x00001234 to 0x00001235"),
        "{}",
        show(&out)
    );
    // The slot is re-read every second of the wait: the move (at ~3 s) is
    // seen when it happens, and never later than the announced 11 s.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(14),
        "mkfs must watch the slot until it moves, within the kernel's wait; it took {took:?}"
    );
    assert_eq!(
        fingerprint(&img),
        fingerprint(&expected),
        "mkfs changed the in-use volume"
    );
}

// ------------------------------------------------------------------ 4. -n and -q

#[test]
fn dry_run_writes_nothing() {
    let tmp = Scratch::new("dryrun");
    let args = ["-b", "1K", "-C", "8K", "-T", "mail", "-L", "lab"];
    // A fresh target: nothing written, the summary as mkfs.ocfs2 -n prints it.
    let img = tmp.sparse("fresh.img", 3 * GIB);
    let before = fingerprint(&img);
    let mut a = vec!["-n"];
    a.extend_from_slice(&args);
    let out = ours_ok(&a, &img);
    assert_eq!(fingerprint(&img), before, "-n wrote to the target");
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Dry run\n"), "{}", show(&out));
    for line in [
        "Filesystem Type of mail",
        "Label: lab",
        "Block size: 1024 (10 bits)",
        "Cluster size: 8192 (13 bits)",
        "Volume size: 3221225472 (393216 clusters) (3145728 blocks)",
        "Node slots: 4",
    ] {
        assert!(stdout.lines().any(|l| l == line), "no {line:?}:\n{stdout}");
    }
    assert!(!stdout.contains("successful"), "{stdout}");
    let theirs = tmp.sparse("theirs.img", 3 * GIB);
    let t = output(cmd(&tools().mkfs).args(&a).arg(&theirs));
    assert!(t.status.success(), "mkfs.ocfs2 -n:\n{}", show(&t));
    assert_eq!(
        stdout,
        text(&t.stdout),
        "-n: our summary (left) differs from mkfs.ocfs2's (right)"
    );

    // MMP in the summary.
    let out = ours_ok(&["-n", "--enable-mmp", "--mmp-update-interval", "9"], &img);
    assert!(
        text(&out.stdout).contains("MMP update interval: 9 s"),
        "{}",
        show(&out)
    );
    assert_eq!(fingerprint(&img), before, "-n wrote to the target");

    // An existing volume (with -F): not touched.
    let vol = tmp.sparse("vol.img", 256 * MIB);
    ours_ok(&["-q", "-M", "local", "--enable-mmp"], &vol);
    let before = fingerprint(&vol);
    let out = ours_ok(&["-n", "-F", "-N", "4", "-b", "512"], &vol);
    assert!(text(&out.stdout).starts_with("Dry run\n"), "{}", show(&out));
    assert_eq!(
        fingerprint(&vol),
        before,
        "-n -F wrote to an existing volume"
    );
    let out = ours_ok(&["-n", "-q", "-F"], &vol);
    assert!(out.stdout.is_empty(), "-n -q: {}", show(&out));
    assert_eq!(
        fingerprint(&vol),
        before,
        "-n -q -F wrote to an existing volume"
    );
    assert_mmp_volume(&vol, 5, 1);
}

#[test]
fn quiet_prints_nothing() {
    let tmp = Scratch::new("quiet");
    let img = tmp.sparse("q.img", GIB);
    let out = ours_ok(&["-q", "-M", "local", "-N", "2", "-L", "quiet"], &img);
    assert!(out.stdout.is_empty(), "-q stdout:\n{}", show(&out));
    assert!(out.stderr.is_empty(), "-q stderr:\n{}", show(&out));
    let out = ours_ok(&["-q", "-F", "--enable-mmp"], &img);
    assert!(out.stdout.is_empty(), "-q -F stdout:\n{}", show(&out));
    assert!(out.stderr.is_empty(), "-q -F stderr:\n{}", show(&out));
    // Without -q: the summary, the steps and the last line.
    let out = ours_ok(&["-F", "-M", "local", "-L", "loud"], &img);
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("Label: loud\n") && stdout.ends_with(&format!("{PROG} successful\n\n")),
        "{}",
        show(&out)
    );
    fsck_clean(&img, "after three formats");
}
