//! `debugfs-mmp` against the oracle: Debian's ocfs2-tools (`mkfs.ocfs2`,
//! `debugfs.ocfs2`, `fsck.ocfs2`), over a matrix of volumes made by
//! `mkfs.ocfs2` on sparse image files.
//!
//! Each volume of the matrix is its own test (so they run in parallel):
//!
//! 1. `-R stats`: every superblock line `debugfs.ocfs2` prints (the part
//!    before `\tInode:`) appears, identical and in the same order, in ours;
//! 2. `--json -R stats` agrees with the values `debugfs.ocfs2` prints;
//! 3. `ls -l /`, `ls -l //`, `ls /` and `ls //` are identical, byte for byte;
//! 4. `slotmap`: on a fresh volume neither tool shows a slot in use; on a copy
//!    whose slot map we mark the way a stock kernel does (through the format
//!    crate), `debugfs.ocfs2`'s rows equal our in-use slots.
//!
//! The `metaecc` tests check our CRC32/Hamming block check against blocks
//! written by `mkfs.ocfs2`, single-bit correction and two-bit detection.
//!
//! The tests never skip: when ocfs2-tools is missing they fail and say how
//! to install it. Both tools run with `TZ=UTC` (we print UTC; debugfs.ocfs2
//! prints local time).

use ocfs2_format::blockcheck::{self, CheckAt, CheckResult};
use ocfs2_format::ondisk::MMP_INTERVAL_OFFSET_IN_BLOCK;
use ocfs2_format::{Error, FileDevice, OpenMode, Volume};
use rand::Rng;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

mod common;
use common::{mkfs_ocfs2_made, scratch, show, sparse_file, GIB, MIB, TIB};

const OURS: &str = env!("CARGO_BIN_EXE_debugfs-mmp");

// ------------------------------------------------------------------ tools

struct Tools {
    mkfs: PathBuf,
    debugfs: PathBuf,
    fsck: PathBuf,
}

/// Find a tool of ocfs2-tools in `PATH`, `/usr/sbin`, `/sbin` or
/// `/usr/bin`; panic (never skip) when it is missing.
fn find_tool(name: &str) -> PathBuf {
    common::find_tool_in(name, "ocfs2-tools", &["/usr/sbin", "/sbin", "/usr/bin"])
}

fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| Tools {
        mkfs: find_tool("mkfs.ocfs2"),
        debugfs: find_tool("debugfs.ocfs2"),
        fsck: find_tool("fsck.ocfs2"),
    })
}

/// `debugfs.ocfs2 -R REQ IMG`, which must succeed; its standard output.
fn oracle(img: &Path, req: &str) -> String {
    let out = Command::new(&tools().debugfs)
        .env("TZ", "UTC")
        .arg("-R")
        .arg(req)
        .arg(img)
        .stdin(Stdio::null())
        .output()
        .expect("running debugfs.ocfs2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("No device open"),
        "debugfs.ocfs2 -R {req:?} {} failed:\n{}",
        img.display(),
        show(&out)
    );
    String::from_utf8(out.stdout).expect("debugfs.ocfs2 output is UTF-8")
}

/// `debugfs-mmp ARGS`, raw.
fn ours_raw(args: &[&str], img: &Path) -> Output {
    Command::new(OURS)
        .env("TZ", "UTC")
        .args(args)
        .arg(img)
        .stdin(Stdio::null())
        .output()
        .expect("running debugfs-mmp")
}

/// `debugfs-mmp -R REQ IMG`, which must succeed; its standard output.
fn ours(img: &Path, req: &str) -> String {
    let out = ours_raw(&["-R", req], img);
    assert!(
        out.status.success(),
        "debugfs-mmp -R {req:?} {} failed:\n{}",
        img.display(),
        show(&out)
    );
    String::from_utf8(out.stdout).expect("debugfs-mmp output is UTF-8")
}

/// `debugfs-mmp --json -R REQ IMG`, parsed.
fn ours_json(img: &Path, req: &str) -> Value {
    let out = ours_raw(&["--json", "-R", req], img);
    assert!(
        out.status.success(),
        "debugfs-mmp --json -R {req:?} failed:\n{}",
        show(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "debugfs-mmp --json -R {req:?}: not one JSON object ({e}):\n{}",
            show(&out)
        )
    })
}

// ------------------------------------------------------------------ volumes

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Default,
    MetaEcc,
    /// `--fs-feature-level=max-compat`: the old (16-bit) slot map.
    MaxCompat,
    MaxFeatures,
}

#[derive(Clone, Copy, Debug)]
struct Spec {
    label: &'static str,
    size: u64,
    block: u32,
    cluster: u32,
    slots: u16,
    /// `-M local`; otherwise a clustered volume (plain `-N n`).
    local: bool,
    level: Level,
    /// More mkfs options.
    extra: &'static [&'static str],
}

impl Spec {
    fn old_slot_map(&self) -> bool {
        self.level == Level::MaxCompat
    }
}

/// A sparse image in a temporary directory (under the target directory),
/// removed when dropped, even when the test fails.
struct Image {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Image {
    fn new(size: u64) -> Image {
        let dir = scratch("oracle-");
        let path = dir.path().join("vol.img");
        sparse_file(&path, size);
        Image { _dir: dir, path }
    }

    /// A sparse copy next to the original (`cp` copies only the data
    /// extents, so a 2 TiB image costs what mkfs wrote).
    fn copy(&self, name: &str) -> PathBuf {
        let to = self.path.with_file_name(name);
        let st = Command::new("cp")
            .arg("--sparse=auto")
            .arg(&self.path)
            .arg(&to)
            .status()
            .expect("running cp");
        assert!(st.success(), "cp {} {}", self.path.display(), to.display());
        to
    }
}

fn mkfs(img: &Path, spec: &Spec) {
    let mut args: Vec<String> = vec![
        "-F".into(),
        "-b".into(),
        spec.block.to_string(),
        "-C".into(),
        spec.cluster.to_string(),
        "-N".into(),
        spec.slots.to_string(),
        "-L".into(),
        spec.label.into(),
    ];
    if spec.local {
        args.extend(["-M".into(), "local".into()]);
    }
    match spec.level {
        Level::Default => {}
        Level::MetaEcc => args.push("--fs-features=metaecc".into()),
        Level::MaxCompat => args.push("--fs-feature-level=max-compat".into()),
        Level::MaxFeatures => args.push("--fs-feature-level=max-features".into()),
    }
    args.extend(spec.extra.iter().map(|s| s.to_string()));
    // Not -q: "mkfs.ocfs2 successful" is how we tell a good format (below).
    let out = Command::new(&tools().mkfs)
        .args(&args)
        .arg(img)
        .stdin(Stdio::null())
        .output()
        .expect("running mkfs.ocfs2");
    // A clustered mkfs.ocfs2 1.8.7 without /sbin/modprobe exits 1 after a
    // good format (see `common::mkfs_ocfs2_made`); the checks below verify
    // the geometry against the spec anyway.
    assert!(
        mkfs_ocfs2_made(&out, spec.local),
        "mkfs.ocfs2 {} {} failed:\n{}",
        args.join(" "),
        img.display(),
        show(&out)
    );
}

fn make_volume(spec: &Spec) -> Image {
    let img = Image::new(spec.size);
    mkfs(&img.path, spec);
    img
}

// ------------------------------------------------------------------ parsing debugfs.ocfs2

/// `debugfs.ocfs2 -R stats`, split into the superblock lines (before the
/// line starting with `\tInode:`) and the superblock inode's lines.
struct OracleStats {
    super_lines: Vec<String>,
    fields: HashMap<String, String>,
    inode_fields: HashMap<String, String>,
}

/// `\tKey: value   Key2: value2` into pairs (values trimmed).
fn parse_fields(lines: &[&str]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for line in lines {
        for part in line.trim_start_matches('\t').split("   ") {
            if let Some((k, v)) = part.split_once(':') {
                m.entry(k.trim().to_string())
                    .or_insert_with(|| v.trim().to_string());
            }
        }
    }
    m
}

fn oracle_stats(img: &Path) -> OracleStats {
    let text = oracle(img, "stats");
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines
        .iter()
        .position(|l| l.starts_with("\tInode:"))
        .unwrap_or_else(|| panic!("debugfs.ocfs2 stats has no \\tInode: line:\n{text}"));
    assert!(
        cut >= 15,
        "debugfs.ocfs2 stats: only {cut} superblock lines:\n{text}"
    );
    OracleStats {
        super_lines: lines[..cut].iter().map(|s| s.to_string()).collect(),
        fields: parse_fields(&lines[..cut]),
        inode_fields: parse_fields(&lines[cut..]),
    }
}

impl OracleStats {
    fn get(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("debugfs.ocfs2 stats has no {key:?} field"))
    }
    fn num(&self, key: &str) -> u64 {
        let v = self.get(key);
        v.parse()
            .unwrap_or_else(|_| panic!("debugfs.ocfs2 stats {key:?}: {v:?} is not a number"))
    }
    /// Feature names after the number: `Feature Compat: 3 backup-super ...`.
    fn features(&self, key: &str) -> Vec<String> {
        let mut words = self.get(key).split_whitespace();
        let word: u32 = words
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| {
                panic!("debugfs.ocfs2 stats {key:?}: no number");
            });
        let names: Vec<String> = words.map(str::to_string).collect();
        assert_eq!(
            word == 0,
            names.is_empty(),
            "{key}: word {word} with names {names:?}"
        );
        names
    }
    fn clusters(&self) -> u64 {
        let v = self
            .inode_fields
            .get("Clusters")
            .expect("debugfs.ocfs2 stats: no Clusters: in the superblock inode part");
        v.parse().expect("Clusters: a number")
    }
}

/// Rows of `debugfs.ocfs2 -R slotmap`: (slot, node) of the slots in use.
fn oracle_slotmap(img: &Path) -> Vec<(u64, u64)> {
    let text = oracle(img, "slotmap");
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["Slot#", "Node#"],
        "debugfs.ocfs2 slotmap header:\n{text}"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let n: Vec<u64> = l
                .split_whitespace()
                .map(|w| w.parse().unwrap_or_else(|_| panic!("slotmap row {l:?}")))
                .collect();
            assert_eq!(n.len(), 2, "slotmap row {l:?}");
            (n[0], n[1])
        })
        .collect()
}

/// Our `--json -R slotmap`: the format name and (slot, node) of the slots
/// whose state is not `empty`.
fn our_slotmap(img: &Path, slots: u16) -> (String, Vec<(u64, u64)>) {
    let j = ours_json(img, "slotmap");
    let format = j["format"].as_str().expect("format").to_string();
    let all = j["slots"].as_array().expect("slots array");
    assert_eq!(all.len(), usize::from(slots), "slot count in {j}");
    let used = all
        .iter()
        .filter(|s| s["state"] != "empty")
        .map(|s| {
            (
                s["slot"].as_u64().expect("slot"),
                s["node"].as_u64().unwrap_or_else(|| panic!("node of {s}")),
            )
        })
        .collect();
    (format, used)
}

// ------------------------------------------------------------------ the checks

/// `needle` appears in `hay` as a subsequence (same order, identical lines).
fn assert_lines_in_order(needle: &[String], hay: &str, what: &str) {
    let hay: Vec<&str> = hay.lines().collect();
    let mut at = 0;
    for line in needle {
        match hay[at..].iter().position(|h| h == line) {
            Some(i) => at += i + 1,
            None => panic!(
                "{what}: debugfs.ocfs2 line {line:?} is missing from ours (or out of order).\n\
                 --- debugfs.ocfs2\n{}\n--- ours\n{}",
                needle.join("\n"),
                hay.join("\n")
            ),
        }
    }
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("{v} is not an array"))
        .iter()
        .map(|x| x.as_str().expect("feature name").to_string())
        .collect()
}

/// The superblock's `s_mmp_update_interval`, read straight from the image.
fn raw_mmp_interval(img: &Path, block: u32) -> u16 {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(img).unwrap();
    let mut b = [0u8; 2];
    f.read_exact_at(
        &mut b,
        2 * u64::from(block) + MMP_INTERVAL_OFFSET_IN_BLOCK as u64,
    )
    .unwrap();
    u16::from_le_bytes(b)
}

fn open_rw(img: &Path) -> Volume {
    let dev = FileDevice::open(
        img,
        OpenMode {
            write: true,
            exclusive: false,
        },
    )
    .expect("open image read-write");
    Volume::open(Box::new(dev)).expect("open volume")
}

fn open_ro(img: &Path) -> Volume {
    let dev = FileDevice::open(img, OpenMode::default()).expect("open image");
    Volume::open(Box::new(dev)).expect("open volume")
}

/// The geometry mkfs was asked for is what debugfs.ocfs2 sees.
fn check_geometry(spec: &Spec, st: &OracleStats) {
    assert_eq!(
        st.num("Block Size Bits"),
        u64::from(spec.block.trailing_zeros())
    );
    assert_eq!(
        st.num("Cluster Size Bits"),
        u64::from(spec.cluster.trailing_zeros())
    );
    assert_eq!(st.num("Max Node Slots"), u64::from(spec.slots));
    assert_eq!(st.get("Label"), spec.label);
    let incompat = st.features("Feature Incompat");
    let has = |n: &str| incompat.iter().any(|x| x == n);
    assert_eq!(has("local"), spec.local, "local feature: {incompat:?}");
    assert_eq!(
        has("extended-slotmap"),
        !spec.old_slot_map(),
        "extended-slotmap: {incompat:?}"
    );
    if spec.level == Level::MetaEcc {
        assert!(has("metaecc"), "metaecc: {incompat:?}");
    }
    let cluster_bytes = st.clusters() * u64::from(spec.cluster);
    assert!(
        cluster_bytes <= spec.size && cluster_bytes + u64::from(spec.cluster) > spec.size,
        "{} clusters of {} bytes do not fill {} bytes",
        st.clusters(),
        spec.cluster,
        spec.size
    );
}

/// (1) and (2): `stats` text and JSON against debugfs.ocfs2.
fn check_stats(img: &Path, spec: &Spec, st: &OracleStats, interval: u16) {
    let text = ours(img, "stats");
    assert_lines_in_order(&st.super_lines, &text, "stats");

    let j = ours_json(img, "stats");
    assert_eq!(j["label"], st.get("Label"), "label");
    let uuid = j["uuid"].as_str().expect("uuid");
    assert!(
        uuid.len() == 32
            && uuid
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
        "uuid {uuid:?} is not 32 uppercase hex digits"
    );
    assert!(uuid.chars().all(|c| c.is_ascii_hexdigit()), "uuid {uuid:?}");
    assert_eq!(uuid, st.get("UUID"), "uuid");
    assert_eq!(
        j["block_size"],
        1u64 << st.num("Block Size Bits"),
        "block_size"
    );
    assert_eq!(
        j["cluster_size"],
        1u64 << st.num("Cluster Size Bits"),
        "cluster_size"
    );
    assert_eq!(j["block_size"], spec.block);
    assert_eq!(j["cluster_size"], spec.cluster);
    assert_eq!(j["max_slots"], st.num("Max Node Slots"), "max_slots");
    assert_eq!(j["clusters"], st.clusters(), "clusters");
    assert_eq!(j["root_blkno"], st.num("Root Blknum"), "root_blkno");
    assert_eq!(
        j["system_dir_blkno"],
        st.num("System Dir Blknum"),
        "system_dir_blkno"
    );
    let f = &j["features"];
    assert_eq!(names(&f["compat"]), st.features("Feature Compat"), "compat");
    assert_eq!(
        names(&f["incompat"]),
        st.features("Feature Incompat"),
        "incompat"
    );
    assert_eq!(
        names(&f["ro_compat"]),
        st.features("Feature RO compat"),
        "ro_compat"
    );
    // debugfs.ocfs2 does not print s_reserved0 (our s_mmp_update_interval):
    // compare with the bytes on disk and with what we expect there.
    assert_eq!(raw_mmp_interval(img, spec.block), interval);
    assert_eq!(j["mmp_update_interval"], interval, "mmp_update_interval");
}

/// (3): directory listings, whole text.
fn check_ls(img: &Path) {
    for req in ["ls -l //", "ls -l /", "ls //", "ls /"] {
        let theirs = oracle(img, req);
        let mine = ours(img, req);
        assert!(
            theirs.lines().count() >= 3,
            "debugfs.ocfs2 {req}: too short:\n{theirs}"
        );
        assert_eq!(
            mine, theirs,
            "{req}: debugfs-mmp (left) differs from debugfs.ocfs2 (right)"
        );
    }
}

/// Node number written into slot `i` (or `None`: leave it empty).
fn node_for(i: u16, slots: u16) -> Option<u32> {
    if slots > 1 && i % 3 == 1 {
        return None;
    }
    Some(if i == 2 {
        0
    } else {
        (u32::from(i) * 11 + 7) % 254
    })
}

/// (4): the slot map, fresh and then marked in use on a copy.
fn check_slotmap(image: &Image, spec: &Spec) {
    let want_format = if spec.old_slot_map() {
        "old"
    } else {
        "extended"
    };
    let (format, used) = our_slotmap(&image.path, spec.slots);
    assert_eq!(format, want_format);
    assert_eq!(used, vec![], "a fresh volume has no slot in use (ours)");
    assert_eq!(
        oracle_slotmap(&image.path),
        vec![],
        "a fresh volume has no slot in use (debugfs.ocfs2)"
    );

    let copy = image.copy("slots.img");
    let mut want = Vec::new();
    {
        let vol = open_rw(&copy);
        let (_, runs) = vol.slot_map_layout().expect("slot map layout");
        for i in 0..spec.slots {
            match (node_for(i, spec.slots), spec.old_slot_map()) {
                // Old format: the entry is the node number.
                (Some(n), true) => vol.write_slot(&runs, i, n, n).unwrap(),
                // Extended, as a stock kernel writes it: es_valid = 1.
                (Some(n), false) => vol.write_slot(&runs, i, 1, n).unwrap(),
                (None, true) => vol.write_slot(&runs, i, 0xFFFF, 0xFFFF).unwrap(),
                // es_valid = 0 with a stale node number: still empty.
                (None, false) => vol.write_slot(&runs, i, 0, 99).unwrap(),
            }
            if let Some(n) = node_for(i, spec.slots) {
                want.push((u64::from(i), u64::from(n)));
            }
        }
    }
    assert!(!want.is_empty());
    let theirs = oracle_slotmap(&copy);
    assert_eq!(theirs, want, "debugfs.ocfs2 slotmap rows");
    let (format, mine) = our_slotmap(&copy, spec.slots);
    assert_eq!(format, want_format);
    assert_eq!(
        mine, theirs,
        "our in-use slots (left) vs debugfs.ocfs2 rows"
    );

    // On the same copy: a non-zero MMP update interval, written through
    // write_super (which updates the metaecc check). debugfs.ocfs2 must still
    // print the very same superblock lines, and we the new interval.
    {
        let mut vol = open_rw(&copy);
        let mut sb = *vol.sb();
        sb.s_mmp_update_interval.set(7);
        vol.write_super(&sb).expect("write_super");
    }
    let st = oracle_stats(&copy);
    let before = oracle_stats(&image.path);
    assert_eq!(st.super_lines, before.super_lines);
    check_stats(&copy, spec, &st, 7);
    if spec.level == Level::MetaEcc {
        let vol = open_ro(&copy);
        let mut sb = vol.read_block(2).unwrap();
        assert_eq!(
            blockcheck::validate(&mut sb, CheckAt::Inode),
            CheckResult::Ok
        );
    }
    std::fs::remove_file(&copy).unwrap();
}

fn check_volume(spec: Spec) {
    let t0 = std::time::Instant::now();
    let image = make_volume(&spec);
    let t_mkfs = t0.elapsed();
    let st = oracle_stats(&image.path);
    check_geometry(&spec, &st);
    check_stats(&image.path, &spec, &st, 0);
    check_ls(&image.path);
    check_slotmap(&image, &spec);
    eprintln!(
        "{}: mkfs {:.2?}, total {:.2?}",
        spec.label,
        t_mkfs,
        t0.elapsed()
    );
}

// ------------------------------------------------------------------ the matrix

macro_rules! matrix {
    ($($name:ident: $size:expr, $block:expr, $cluster:expr, $slots:expr, $local:expr, $level:ident, [$($extra:expr),*];)*) => {
        $(
            #[test]
            fn $name() {
                check_volume(Spec {
                    label: stringify!($name),
                    size: $size,
                    block: $block,
                    cluster: $cluster,
                    slots: $slots,
                    local: $local,
                    level: Level::$level,
                    extra: &[$($extra),*],
                });
            }
        )*
    };
}

const LOCAL: bool = true;
const CLUSTERED: bool = false;

matrix! {
    // name:                  size,              block, cluster,    slots, mount,     features,   more mkfs options
    v01_64m_4k_local:         64 * MIB,          4096,  4096,       1,     LOCAL,     Default,    [];
    // mkfs.ocfs2 1.8.7 picks a default journal for 64 MiB of 512-byte blocks
    // that its own journal formatter then refuses ("Journal must be at least
    // 1024 blocks"): give it one explicitly.
    v02_64m_512_maxcompat:    64 * MIB,          512,   4096,       2,     CLUSTERED, MaxCompat,  ["-J", "size=4M"];
    v03_256m_512_16slots:     256 * MIB,         512,   4096,       16,    CLUSTERED, MaxCompat,  [];
    v04_256m_1k_metaecc:      256 * MIB,         1024,  8192,       4,     LOCAL,     MetaEcc,    [];
    v05_512m_2k_metaecc:      512 * MIB,         2048,  32 * 1024,  8,     CLUSTERED, MetaEcc,    [];
    v06_1g_4k_o2cb_info:      GIB,               4096,  64 * 1024,  4,     CLUSTERED, Default,    ["--cluster-stack=o2cb", "--cluster-name=oracle"];
    v07_1g_1k_maxfeatures:    GIB,               1024,  128 * 1024, 2,     CLUSTERED, MaxFeatures, [];
    v08_4g_4k_1m_16slots:     4 * GIB,           4096,  MIB as u32, 16,    CLUSTERED, Default,    [];
    v09_8g_512_globalhb:      8 * GIB,           512,   32 * 1024,  8,     CLUSTERED, Default,    ["--cluster-stack=o2cb", "--cluster-name=hbclust", "--global-heartbeat"];
    v10_odd_size_2k:          100 * MIB + 12345, 2048,  4096,       2,     LOCAL,     Default,    [];
    v11_16g_2k_maxcompat:     16 * GIB,          2048,  128 * 1024, 16,    LOCAL,     MaxCompat,  [];
    v12_1t_1k_maxfeatures:    TIB,               1024,  8192,       8,     LOCAL,     MaxFeatures, [];
    v13_2t_4k_1m_local:       2 * TIB,           4096,  MIB as u32, 4,     LOCAL,     Default,    [];
    v14_2t_2k_metaecc:        2 * TIB,           2048,  64 * 1024,  2,     CLUSTERED, MetaEcc,    [];
    v15_2t_512_block64:       2 * TIB,           512,   MIB as u32, 1,     LOCAL,     MaxFeatures, ["-J", "block64"];
    v16_2t_4k_4k_maxcompat:   2 * TIB,           4096,  4096,       2,     CLUSTERED, MaxCompat,  [];
}

// ------------------------------------------------------------------ metaecc

/// `debugfs.ocfs2` prints `CRC32: xxxxxxxx   ECC: xxxx` for inodes and
/// group descriptors: the stored check, as hex.
fn oracle_checks(text: &str) -> Vec<(u32, u16)> {
    text.lines()
        .filter_map(|l| {
            let f = parse_fields(&[l]);
            let crc = u32::from_str_radix(f.get("CRC32")?, 16).ok()?;
            let ecc = u16::from_str_radix(f.get("ECC")?, 16).ok()?;
            Some((crc, ecc))
        })
        .collect()
}

/// Group descriptors in `debugfs.ocfs2 stat //global_bitmap`: after each
/// `Group Chain:` header come a `CRC32:` line and the `##   Block# ...`
/// table, whose first row is the group that check belongs to (later rows of
/// the same chain are printed without their own check).
fn oracle_group_checks(text: &str) -> Vec<(u64, (u32, u16))> {
    let mut out = Vec::new();
    let mut in_group = false;
    let mut pending: Option<(u32, u16)> = None;
    let mut in_table = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.trim_start().starts_with("Group Chain:") {
            in_group = true;
            pending = None;
            in_table = false;
        } else if in_group && words.first() == Some(&"CRC32:") {
            pending = oracle_checks(line).first().copied();
        } else if in_group && words.first() == Some(&"##") {
            in_table = words.get(1) == Some(&"Block#");
        } else if in_table {
            if let (Some(check), Some(blk)) = (pending.take(), words.get(1)) {
                out.push((blk.parse().expect("Block#"), check));
            }
        }
    }
    out
}

fn flip(buf: &mut [u8], bit: usize) {
    buf[bit / 8] ^= 1 << (bit % 8);
}

fn metaecc_case(block: u32) {
    let spec = Spec {
        label: "ecc",
        size: 256 * MIB,
        block,
        cluster: 4096,
        slots: 2,
        local: true,
        level: Level::MetaEcc,
        extra: &[],
    };
    let image = make_volume(&spec);
    let img = &image.path;
    let bs = block as usize;
    let vol = open_ro(img);
    assert!(vol.meta_ecc());
    let sysdir = vol.system_dir_blkno();
    let slot_map = vol.system_inode("slot_map").unwrap();
    let bitmap = vol.system_inode("global_bitmap").unwrap();

    // ---- our compute() equals the checks mkfs.ocfs2 stored, and what
    // debugfs.ocfs2 prints for them.
    let stats_text = oracle(img, "stats");
    let bitmap_text = oracle(img, "stat //global_bitmap");
    let groups = oracle_group_checks(&bitmap_text);
    assert!(
        groups.len() >= 2,
        "no group descriptors in debugfs.ocfs2 stat //global_bitmap:\n{bitmap_text}"
    );
    let mut cases: Vec<(u64, CheckAt, (u32, u16))> = vec![
        (2, CheckAt::Inode, oracle_checks(&stats_text)[0]),
        (
            sysdir,
            CheckAt::Inode,
            oracle_checks(&oracle(img, &format!("stat <{sysdir}>")))[0],
        ),
        (
            slot_map,
            CheckAt::Inode,
            oracle_checks(&oracle(img, "stat //slot_map"))[0],
        ),
        (bitmap, CheckAt::Inode, oracle_checks(&bitmap_text)[0]),
    ];
    // The first, second and last group descriptors.
    for &(g, check) in [groups[0], groups[1], groups[groups.len() - 1]].iter() {
        cases.push((g, CheckAt::GroupDesc, check));
    }
    for (blkno, at, printed) in &cases {
        let raw = vol.read_block(*blkno).unwrap();
        let stored = blockcheck::stored(&raw, *at);
        let stored = (stored.bc_crc32e.get(), stored.bc_ecc.get());
        assert_ne!(stored.0, 0, "block {blkno}: mkfs stored no check");
        assert_eq!(
            stored, *printed,
            "block {blkno}: stored check vs debugfs.ocfs2's"
        );
        assert_eq!(
            blockcheck::compute(&raw, *at),
            stored,
            "block {blkno} ({at:?}, {bs}-byte blocks): our crc32/ecc differ from mkfs.ocfs2's"
        );
        assert_eq!(blockcheck::validate(&mut raw.clone(), *at), CheckResult::Ok);
    }

    // ---- one flipped bit is corrected, in memory, to the exact original.
    let mut rng = rand::rng();
    for &blkno in &[slot_map, sysdir] {
        let orig = vol.read_block(blkno).unwrap();
        for _ in 0..64 {
            let bit = loop {
                let b = rng.random_range(0..bs * 8);
                if !(0x80..0x88).contains(&(b / 8)) {
                    break b;
                }
            };
            let mut bad = orig.clone();
            flip(&mut bad, bit);
            assert_eq!(
                blockcheck::validate(&mut bad, CheckAt::Inode),
                CheckResult::Corrected(bit / 8),
                "block {blkno}, bit {bit}"
            );
            assert_eq!(bad, orig, "block {blkno}, bit {bit}: not restored");
        }
    }

    // ---- on disk: one flipped bit in i_size (0x20) of the slot_map inode
    // and in i_mtime (0x40) of the system directory inode.
    let before_stat = ours(img, "stat //slot_map");
    let before_ls = ours(img, "ls -l //");
    let copy = image.copy("ecc.img");
    let cvol = open_rw(&copy);
    let sm_orig = cvol.read_block(slot_map).unwrap();
    let sd_orig = cvol.read_block(sysdir).unwrap();
    let mut sm_bad = sm_orig.clone();
    flip(&mut sm_bad, 0x21 * 8 + 3);
    cvol.write_block(slot_map, &sm_bad).unwrap();
    let mut sd_bad = sd_orig.clone();
    flip(&mut sd_bad, 0x41 * 8 + 5);
    cvol.write_block(sysdir, &sd_bad).unwrap();
    cvol.device().flush().unwrap();
    assert_eq!(cvol.read_block(slot_map).unwrap(), sm_bad);
    assert_eq!(cvol.read_inode(slot_map).unwrap().buf, sm_orig);
    assert_eq!(cvol.read_inode(sysdir).unwrap().buf, sd_orig);
    // The whole tool sees the corrected inodes. (debugfs.ocfs2 does not:
    // its `ls -l` reads inodes without checking them and shows the flipped
    // i_size, so it is no oracle here.)
    assert_eq!(ours(&copy, "stat //slot_map"), before_stat);
    assert_eq!(ours(&copy, "ls -l //"), before_ls);

    // ---- two flipped bits: BadCheck naming the block.
    for (blkno, orig, bits) in [
        (slot_map, &sm_orig, [0x21 * 8 + 3, 0x30 * 8 + 1]),
        (sysdir, &sd_orig, [0x41 * 8 + 5, 0x9 * 8]),
    ] {
        let mut bad = orig.clone();
        for b in bits {
            flip(&mut bad, b);
        }
        assert!(
            matches!(
                blockcheck::validate(&mut bad.clone(), CheckAt::Inode),
                CheckResult::Bad { .. }
            ),
            "two flips in block {blkno} not detected"
        );
        cvol.write_block(blkno, &bad).unwrap();
        cvol.device().flush().unwrap();
        match cvol.read_inode(blkno) {
            Err(e @ Error::BadCheck { blkno: b, .. }) => {
                assert_eq!(b, blkno);
                assert!(
                    e.to_string().contains(&format!("block {blkno}")),
                    "message does not name block {blkno}: {e}"
                );
            }
            Err(e) => panic!("block {blkno}: expected BadCheck, got {e}"),
            Ok(_) => panic!("block {blkno}: two flipped bits read as good"),
        }
        let out = ours_raw(&["-R", &format!("stat <{blkno}>")], &copy);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(4),
            "stat <{blkno}> on a damaged inode:\n{}",
            show(&out)
        );
        assert!(out.stdout.is_empty(), "{}", show(&out));
        assert_eq!(stderr.lines().count(), 1, "one-line error:\n{stderr}");
        assert!(
            stderr.starts_with("debugfs-mmp: ") && stderr.contains(&format!("block {blkno}")),
            "error does not name block {blkno}: {stderr}"
        );
        cvol.write_block(blkno, orig).unwrap();
        cvol.device().flush().unwrap();
    }
    // The slot_map inode damaged, reached by path.
    let mut bad = sm_orig.clone();
    flip(&mut bad, 0x10 * 8 + 2);
    flip(&mut bad, 0x1a0 * 8 + 6);
    cvol.write_block(slot_map, &bad).unwrap();
    cvol.device().flush().unwrap();
    let out = ours_raw(&["-R", "stat //slot_map"], &copy);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("block {slot_map}")), "{stderr}");
    cvol.write_block(slot_map, &sm_orig).unwrap();
    cvol.device().flush().unwrap();

    // ---- our write_super produces a check fsck.ocfs2 accepts (it refuses
    // a superblock with a bad CRC32: "Bad CRC32 while opening").
    let fsck = |p: &Path| {
        Command::new(&tools().fsck)
            .args(["-f", "-n"])
            .arg(p)
            .stdin(Stdio::null())
            .output()
            .expect("running fsck.ocfs2")
    };
    let base = fsck(&copy);
    assert!(
        base.status.success(),
        "fsck.ocfs2 -fn on the restored copy:\n{}",
        show(&base)
    );
    {
        let mut v = open_rw(&copy);
        let mut sb = *v.sb();
        sb.s_mmp_update_interval.set(11);
        v.write_super(&sb).unwrap();
    }
    let after = fsck(&copy);
    assert!(
        after.status.success(),
        "fsck.ocfs2 -fn after write_super:\n{}",
        show(&after)
    );
    assert_eq!(ours_json(&copy, "stats")["mmp_update_interval"], 11);
    // And a superblock whose check we break is refused by fsck.ocfs2 (so the
    // fsck run above did look at the check).
    {
        let v = open_rw(&copy);
        let mut sb = v.read_block(2).unwrap();
        // Two bits of s_reserved2 (0xC0 + 0xC8 .. 0x200).
        flip(&mut sb, 0x1f0 * 8 + 1);
        flip(&mut sb, 0x1f8 * 8 + 4);
        v.write_block(2, &sb).unwrap();
        v.device().flush().unwrap();
    }
    let broken = fsck(&copy);
    assert!(
        !broken.status.success(),
        "fsck.ocfs2 took a bad superblock check:\n{}",
        show(&broken)
    );
}

#[test]
fn metaecc_512() {
    metaecc_case(512);
}

#[test]
fn metaecc_1k() {
    metaecc_case(1024);
}

#[test]
fn metaecc_2k() {
    metaecc_case(2048);
}

#[test]
fn metaecc_4k() {
    metaecc_case(4096);
}

#[test]
fn missing_tool_fails_loudly() {
    // The helper panics, with the install hint, rather than skipping.
    let err = std::panic::catch_unwind(|| find_tool("mkfs.ocfs2-does-not-exist"))
        .expect_err("a missing tool must panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("apt-get install -y ocfs2-tools") && msg.contains("make deps"),
        "{msg}"
    );
}
