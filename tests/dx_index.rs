//! Directory indexes (issue 12): on volumes whose /big directory has an
//! index with leaf clusters (built by tunefs.ocfs2-mmp's indexed-dirs),
//! each kind of index damage is found (and by fsck.ocfs2 where it finds
//! it), `-y` builds the index again, both checkers are then clean, and the
//! kernel's lookup of every name leads to it (`dxtree::misses`).

mod common;

use common::edit::{new_inode, open_ro, open_rw, Body};
use common::{cmd, find_tool, mkfs_ocfs2_made, scratch, sparse_file, MIB};
use ocfs2_format::blockcheck::{self, CheckAt};
use ocfs2_format::dxtree;
use ocfs2_format::Volume;
use std::path::{Path, PathBuf};

const FSCK: &str = env!("CARGO_BIN_EXE_fsck-ocfs2-mmp");
const TUNEFS: &str = env!("CARGO_BIN_EXE_tunefs-ocfs2-mmp");
const NAMES: usize = 600;

/// A volume (`bs`, `cs`, more features) whose /big names one file 600
/// times, indexed by our tunefs.
fn indexed_volume(dir: &Path, bs: u32, cs: u32, features: &str) -> PathBuf {
    let img = dir.join(format!("base-{bs}-{cs}.img"));
    sparse_file(&img, 256 * MIB);
    let out = cmd(find_tool("mkfs.ocfs2", "ocfs2-tools"))
        .args(["-F", "-b", &bs.to_string(), "-C", &cs.to_string()])
        .args(["-N", "2", "-M", "local", "-J", "size=4M"])
        .arg(format!(
            "--fs-features=noinline-data,noindexed-dirs{features}"
        ))
        .arg(&img)
        .output()
        .expect("run mkfs.ocfs2");
    assert!(
        mkfs_ocfs2_made(&out, true),
        "mkfs.ocfs2: {}",
        common::show(&out)
    );
    {
        let vol = open_rw(&img);
        let root = vol.root_blkno();
        let big =
            ocfs2_format::link::make_subdir(&vol, 0, root, b"big", &|_| true).expect("make /big");
        let file = new_inode(&vol, 0o100644, NAMES as u16, Body::Extents(1, 10));
        for k in 0..NAMES {
            ocfs2_format::link::insert_entry(&vol, big, format!("name-{k}").as_bytes(), file, 1)
                .expect("name the file");
        }
    }
    let out = cmd(TUNEFS)
        .args(["-y", "--fs-features=indexed-dirs"])
        .arg(&img)
        .output()
        .expect("run tunefs");
    assert!(
        out.status.success(),
        "tunefs indexed-dirs: {}",
        common::show(&out)
    );
    assert_eq!(ours(&img, "-n"), (Some(0), vec![]), "the indexed volume");
    img
}

/// Our fsck `-f FLAG --json`: exit code and finding codes.
fn ours(img: &Path, flag: &str) -> (Option<i32>, Vec<String>) {
    common::fsck_json_codes(FSCK, img, &[flag])
}

/// fsck.ocfs2 -fn's codes on a copy (no MMP on these volumes, copied all
/// the same).
fn theirs(img: &Path) -> (Option<i32>, Vec<String>) {
    common::fsck_ocfs2_codes(img, &img.with_extension("theirs"))
}

fn big(vol: &Volume) -> ocfs2_format::Inode {
    vol.read_inode(vol.resolve_path("/big").expect("/big"))
        .expect("read /big")
}

/// Change block `blkno` (its check recomputed when `at` is given and the
/// volume has metaecc).
fn poke(img: &Path, blkno: u64, at: Option<CheckAt>, f: impl FnOnce(&mut [u8])) {
    let vol = open_rw(img);
    let mut b = vol.read_block(blkno).expect("read");
    f(&mut b);
    if let (Some(at), true) = (at, vol.meta_ecc()) {
        blockcheck::update(&mut b, at);
    }
    vol.write_block(blkno, &b).expect("write");
}

struct Case {
    what: &'static str,
    ours: &'static str,
    /// What fsck.ocfs2 1.8.7 reports (None: nothing).
    theirs: Option<&'static str>,
    damage: fn(&Path),
}

/// A leaf of /big's index holding three entries or more (the hash seeds
/// are random: which leaves fill up varies).
fn first_leaf(img: &Path) -> u64 {
    let vol = open_ro(img);
    let read = dxtree::entries(&vol, &big(&vol)).expect("index");
    assert!(
        read.runs.len() >= 2,
        "/big has {} leaf clusters",
        read.runs.len()
    );
    let mut leaves: Vec<u64> = read.entries.iter().map(|e| e.1).collect();
    leaves.sort_unstable();
    leaves
        .chunk_by(|a, b| a == b)
        .find(|c| c.len() >= 3)
        .map(|c| c[0])
        .expect("a leaf with three entries")
}

const CASES: &[Case] = &[
    Case {
        what: "a leaf forgets its last entry",
        ours: "DX_LOOKUP_FAILED",
        theirs: Some("DX_LOOKUP_FAILED"),
        damage: |img| {
            let leaf = first_leaf(img);
            poke(img, leaf, Some(CheckAt::DxBlock), |b| {
                let o = dxtree::LEAF_LIST + 6;
                let n = u16::from_le_bytes([b[o], b[o + 1]]);
                b[o..o + 2].copy_from_slice(&(n - 1).to_le_bytes());
            });
        },
    },
    Case {
        what: "an entry's major hash",
        ours: "DX_LOOKUP_FAILED",
        theirs: Some("DX_LOOKUP_FAILED"),
        damage: |img| {
            let leaf = first_leaf(img);
            // The leaf's last entry (its first ones may be '.' and '..',
            // which fsck.ocfs2 does not look up).
            poke(img, leaf, Some(CheckAt::DxBlock), |b| {
                let n = usize::from(u16::from_le_bytes([
                    b[dxtree::LEAF_LIST + 6],
                    b[dxtree::LEAF_LIST + 7],
                ]));
                let o = dxtree::LEAF_LIST + 8 + (n - 1) * 16;
                b[o..o + 4].copy_from_slice(&0x1234_5678u32.to_le_bytes());
            });
        },
    },
    Case {
        what: "a leaf that is not one",
        ours: "DX_TREE_CORRUPT",
        theirs: Some("DX_LOOKUP_FAILED"),
        damage: |img| {
            let leaf = first_leaf(img);
            poke(img, leaf, Some(CheckAt::DxBlock), |b| b[0] = b'X');
        },
    },
    Case {
        what: "a root that names another directory",
        ours: "DX_ROOT",
        theirs: None,
        damage: |img| {
            let vol = open_ro(img);
            let root = big(&vol).di().i_dx_root.get();
            drop(vol);
            poke(img, root, Some(CheckAt::DxBlock), |b| {
                b[0x30..0x38].copy_from_slice(&12u64.to_le_bytes());
            });
        },
    },
    Case {
        what: "an index on a volume without the feature",
        ours: "IV_DX_TREE",
        theirs: Some("IV_DX_TREE"),
        damage: |img| {
            let vol = open_rw(img);
            let mut sb = *vol.sb();
            let bit = ocfs2_format::features::incompat::INDEXED_DIRS;
            sb.s_feature_incompat
                .set(sb.s_feature_incompat.get() & !bit);
            vol.write_super_everywhere(&sb)
                .expect("write the superblock");
        },
    },
];

#[test]
fn index_damage_is_found_and_the_index_built_again() {
    let tmp = scratch("dx-index-");
    for (bs, cs, features) in [(4096, 4096, ""), (2048, 8192, ",metaecc")] {
        let base = indexed_volume(tmp.path(), bs, cs, features);
        for c in CASES {
            let img = tmp.path().join("c.img");
            std::fs::copy(&base, &img).expect("copy");
            (c.damage)(&img);
            let ctx = format!("{bs}/{cs}{features}: {}", c.what);
            let (rc, codes) = ours(&img, "-n");
            assert_eq!(rc, Some(4), "{ctx}: our -fn: {codes:?}");
            assert!(
                codes.iter().any(|x| x == c.ours),
                "{ctx}: our -fn: {codes:?}"
            );
            let (_, them) = theirs(&img);
            match c.theirs {
                Some(code) => assert!(
                    them.iter().any(|x| x == code),
                    "{ctx}: fsck.ocfs2: {them:?}"
                ),
                None => assert!(them.is_empty(), "{ctx}: fsck.ocfs2: {them:?}"),
            }
            let (rc, _) = ours(&img, "-y");
            assert_eq!(rc, Some(1), "{ctx}: our -fy");
            assert_eq!(
                ours(&img, "-n"),
                (Some(0), vec![]),
                "{ctx}: our -fn after -fy"
            );
            assert_eq!(
                theirs(&img),
                (Some(0), vec![]),
                "{ctx}: fsck.ocfs2 after our -fy"
            );
            let vol = open_ro(&img);
            let dir = big(&vol);
            let indexed = vol
                .features()
                .has_incompat(ocfs2_format::features::incompat::INDEXED_DIRS);
            if indexed {
                let read = dxtree::entries(&vol, &dir).expect("the index built again");
                assert_eq!(read.entries.len(), NAMES + 2, "{ctx}: index entries");
                assert_eq!(
                    dxtree::misses(&vol, &dir, &read).unwrap(),
                    Vec::<String>::new(),
                    "{ctx}"
                );
            }
            assert_eq!(
                vol.dir_entries(&dir).unwrap().len(),
                NAMES + 2,
                "{ctx}: names"
            );
        }
    }
}

/// A name added to a directory whose index has leaves (fsck's reconnect
/// into lost+found goes this way): the index is built again with it, and
/// both checkers are clean.
#[test]
fn a_name_added_to_an_indexed_directory_is_found() {
    let tmp = scratch("dx-add-");
    let img = indexed_volume(tmp.path(), 4096, 4096, "");
    {
        let vol = open_rw(&img);
        let dir = big(&vol).blkno;
        let file = new_inode(&vol, 0o100644, 5, Body::Extents(1, 10));
        for k in 0..5 {
            ocfs2_format::link::insert_entry(&vol, dir, format!("added-{k}").as_bytes(), file, 1)
                .expect("add a name");
        }
    }
    assert_eq!(ours(&img, "-n"), (Some(0), vec![]));
    assert_eq!(theirs(&img), (Some(0), vec![]));
    let vol = open_ro(&img);
    let dir = big(&vol);
    let read = dxtree::entries(&vol, &dir).expect("index");
    assert_eq!(read.entries.len(), NAMES + 2 + 5);
    assert_eq!(
        dxtree::misses(&vol, &dir, &read).unwrap(),
        Vec::<String>::new()
    );
}

/// Directories without an index on volumes with indexed-dirs, as
/// mkfs.ocfs2 1.8.7 leaves its system directory and as directories made
/// before the feature are: not damage for ours (`-n` exits 0, the finding
/// says `damage: false`), DX_TREE_MISSING for fsck.ocfs2; our `-y` builds
/// the indexes, then both checkers are clean, every name is still there and
/// the kernel's lookup of each leads to it.
#[test]
fn a_directory_without_an_index_gets_one_from_y() {
    let tmp = scratch("dx-missing-");
    for (bs, features) in [(512, ""), (4096, ",noinline-data"), (1024, ",metaecc")] {
        let ctx = format!("-b {bs}{features}");
        let img = tmp.path().join(format!("m-{bs}.img"));
        sparse_file(&img, 256 * MIB);
        let out = cmd(find_tool("mkfs.ocfs2", "ocfs2-tools"))
            .args(["-F", "-b", &bs.to_string(), "-C", "4096", "-N", "4"])
            .args(["-M", "local", "-J", "size=4M"])
            .arg(format!("--fs-features=indexed-dirs{features}"))
            .arg(&img)
            .output()
            .expect("run mkfs.ocfs2");
        assert!(mkfs_ocfs2_made(&out, true), "{ctx}: {}", common::show(&out));
        // /big, a block directory with leaf-sized content and no index.
        {
            let vol = open_rw(&img);
            let root = vol.root_blkno();
            let big = ocfs2_format::link::make_subdir(&vol, 0, root, b"big", &|_| true)
                .expect("make /big");
            let file = new_inode(&vol, 0o100644, NAMES as u16, Body::Extents(1, 10));
            for k in 0..NAMES {
                ocfs2_format::link::insert_entry(
                    &vol,
                    big,
                    format!("name-{k}").as_bytes(),
                    file,
                    1,
                )
                .expect("name the file");
            }
            // As a directory made before indexed-dirs was turned on.
            dxtree::drop(&vol, big).expect("take /big's index away");
        }
        let unindexed = |img: &Path| -> Vec<(u64, usize)> {
            let vol = open_ro(img);
            let mut dirs = vec![vol.system_dir_blkno(), vol.root_blkno(), big(&vol).blkno];
            dirs.retain(|&d| {
                let ino = vol.read_inode(d).expect("dir");
                !ino.is_inline()
                    && ino.dyn_features() & ocfs2_format::ondisk::dyn_features::INDEXED_DIR == 0
            });
            dirs.iter()
                .map(|&d| {
                    (
                        d,
                        vol.dir_entries(&vol.read_inode(d).unwrap()).unwrap().len(),
                    )
                })
                .collect()
        };
        let before = unindexed(&img);
        assert!(
            before.iter().any(|&(d, _)| d == big(&open_ro(&img)).blkno),
            "{ctx}: directories without an index: {before:?}"
        );
        // Ours: offered, not damage.
        let (rc, j) = ours_json(&img, "-fn");
        assert_eq!(rc, Some(0), "{ctx}: our -fn: {j}");
        let found = j["findings"].as_array().expect("findings");
        assert_eq!(
            found.len(),
            before.len(),
            "{ctx}: one offer per directory: {j}"
        );
        for f in found {
            assert_eq!(f["code"], "DX_TREE_MISSING", "{ctx}: {f}");
            assert_eq!(f["damage"], false, "{ctx}: {f}");
            assert_eq!(f["fixed"], false, "{ctx}: {f}");
        }
        // fsck.ocfs2 reports it.
        let copy = img.with_extension("copy");
        let out = theirs_on_copy(&img, &copy);
        let said = String::from_utf8_lossy(&out.stdout)
            .matches("[DX_TREE_MISSING]")
            .count();
        assert!(said >= 1, "{ctx}: fsck.ocfs2: {}", common::show(&out));
        // -p leaves it and exits 0.
        let out = cmd(FSCK).args(["-fp"]).arg(&copy).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{ctx}: -p: {}",
            common::show(&out)
        );
        let _ = std::fs::remove_file(&copy);
        // -y builds the indexes.
        let (rc, j) = ours_json(&img, "-fy");
        assert_eq!(rc, Some(1), "{ctx}: our -fy: {j}");
        let made = j["findings"].as_array().expect("findings");
        assert!(
            made.len() == before.len()
                && made
                    .iter()
                    .all(|f| f["code"] == "DX_TREE_MISSING" && f["fixed"] == true),
            "{ctx}: our -fy: {j}"
        );
        assert_eq!(
            ours(&img, "-n"),
            (Some(0), vec![]),
            "{ctx}: our -fn after -fy"
        );
        let copy = img.with_extension("theirs");
        let out = theirs_on_copy(&img, &copy);
        let _ = std::fs::remove_file(&copy);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.code() == Some(0) && !stdout.lines().any(|l| l.starts_with('[')),
            "{ctx}: fsck.ocfs2 after our -fy: {}",
            common::show(&out)
        );
        assert_eq!(unindexed(&img), vec![], "{ctx}: every directory indexed");
        let vol = open_ro(&img);
        for (d, names) in before {
            let dir = vol.read_inode(d).expect("dir");
            let read = dxtree::entries(&vol, &dir).expect("the index built");
            assert_eq!(
                read.entries.len(),
                names,
                "{ctx}: directory {d}: index entries"
            );
            assert_eq!(
                dxtree::misses(&vol, &dir, &read).unwrap(),
                Vec::<String>::new(),
                "{ctx}: directory {d}"
            );
            assert_eq!(
                vol.dir_entries(&dir).unwrap().len(),
                names,
                "{ctx}: directory {d}: names"
            );
        }
        let _ = std::fs::remove_file(&img);
    }
}

/// Our fsck `FLAGS --json` on `img`: exit code and the JSON object.
fn ours_json(img: &Path, flags: &str) -> (Option<i32>, serde_json::Value) {
    let out = cmd(FSCK)
        .args([flags, "--json"])
        .arg(img)
        .output()
        .expect("run fsck");
    let j = serde_json::from_slice(&out.stdout).expect("one JSON object");
    (out.status.code(), j)
}

/// fsck.ocfs2 -fn on `copy`, a copy of `img` made first (left for the
/// caller).
fn theirs_on_copy(img: &Path, copy: &Path) -> std::process::Output {
    std::fs::copy(img, copy).expect("copy");
    cmd(find_tool("fsck.ocfs2", "ocfs2-tools"))
        .arg("-fn")
        .arg(copy)
        .output()
        .expect("run fsck.ocfs2")
}
