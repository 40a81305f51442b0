//! Extended attributes the kernel wrote (issue 12's checks, issue 14's
//! rescue): on the fixtures of tests/fixtures/make-xattr-images.sh (the
//! seed's kernel gave files and a directory attributes in every kind of
//! storage: the inode, a block, buckets, values in clusters of their own),
//! fsck.ocfs2-mmp and fsck.ocfs2 are clean, `debugfs-mmp xattr` agrees with
//! debugfs.ocfs2 and reads every value back as the kernel's helper summed
//! it, and each kind of damage fsck.ocfs2 finds in attributes is found and
//! repaired: both checkers are clean after our `-y`, and every attribute
//! the repair keeps reads back as the kernel wrote it.

mod common;

use common::{cmd, copy_without_mmp, find_tool, scratch};
use ocfs2_format::xattr::{self, block, header, Entry, ENTRY_SIZE, HEADER_SIZE};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

const DEBUGFS: &str = env!("CARGO_BIN_EXE_debugfs-mmp");
const FSCK: &str = env!("CARGO_BIN_EXE_fsck-ocfs2-mmp");

const FIXTURES: [&str; 2] = ["xattr-1k", "xattr-2k-ecc"];
const PATHS: [&str; 6] = ["d", "d/small", "d/block", "d/many", "d/big", "d/bigmany"];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn describe(o: &Output) -> String {
    common::show(o)
}

/// The fixture `name` unpacked into `dir`.
fn unpack(name: &str, dir: &Path) -> PathBuf {
    let img = dir.join(format!("{name}.img"));
    let gz = fixture_dir().join(format!("{name}.img.gz"));
    let out = cmd("sh")
        .arg("-c")
        .arg("gzip -dc \"$1\" > \"$2\"")
        .arg("sh")
        .arg(&gz)
        .arg(&img)
        .output()
        .expect("run gzip");
    assert!(
        out.status.success(),
        "gzip -dc {}: {}",
        gz.display(),
        describe(&out)
    );
    img
}

/// What the kernel's helper printed: path -> name -> (length, FNV-1a).
type Sums = BTreeMap<String, BTreeMap<String, (usize, u32)>>;

fn kernel_sums(name: &str) -> Sums {
    let text = std::fs::read_to_string(fixture_dir().join(format!("{name}.sums")))
        .expect("the fixture's sums");
    let mut sums = Sums::new();
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(w.len(), 5, "sums line {l:?}");
        sums.entry(w[1].to_string()).or_default().insert(
            w[2].to_string(),
            (
                w[3].parse().expect("length"),
                u32::from_str_radix(w[4], 16).expect("hash"),
            ),
        );
    }
    sums
}

fn fnv1a(b: &[u8]) -> u32 {
    b.iter().fold(2_166_136_261u32, |h, &c| {
        (h ^ u32::from(c)).wrapping_mul(16_777_619)
    })
}

fn debugfs(img: &Path, req: &str) -> Output {
    cmd(DEBUGFS)
        .arg("-R")
        .arg(req)
        .arg(img)
        .output()
        .expect("run debugfs-mmp")
}

fn debugfs_json(img: &Path, req: &str) -> Value {
    let out = cmd(DEBUGFS)
        .arg("--json")
        .arg("-R")
        .arg(req)
        .arg(img)
        .output()
        .expect("run debugfs-mmp");
    assert!(
        out.status.success(),
        "debugfs-mmp -R '{req}': {}",
        describe(&out)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Every attribute of each path as our debugfs reads it: name -> (length,
/// FNV-1a of the value).
fn our_sums(img: &Path) -> Sums {
    PATHS
        .iter()
        .map(|p| {
            let j = debugfs_json(img, &format!("xattr /{p}"));
            let attrs = j["attributes"]
                .as_array()
                .expect("attributes")
                .iter()
                .map(|a| {
                    let hex = a["value_hex"].as_str().expect("value_hex");
                    let v: Vec<u8> = (0..hex.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                        .collect();
                    (
                        a["name"].as_str().expect("name").to_string(),
                        (v.len(), fnv1a(&v)),
                    )
                })
                .collect();
            (p.to_string(), attrs)
        })
        .collect()
}

/// Our fsck `-f ARGS --json IMG`: exit code and the finding codes.
fn fsck(img: &Path, args: &[&str]) -> (Option<i32>, Vec<String>) {
    common::fsck_json_codes(FSCK, img, args)
}

/// fsck.ocfs2 -fn on a copy without MMP in `dir`.
fn theirs(img: &Path, dir: &Path) -> (Option<i32>, Vec<String>) {
    common::fsck_ocfs2_codes(img, &dir.join("theirs.img"))
}

#[test]
fn kernel_attributes_read_back_and_check_clean() {
    let tmp = scratch("xattr-clean-");
    for name in FIXTURES {
        let img = unpack(name, tmp.path());
        assert_eq!(
            fsck(&img, &["-n"]),
            (Some(0), vec![]),
            "{name}: our fsck -fn"
        );
        assert_eq!(
            theirs(&img, tmp.path()),
            (Some(0), vec![]),
            "{name}: fsck.ocfs2 -fn"
        );
        assert_eq!(
            our_sums(&img),
            kernel_sums(name),
            "{name}: values read back"
        );
        // The summary is debugfs.ocfs2's, line for line.
        let copy = tmp.path().join("plain.img");
        copy_without_mmp(&img, &copy);
        for p in PATHS {
            let req = format!("xattr /{p}");
            let ours = debugfs(&img, &req);
            let them = cmd(find_tool("debugfs.ocfs2", "ocfs2-tools"))
                .arg("-R")
                .arg(&req)
                .arg(&copy)
                .output()
                .expect("run debugfs.ocfs2");
            assert_eq!(
                String::from_utf8_lossy(&ours.stdout),
                String::from_utf8_lossy(&them.stdout),
                "{name}: {req}"
            );
        }
    }
}

/// Where the attributes of one storage start on the volume: the byte
/// offset of its header, its size, and whether it is a bucket.
struct Area {
    at: u64,
    len: usize,
}

/// The storages of `path`: the inline area (if any), then the block's
/// header or the first bucket of its index.
fn areas(img: &Path, path: &str) -> Vec<Area> {
    let st = debugfs_json(img, &format!("stat /{path}"));
    let stats = debugfs_json(img, "stats");
    let bs = stats["block_size"].as_u64().expect("block_size");
    let ino = st["inode"].as_u64().expect("inode");
    let mut out = Vec::new();
    let inline = st["xattr_inline_size"].as_u64().expect("xattr_inline_size");
    if inline > 0 {
        out.push(Area {
            at: ino * bs + bs - inline,
            len: inline as usize,
        });
    }
    let loc = st["xattr_loc"].as_u64().expect("xattr_loc");
    if loc != 0 {
        let raw = std::fs::read(img).expect("read the image");
        let xb = &raw[(loc * bs) as usize..][..bs as usize];
        if u16::from_le_bytes([xb[block::FLAGS], xb[block::FLAGS + 1]]) & xattr::INDEXED == 0 {
            out.push(Area {
                at: loc * bs + block::ATTRS as u64,
                len: bs as usize - block::ATTRS,
            });
        } else {
            // The first record of the index (depth 0 on these volumes).
            let rec = block::TREE_LIST + 16;
            let first = u64::from_le_bytes(xb[rec + 8..rec + 16].try_into().unwrap());
            out.push(Area {
                at: first * bs,
                len: xattr::BUCKET_SIZE,
            });
        }
    }
    out
}

fn read_at(img: &Path, at: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0u8; len];
    std::fs::File::open(img)
        .expect("open")
        .read_exact_at(&mut b, at)
        .expect("read");
    b
}

fn write_at(img: &Path, at: u64, b: &[u8]) {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(img)
        .expect("open")
        .write_all_at(b, at)
        .expect("write");
}

/// One kind of damage: the path, which of its storages, what is done to
/// the storage's bytes, the code both checkers give it (None: fsck.ocfs2
/// 1.8.7 does not see it), and how many attributes the repair removes.
struct Damage {
    what: &'static str,
    path: &'static str,
    area: usize,
    code: &'static str,
    fsck_ocfs2_sees: bool,
    removes: usize,
    change: fn(&mut [u8]),
}

fn entry(a: &[u8], i: usize) -> Entry {
    Entry::parse(&a[HEADER_SIZE + i * ENTRY_SIZE..][..ENTRY_SIZE])
}

fn set16(a: &mut [u8], o: usize, v: u16) {
    a[o..o + 2].copy_from_slice(&v.to_le_bytes());
}

const DAMAGE: &[Damage] = &[
    Damage {
        what: "a name hash in the inode",
        path: "d/small",
        area: 0,
        code: "XATTR_HASH_INVALID",
        fsck_ocfs2_sees: true,
        removes: 0,
        change: |a| a[HEADER_SIZE + ENTRY_SIZE] ^= 0x5a,
    },
    Damage {
        what: "an entry count past the block's entries",
        path: "d/block",
        area: 1,
        code: "XATTR_COUNT_INVALID",
        fsck_ocfs2_sees: true,
        removes: 0,
        change: |a| set16(a, header::COUNT, 40),
    },
    Damage {
        what: "a name offset past a bucket",
        path: "d/many",
        area: 1,
        code: "XATTR_NAME_OFFSET_INVALID",
        fsck_ocfs2_sees: true,
        removes: 1,
        change: |a| set16(a, HEADER_SIZE + 2 * ENTRY_SIZE + 4, 5000),
    },
    Damage {
        what: "a value beside its name said to be longer than 80 bytes",
        path: "d/small",
        area: 0,
        code: "XATTR_LOCATION_INVALID",
        fsck_ocfs2_sees: true,
        removes: 1,
        change: |a| a[HEADER_SIZE + 8] = 200,
    },
    Damage {
        what: "two entries over one name and value",
        path: "d/many",
        area: 0,
        code: "XATTR_VALUE_INVALID",
        fsck_ocfs2_sees: true,
        removes: 1,
        change: |a| {
            let first = entry(a, 0).name_offset;
            set16(a, HEADER_SIZE + ENTRY_SIZE + 4, first);
        },
    },
    Damage {
        what: "a first bucket that says more are in use than its run holds",
        path: "d/many",
        area: 1,
        code: "XATTR_BUCKET_COUNT_INVALID",
        fsck_ocfs2_sees: true,
        removes: 0,
        change: |a| set16(a, header::NUM_BUCKETS, 500),
    },
    Damage {
        what: "a bucket's free start",
        path: "d/bigmany",
        area: 1,
        code: "XATTR_FREE_START_INVALID",
        fsck_ocfs2_sees: true,
        removes: 0,
        change: |a| set16(a, header::FREE_START, 3000),
    },
    Damage {
        what: "a bucket's name and value length",
        path: "d/bigmany",
        area: 1,
        code: "XATTR_VALUE_LEN_INVALID",
        fsck_ocfs2_sees: true,
        removes: 0,
        change: |a| set16(a, header::NAME_VALUE_LEN, 7),
    },
    Damage {
        what: "a value root with room for more records than it holds",
        path: "d/big",
        area: 0,
        code: "EXTENT_LIST_COUNT",
        fsck_ocfs2_sees: true,
        removes: 0,
        change: |a| {
            let root = xattr::value_roots(a)[0];
            set16(a, root + xattr::VALUE_ROOT_LIST + 2, 14);
        },
    },
    Damage {
        what: "a value root that says more records are in use than it holds",
        path: "d/big",
        area: 0,
        code: "EXTENT_LIST_FREE",
        fsck_ocfs2_sees: true,
        removes: 0,
        change: |a| {
            let root = xattr::value_roots(a)[0];
            set16(a, root + xattr::VALUE_ROOT_LIST + 4, 6);
        },
    },
];

/// Each kind of damage, on both fixtures. On the metaecc one the damaged
/// storage also fails its block check (each change flips more than the one
/// bit the check's Hamming code mends), and the repair recomputes the check
/// with the storage it writes.
#[test]
fn attribute_damage_is_found_and_repaired() {
    let tmp = scratch("xattr-damage-");
    for name in FIXTURES {
        let base = unpack(name, tmp.path());
        let sums = kernel_sums(name);
        for d in DAMAGE {
            let img = tmp.path().join("c.img");
            std::fs::copy(&base, &img).expect("copy");
            let area = &areas(&img, d.path)[d.area];
            let mut bytes = read_at(&img, area.at, area.len);
            (d.change)(&mut bytes);
            write_at(&img, area.at, &bytes);
            let ctx = format!("{name}: {}", d.what);
            let (rc, codes) = fsck(&img, &["-n"]);
            assert_eq!(rc, Some(4), "{ctx}: our -fn: {codes:?}");
            assert!(
                codes.iter().any(|c| c == d.code),
                "{ctx}: our -fn: {codes:?}"
            );
            // Under metaecc fsck.ocfs2 stops at the failed check of a
            // damaged bucket (and calls it a bucket count).
            let (_, them) = theirs(&img, tmp.path());
            if !name.contains("ecc") {
                assert_eq!(
                    them.iter().any(|c| c == d.code),
                    d.fsck_ocfs2_sees,
                    "{ctx}: fsck.ocfs2 -fn: {them:?}"
                );
            }
            let (rc, _) = fsck(&img, &["-y"]);
            assert_eq!(rc, Some(1), "{ctx}: our -fy");
            assert_eq!(
                fsck(&img, &["-n"]),
                (Some(0), vec![]),
                "{ctx}: our -fn after -fy"
            );
            assert_eq!(
                theirs(&img, tmp.path()),
                (Some(0), vec![]),
                "{ctx}: fsck.ocfs2 -fn after our -fy"
            );
            // What the repair kept reads back as the kernel wrote it.
            let after = our_sums(&img);
            let mut removed = 0;
            for (p, attrs) in &sums {
                for (n, v) in attrs {
                    match after[p].get(n) {
                        Some(got) => assert_eq!(got, v, "{ctx}: {p} {n}"),
                        None => removed += 1,
                    }
                }
                assert!(
                    after[p].keys().all(|n| attrs.contains_key(n)),
                    "{ctx}: {p} has attributes the kernel did not write"
                );
            }
            assert_eq!(removed, d.removes, "{ctx}: attributes removed");
        }
    }
}

/// An attribute block that is not one: fsck.ocfs2 1.8.7 cannot read it and
/// says nothing; ours reports it, and the inode forgets the block (its
/// inline attributes stay).
#[test]
fn a_bad_attribute_block_is_forgotten() {
    let tmp = scratch("xattr-block-");
    let img = unpack("xattr-1k", tmp.path());
    let loc = debugfs_json(&img, "stat /d/block")["xattr_loc"]
        .as_u64()
        .expect("xattr_loc");
    write_at(&img, loc * 1024, b"NOTXATTR");
    let (rc, codes) = fsck(&img, &["-n"]);
    assert_eq!(
        (rc, codes),
        (Some(4), vec!["XATTR_BLOCK_INVALID".to_string()])
    );
    assert_eq!(fsck(&img, &["-y"]).0, Some(1));
    assert_eq!(fsck(&img, &["-n"]), (Some(0), vec![]));
    assert_eq!(theirs(&img, tmp.path()), (Some(0), vec![]));
    let j = debugfs_json(&img, "xattr /d/block");
    assert_eq!(j["total"], 3, "the inline attributes stay: {j}");
    assert_eq!(debugfs_json(&img, "stat /d/block")["xattr_loc"], 0);
}

/// metaecc on (issue 13) gives attribute blocks and buckets their checks
/// too (tunefs.ocfs2 1.8.7 leaves them out, and the kernel then fails to
/// read them: EIO): both checkers are clean, ours reading every block under
/// metaecc, and every value reads back as the kernel wrote it.
#[test]
fn metaecc_on_checks_attribute_blocks_and_buckets() {
    let tmp = scratch("xattr-ecc-");
    let img = unpack("xattr-1k", tmp.path());
    let out = cmd(env!("CARGO_BIN_EXE_tunefs-ocfs2-mmp"))
        .args(["-y", "--fs-features=metaecc"])
        .arg(&img)
        .output()
        .expect("run tunefs");
    assert!(out.status.success(), "tunefs metaecc: {}", describe(&out));
    let stats = debugfs_json(&img, "stats");
    assert!(
        stats.to_string().contains("metaecc"),
        "metaecc not on: {stats}"
    );
    assert_eq!(fsck(&img, &["-n"]), (Some(0), vec![]), "our fsck -fn");
    assert_eq!(
        theirs(&img, tmp.path()),
        (Some(0), vec![]),
        "fsck.ocfs2 -fn"
    );
    assert_eq!(our_sums(&img), kernel_sums("xattr-1k"), "values read back");
    // A bucket's check is over the whole bucket: one changed byte fails it.
    let area = &areas(&img, "d/many")[1];
    let mut b = read_at(&img, area.at, area.len);
    b[area.len - 1] ^= 0x55;
    b[area.len - 2] ^= 0x55;
    write_at(&img, area.at, &b);
    let (rc, codes) = fsck(&img, &["-n"]);
    assert_eq!((rc, codes), (Some(4), vec!["BLOCK_CHECK".to_string()]));
}
