//! Journal replay by `fsck.ocfs2-mmp` (issue 12), on volumes made by
//! `mkfs.ocfs2` and by our mkfs with MMP, whose slot 0 journal gets a jbd2
//! log written here, block by block, the way jbd2 lays it out: descriptor
//! blocks with escaped copies, revoke blocks, commit blocks, a log that
//! wraps past the end of the journal and transaction ids that wrap past
//! 2^32, and a transaction that never committed.
//!
//! Judged against `fsck.ocfs2 -fy` replaying the same log on a copy (the
//! blocks both replays write must be identical), `fsck.ocfs2 -fn` on our
//! result, and our own `-n` (which must see the replayed volume without
//! writing a byte). The kernel's own replay is judged in `make interop`.

mod common;

use common::*;
use ocfs2_format::blockcheck::{self, CheckAt};
use ocfs2_format::{OpenMode, Volume};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const FSCK: &str = env!("CARGO_BIN_EXE_fsck-ocfs2-mmp");
const MKFS: &str = env!("CARGO_BIN_EXE_mkfs-ocfs2-mmp");
const MAGIC: u32 = 0xC03B_3998;

fn oracle(name: &str) -> PathBuf {
    find_tool(name, "ocfs2-tools")
}

/// A 128 MiB volume: `mkfs.ocfs2` when `mmp` is false, else ours with MMP.
fn volume(dir: &Path, name: &str, mmp: bool, extra: &[&str]) -> PathBuf {
    let img = dir.join(name);
    sparse_file(&img, 128 * MIB);
    let out = if mmp {
        cmd(MKFS)
            .args([
                "-q", "-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M", "-M", "local",
            ])
            .arg("--fs-features=mmp")
            .args(extra)
            .arg(&img)
            .output()
    } else {
        cmd(oracle("mkfs.ocfs2"))
            .args([
                "-q", "-F", "-b", "4096", "-C", "4096", "-N", "2", "-J", "size=4M", "-M", "local",
            ])
            .args(extra)
            .arg(&img)
            .output()
    }
    .expect("run mkfs");
    assert!(out.status.success(), "mkfs: {}", show(&out));
    img
}

fn open(img: &Path) -> Volume {
    ocfs2_format::open_volume(
        img.to_str().unwrap(),
        OpenMode {
            write: false,
            exclusive: false,
        },
    )
    .expect("open volume")
    .1
}

fn be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// Writes a jbd2 log into slot 0's journal and marks it dirty.
struct LogWriter {
    file: std::fs::File,
    bs: usize,
    /// Journal block -> device block.
    phys: Vec<u64>,
    first: u32,
    last: u32,
    tag64: bool,
    uuid: [u8; 16],
    jsb: Vec<u8>,
    jsb_at: u64,
    inode_at: u64,
    meta_ecc: bool,
    pos: u32,
    start: u32,
}

impl LogWriter {
    /// Start the log at `start_back` blocks before the end of the log (so
    /// that it wraps) with first transaction id `tid`.
    fn new(img: &Path, start_back: u32, tid: u32) -> LogWriter {
        let vol = open(img);
        let bs = vol.block_size() as usize;
        let jblk = vol.system_inode("journal:0000").unwrap();
        let ino = vol.read_inode(jblk).unwrap();
        let ext = vol.extents(&ino).unwrap();
        let n = ino.size() / bs as u64;
        let phys: Vec<u64> = (0..n).map(|i| vol.map_block(&ext, i).unwrap()).collect();
        let jsb = vol.read_block(phys[0]).unwrap();
        let g = |at: usize| u32::from_be_bytes(jsb[at..at + 4].try_into().unwrap());
        assert_eq!(g(0), MAGIC, "journal superblock");
        let (first, last) = (g(0x14), g(0x10));
        let tag64 = g(0x28) & 0x2 != 0;
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&jsb[0x30..0x40]);
        let start = last - start_back;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(img)
            .unwrap();
        let mut w = LogWriter {
            file,
            bs,
            jsb_at: phys[0] * bs as u64,
            phys,
            first,
            last,
            tag64,
            uuid,
            jsb,
            inode_at: jblk * bs as u64,
            meta_ecc: vol.meta_ecc(),
            pos: start,
            start,
        };
        w.jsb[0x18..0x1C].copy_from_slice(&be(tid));
        w
    }

    fn put(&mut self, block: &[u8]) -> u32 {
        let at = self.pos;
        self.file
            .write_all_at(block, self.phys[at as usize] * self.bs as u64)
            .unwrap();
        self.pos += 1;
        if self.pos >= self.last {
            self.pos = self.first;
        }
        at
    }

    fn header(&self, kind: u32, tid: u32) -> Vec<u8> {
        let mut b = vec![0u8; self.bs];
        b[0..4].copy_from_slice(&be(MAGIC));
        b[4..8].copy_from_slice(&be(kind));
        b[8..12].copy_from_slice(&be(tid));
        b
    }

    /// A descriptor and its data blocks: (target, contents). A copy whose
    /// first four bytes are the magic is escaped, as jbd2 escapes it.
    fn descriptor(&mut self, tid: u32, blocks: &[(u64, Vec<u8>)]) {
        let mut d = self.header(1, tid);
        let mut at = 12;
        let tag = if self.tag64 { 12 } else { 8 };
        for (i, (target, _)) in blocks.iter().enumerate() {
            let data = &blocks[i].1;
            let mut flags = 0u16;
            if data[..4] == be(MAGIC) {
                flags |= 0x1;
            }
            if i > 0 {
                flags |= 0x2;
            }
            if i + 1 == blocks.len() {
                flags |= 0x8;
            }
            d[at..at + 4].copy_from_slice(&be(*target as u32));
            d[at + 6..at + 8].copy_from_slice(&flags.to_be_bytes());
            if self.tag64 {
                d[at + 8..at + 12].copy_from_slice(&be((*target >> 32) as u32));
            }
            at += tag;
            if i == 0 {
                d[at..at + 16].copy_from_slice(&self.uuid);
                at += 16;
            }
        }
        self.put(&d);
        for (_, data) in blocks {
            let mut copy = data.clone();
            if copy[..4] == be(MAGIC) {
                copy[..4].fill(0);
            }
            self.put(&copy);
        }
    }

    fn revoke(&mut self, tid: u32, blocks: &[u64]) {
        let mut r = self.header(5, tid);
        let size = if self.tag64 { 8 } else { 4 };
        let mut at = 16;
        for &b in blocks {
            if self.tag64 {
                r[at..at + 8].copy_from_slice(&b.to_be_bytes());
            } else {
                r[at..at + 4].copy_from_slice(&be(b as u32));
            }
            at += size;
        }
        r[12..16].copy_from_slice(&be(at as u32));
        self.put(&r);
    }

    fn commit(&mut self, tid: u32) {
        let c = self.header(2, tid);
        self.put(&c);
    }

    /// End the log (a zeroed block stops the walk), point the journal
    /// superblock at it and mark the journal inode dirty.
    fn finish(mut self) {
        let zero = vec![0u8; self.bs];
        self.put(&zero);
        self.jsb[0x1C..0x20].copy_from_slice(&be(self.start));
        self.file.write_all_at(&self.jsb, self.jsb_at).unwrap();
        let mut ino = vec![0u8; self.bs];
        self.file.read_exact_at(&mut ino, self.inode_at).unwrap();
        ino[0xB8] |= 1;
        if self.meta_ecc {
            blockcheck::update(&mut ino, CheckAt::Inode);
        }
        self.file.write_all_at(&ino, self.inode_at).unwrap();
        self.file.sync_all().unwrap();
    }
}

fn block_of(img: &Path, blkno: u64, bs: usize) -> Vec<u8> {
    let f = std::fs::File::open(img).unwrap();
    let mut b = vec![0u8; bs];
    f.read_exact_at(&mut b, blkno * bs as u64).unwrap();
    b
}

fn fill(bs: usize, seed: u8) -> Vec<u8> {
    (0..bs)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// The log every replay test writes. Returns the blocks whose replayed
/// contents are judged: (block, what it must hold after the replay).
struct Scenario {
    judged: Vec<(u64, Vec<u8>)>,
    root: u64,
    bs: usize,
}

/// Transaction ids start at 0xFFFF_FFFE (so they wrap to 0 and 1) and the
/// log starts two blocks before the end of the journal (so it wraps too):
/// - T1: X <- A, Y <- a block that begins with the jbd2 magic (escaped),
///   root inode <- a copy with a new mtime;
/// - T2: revokes Y (and W, never logged), then X <- B;
/// - T3: X <- C, Y <- D (after the revoke: replayed), committed;
/// - T4: Z <- E, never committed (dropped).
///
/// With `damage_root` the root inode on disk is damaged (i_blkno wrong):
/// only the replayed copy is right. With `for_oracle`, T3 leaves Y alone:
/// fsck.ocfs2 1.8.7 loops forever looking up a block revoked by an older
/// transaction than the one logging it again (its revoke_this_block never
/// advances past such a record), so the log it is shown cannot do that.
fn write_log(img: &Path, damage_root: bool, for_oracle: bool) -> Scenario {
    let vol = open(img);
    let bs = vol.block_size() as usize;
    let end = vol.device_blocks();
    let (x, y, z, w) = (end - 10, end - 11, end - 12, end - 13);
    let root = vol.root_blkno();
    let mut root_new = vol.read_block(root).unwrap();
    root_new[0x40..0x48].copy_from_slice(&1_900_000_000u64.to_le_bytes());
    if vol.meta_ecc() {
        blockcheck::update(&mut root_new, CheckAt::Inode);
    }
    drop(vol);
    let mut magic_block = fill(bs, 3);
    magic_block[..4].copy_from_slice(&be(MAGIC));
    let (a, b, c, d, e) = (
        fill(bs, 10),
        fill(bs, 20),
        fill(bs, 30),
        fill(bs, 40),
        fill(bs, 50),
    );
    let mut log = LogWriter::new(img, 2, 0xFFFF_FFFE);
    log.descriptor(
        0xFFFF_FFFE,
        &[(x, a), (y, magic_block), (root, root_new.clone())],
    );
    log.commit(0xFFFF_FFFE);
    log.revoke(0xFFFF_FFFF, &[y, w]);
    log.descriptor(0xFFFF_FFFF, &[(x, b)]);
    log.commit(0xFFFF_FFFF);
    if for_oracle {
        log.descriptor(0, &[(x, c.clone())]);
    } else {
        log.descriptor(0, &[(x, c.clone()), (y, d.clone())]);
    }
    log.commit(0);
    log.descriptor(1, &[(z, e)]);
    log.finish();
    if damage_root {
        let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
        let mut bad = root_new.clone();
        bad[0x50..0x58].copy_from_slice(&(root + 1).to_le_bytes());
        if open(img).meta_ecc() {
            blockcheck::update(&mut bad, CheckAt::Inode);
        }
        f.write_all_at(&bad, root * bs as u64).unwrap();
    }
    let z_before = block_of(img, z, bs);
    // Revoked in T2 and not logged again: Y keeps what it held.
    let y_after = if for_oracle { block_of(img, y, bs) } else { d };
    Scenario {
        judged: vec![(x, c), (y, y_after), (root, root_new), (z, z_before)],
        root,
        bs,
    }
}

fn fsck(img: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let out = cmd(FSCK)
        .args(args)
        .arg("--json")
        .arg(img)
        .output()
        .unwrap();
    let j = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), j, show(&out))
}

/// Run fsck on a terminal (`script` gives it a pty), typing `input`.
/// Returns the exit status, the JSON object it printed (if any) and all
/// it printed.
fn on_terminal(img: &Path, args: &[&str], input: &str) -> (Option<i32>, serde_json::Value, String) {
    use std::io::Write;
    let line = std::iter::once(FSCK)
        .chain(args.iter().copied())
        .chain(std::iter::once(img.to_str().unwrap()))
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = cmd(find_tool("script", "bsdutils"))
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let j = text
        .lines()
        // The questions (stderr) share the terminal's lines with stdout.
        .filter_map(|l| l.find('{').map(|i| l[i..].trim()))
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    (out.status.code(), j, show(&out))
}

fn codes(j: &serde_json::Value) -> Vec<String> {
    j["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["code"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// `fsck.ocfs2 ARGS IMG`, killed after two minutes (it loops forever on
/// some logs).
fn oracle_fsck(img: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = cmd("timeout")
        .arg("120")
        .arg(oracle("fsck.ocfs2"))
        .args(args)
        .arg(img)
        .output()
        .unwrap();
    (out.status.code(), show(&out))
}

fn md5(img: &Path) -> Vec<u8> {
    std::fs::read(img)
        .unwrap()
        .chunks(1 << 20)
        .flat_map(|c| crc32(c).to_le_bytes())
        .collect()
}

fn crc32(d: &[u8]) -> u32 {
    ocfs2_format::jbd2::crc32c_raw(!0, d)
}

#[test]
fn replay_writes_what_fsck_ocfs2_writes_and_leaves_a_clean_volume() {
    let dir = scratch("replay");
    let img = volume(dir.path(), "a.img", false, &[]);
    let s = write_log(&img, false, true);
    let theirs = dir.path().join("theirs.img");
    cp_sparse(&img, &theirs);

    // -n: the dirty journal and nothing else, not a byte written.
    let before = md5(&img);
    let (code, j, out) = fsck(&img, &["-n"]);
    assert_eq!(code, Some(4), "-n on a crashed, healthy volume: {out}");
    assert_eq!(codes(&j), ["JOURNAL_NEEDS_RECOVERY"], "{out}");
    assert_eq!(md5(&img), before, "-n wrote to the volume");

    let (code, j, out) = fsck(&img, &["-y"]);
    assert_eq!(code, Some(1), "-y replays and exits 1: {out}");
    assert_eq!(codes(&j), ["JOURNAL_NEEDS_RECOVERY"], "{out}");
    assert_eq!(j["findings"][0]["fixed"], true, "{out}");
    let msg = j["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("3 committed transaction(s), 2 block(s) replayed"),
        "{msg}"
    );
    assert!(msg.contains("transaction 1 never committed"), "{msg}");
    for (b, want) in &s.judged {
        assert!(
            block_of(&img, *b, s.bs) == *want,
            "block {b} after our replay is not what the log says"
        );
    }

    let (code, j, out) = fsck(&img, &["-n"]);
    assert_eq!(code, Some(0), "our -n after our replay: {out}");
    assert!(codes(&j).is_empty());
    let (code, out) = oracle_fsck(&img, &["-fn"]);
    assert_eq!(code, Some(0), "fsck.ocfs2 -fn after our replay: {out}");

    // fsck.ocfs2 replays the same log on the copy: the same blocks.
    // (fsck.ocfs2 1.8.7 then stops with exit 8 on this local volume: after
    // the replay it reopens the volume and asks for a cluster stack, "Unable
    // to access cluster service"; the replayed blocks are written by then.)
    let (code, out) = oracle_fsck(&theirs, &["-fy"]);
    assert!(
        out.contains("Slot 0's journal replayed successfully"),
        "fsck.ocfs2 -fy did not replay (status {code:?}): {out}"
    );
    for (b, _) in &s.judged {
        assert!(
            block_of(&img, *b, s.bs) == block_of(&theirs, *b, s.bs),
            "block {b}: our replay and fsck.ocfs2's differ"
        );
    }
    // The journal superblocks agree on the spent log: s_start 0 and the
    // next transaction id (2: the walk ended at the uncommitted 1).
    let (vo, vt) = (open(&img), open(&theirs));
    let jsb = |v: &Volume| {
        let ino = v
            .read_inode(v.system_inode("journal:0000").unwrap())
            .unwrap();
        let first = v.map_block(&v.extents(&ino).unwrap(), 0).unwrap();
        let b = v.read_block(first).unwrap();
        b[0x18..0x20].to_vec()
    };
    assert_eq!(
        jsb(&vo),
        jsb(&vt),
        "journal superblock (s_sequence, s_start)"
    );
    assert_eq!(jsb(&vo), [0, 0, 0, 2, 0, 0, 0, 0]);
    assert_eq!(s.root, vo.root_blkno());
}

#[test]
fn dash_n_checks_the_volume_as_the_replay_leaves_it() {
    let dir = scratch("replay-n");
    let img = volume(dir.path(), "n.img", false, &["--fs-features=metaecc"]);
    let s = write_log(&img, true, false);
    let before = md5(&img);
    // Asked on a terminal and told no, the replay does not happen: the
    // damaged root inode is a finding, and so is the dirty journal.
    let (code, j, out) = on_terminal(&img, &["--json"], "n\n");
    assert_eq!(code, Some(4), "{out}");
    assert!(
        out.contains("journal:0000 is dirty (a node died with it mounted): replay it? <y>"),
        "{out}"
    );
    assert!(
        codes(&j).iter().any(|c| c == "INODE_BLKNO"),
        "no replay: the damage shows: {out}"
    );
    assert!(
        codes(&j).iter().any(|c| c == "JOURNAL_NEEDS_RECOVERY"),
        "{out}"
    );
    assert_eq!(md5(&img), before, "declined, yet written");
    // ...with -n the passes see the replayed copy, and nothing is written.
    let (code, j, out) = fsck(&img, &["-n"]);
    assert_eq!(code, Some(4), "{out}");
    assert_eq!(codes(&j), ["JOURNAL_NEEDS_RECOVERY"], "{out}");
    assert_eq!(j["findings"][0]["fixed"], false, "{out}");
    assert_eq!(md5(&img), before, "-n wrote to the volume");
    // -p replays (safe without a person) and the volume is clean.
    let (code, _, out) = fsck(&img, &["-p"]);
    assert_eq!(code, Some(1), "{out}");
    for (b, want) in &s.judged {
        assert!(block_of(&img, *b, s.bs) == *want, "block {b} after -p");
    }
    let (code, _, out) = fsck(&img, &["-n"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = oracle_fsck(&img, &["-fn"]);
    assert_eq!(code, Some(0), "fsck.ocfs2 -fn after our replay: {out}");
}

#[test]
fn replay_on_an_mmp_volume_under_the_guard() {
    let dir = scratch("replay-mmp");
    let img = volume(dir.path(), "m.img", true, &["--mmp-update-interval=1"]);
    let s = write_log(&img, false, false);
    let crashed = std::fs::read(&img).unwrap();
    let undo = dir.path().join("m.undo");
    let (code, j, out) = fsck(&img, &["-y", "-z", undo.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(codes(&j), ["JOURNAL_NEEDS_RECOVERY"], "{out}");
    for (b, want) in &s.judged {
        assert!(block_of(&img, *b, s.bs) == *want, "block {b}");
    }
    // Slot 0 is given back as a clean unmount leaves it: the journal is clean.
    let vol = open(&img);
    assert_eq!(vol.read_slot_map().unwrap().slots[0].raw, 0);
    drop(vol);
    let (code, _, out) = fsck(&img, &["-n"]);
    assert_eq!(code, Some(0), "{out}");
    // --undo puts the crashed volume back (the slot map's MMP state aside:
    // it was 0 before and is 0 again).
    let after = std::fs::read(&img).unwrap();
    let (code, j, out) = fsck(&img, &["--undo", undo.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(j["restored_chunks"].as_u64().unwrap() >= 4, "{out}");
    assert!(
        std::fs::read(&img).unwrap() == crashed,
        "--undo did not give back the crashed volume"
    );
    // A volume that changed since the run is refused.
    std::fs::write(&img, &after).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&[0x5A], s.judged[0].0 * s.bs as u64 + 100)
        .unwrap();
    drop(f);
    let (code, _, out) = fsck(&img, &["--undo", undo.to_str().unwrap()]);
    assert_eq!(code, Some(8), "{out}");
    assert!(out.contains("changed since that run"), "{out}");
}

/// A descriptor whose tag points past the volume ends the log there: the
/// transactions before it are replayed, the damage is reported and the rest
/// of the log discarded with it (exit 1, the finding fixed), and the slot
/// is clean afterwards.
#[test]
fn a_damaged_log_replays_what_is_committed_before_the_damage() {
    let dir = scratch("replay-bad");
    let img = volume(dir.path(), "b.img", false, &[]);
    let vol = open(&img);
    let bs = vol.block_size() as usize;
    let end = vol.device_blocks();
    drop(vol);
    let a = fill(bs, 60);
    let mut log = LogWriter::new(&img, 40, 7);
    log.descriptor(7, &[(end - 20, a.clone())]);
    log.commit(7);
    log.descriptor(8, &[(end - 21, fill(bs, 61)), (end + 1000, fill(bs, 62))]);
    log.commit(8);
    log.finish();
    let before = block_of(&img, end - 21, bs);
    let (code, j, out) = fsck(&img, &["-y"]);
    assert_eq!(code, Some(1), "{out}");
    let c = codes(&j);
    assert!(c.contains(&"JOURNAL_DAMAGED".to_string()), "{out}");
    assert!(
        j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["fixed"] == true),
        "{out}"
    );
    assert!(c.contains(&"JOURNAL_NEEDS_RECOVERY".to_string()), "{out}");
    assert!(out.contains("past the end of the volume"), "{out}");
    assert!(
        block_of(&img, end - 20, bs) == a,
        "transaction 7 was not replayed"
    );
    assert!(
        block_of(&img, end - 21, bs) == before,
        "transaction 8 was replayed"
    );
    let (code, _, out) = fsck(&img, &["-n"]);
    assert_eq!(code, Some(0), "{out}");
}

/// With none of -n, -y, -p and no terminal, nobody can answer: refused in
/// one line, nothing written. On a terminal, "y" replays.
#[test]
fn without_an_answer_there_is_no_repair() {
    let dir = scratch("replay-ask");
    let img = volume(dir.path(), "q.img", false, &[]);
    let s = write_log(&img, false, false);
    let before = md5(&img);
    let out = cmd(FSCK).arg(&img).output().unwrap();
    assert_eq!(out.status.code(), Some(8), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("standard input is not a terminal") && err.lines().count() == 1,
        "{}",
        show(&out)
    );
    assert_eq!(md5(&img), before);
    let (code, j, out) = on_terminal(&img, &["--json"], "y\n");
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(codes(&j), ["JOURNAL_NEEDS_RECOVERY"], "{out}");
    for (b, want) in &s.judged {
        assert!(
            block_of(&img, *b, s.bs) == *want,
            "block {b} after answering y"
        );
    }
}

/// An unusable journal superblock: reported, the slot stays dirty, no panic.
#[test]
fn an_unusable_journal_superblock_is_reported_and_left_dirty() {
    let dir = scratch("replay-jsb");
    let img = volume(dir.path(), "j.img", false, &[]);
    let log = LogWriter::new(&img, 4, 1);
    let at = log.jsb_at;
    log.finish();
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(&[0xFF; 4], at).unwrap();
    for args in [&["-n"][..], &["-y"][..]] {
        let (code, j, out) = fsck(&img, args);
        assert_eq!(code, Some(4), "{args:?}: {out}");
        let c = codes(&j);
        assert!(
            c.contains(&"JOURNAL_SUPERBLOCK".to_string()),
            "{args:?}: {out}"
        );
        assert!(
            c.contains(&"JOURNAL_NEEDS_RECOVERY".to_string()),
            "{args:?}: {out}"
        );
    }
}

/// A kill before each write of the replay; the next `-y` finishes the job
/// and the volume ends up as one uninterrupted run leaves it. (On a volume
/// without MMP: the guard's own crash safety is tested in tests/fsck.rs,
/// and its proof wait at every run would make this test minutes long.)
#[test]
fn a_crash_at_every_write_of_the_replay_is_finished_by_the_next_run() {
    let dir = scratch("replay-crash");
    let base = volume(dir.path(), "base.img", false, &["--fs-features=metaecc"]);
    let s = write_log(&base, true, false);
    let mut n = 1;
    loop {
        let img = dir.path().join("crash.img");
        cp_sparse(&base, &img);
        let out = cmd(FSCK)
            .env("OCFS2_MMP_FAILPOINT_WRITE", n.to_string())
            .args(["-y"])
            .arg(&img)
            .output()
            .unwrap();
        if out.status.code() == Some(1) {
            break; // no write left to stop at
        }
        assert_eq!(
            out.status.code(),
            None,
            "write {n}: killed by the failpoint: {}",
            show(&out)
        );
        let (code, _, out) = fsck(&img, &["-y"]);
        assert_eq!(code, Some(1), "write {n}: the rerun: {out}");
        let (code, _, out) = fsck(&img, &["-n"]);
        assert_eq!(code, Some(0), "write {n}: -n after the rerun: {out}");
        for (b, want) in &s.judged {
            assert!(block_of(&img, *b, s.bs) == *want, "write {n}: block {b}");
        }
        n += 1;
        assert!(n < 100, "the replay never finished");
    }
    assert!(
        n > 5,
        "only {n} writes: the failpoint did not stop the replay"
    );
}

/// The kernel does not journal the superblock, but a log that holds it is
/// replayed like any other block, and the run says that its passes read
/// the superblock from before the replay.
#[test]
fn a_replayed_superblock_is_said() {
    let dir = scratch("replay-sb");
    let img = volume(dir.path(), "s.img", false, &[]);
    let vol = open(&img);
    let sb = vol.read_block(2).unwrap();
    drop(vol);
    let mut log = LogWriter::new(&img, 8, 40);
    log.descriptor(40, &[(2, sb.clone())]);
    log.commit(40);
    log.finish();
    let (code, j, out) = fsck(&img, &["-y"]);
    assert_eq!(code, Some(1), "{out}");
    let left = j["left"].as_array().unwrap();
    assert!(
        left.iter().any(|l| l
            .as_str()
            .unwrap()
            .contains("the replay wrote the superblock")),
        "{out}"
    );
    assert!(block_of(&img, 2, sb.len()) == sb);
}

/// On a terminal a quick check prints its result line and no pass lines
/// (they appear once a check has taken a second); `-v` prints every pass.
#[test]
fn a_quick_check_on_a_terminal_prints_no_pass_lines() {
    let dir = scratch("quiet-tty");
    let img = volume(dir.path(), "q.img", false, &[]);
    let (code, _, out) = on_terminal(&img, &["-n"], "");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("clean"), "{out}");
    assert!(!out.contains("Pass ") && !out.contains("Replay"), "{out}");
    let (code, _, out) = on_terminal(&img, &["-n", "-v"], "");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("Pass 0:") && out.contains("Pass 7:"),
        "-v prints every pass: {out}"
    );
}

/// Issue 14: `debugfs-mmp -R "logdump"` shows the transactions of a
/// crashed node's log that `fsck.ocfs2-mmp` then replays: the committed
/// ones from `s_start` (ids wrapping past 2^32), the one never committed,
/// and the blocks a replay writes home, which are the blocks fsck writes.
#[test]
fn logdump_shows_what_the_replay_writes() {
    let dir = scratch("logdump");
    let img = volume(dir.path(), "a.img", false, &[]);
    let s = write_log(&img, false, false);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_debugfs-mmp"))
        .args(["--json", "-R", "logdump 0"])
        .arg(&img)
        .output()
        .expect("run debugfs-mmp");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let tids: Vec<u64> = j["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tid"].as_u64().unwrap())
        .collect();
    assert_eq!(tids, [0xFFFF_FFFE, 0xFFFF_FFFF, 0], "{j}");
    assert_eq!(j["uncommitted"], 1, "{j}");
    assert_eq!(j["dirty"], true, "{j}");
    let mut targets: Vec<u64> = j["replay"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["target"].as_u64().unwrap())
        .collect();
    targets.sort_unstable();
    // X, Y and the root: every judged block but Z (never committed).
    let mut want: Vec<u64> = s.judged[..3].iter().map(|(b, _)| *b).collect();
    want.sort_unstable();
    assert_eq!(targets, want, "{j}");
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_debugfs-mmp"))
        .args(["-R", "logdump"])
        .arg(&img)
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("Transaction 1: logged, never committed"), "{t}");
    assert!(t.contains("A replay writes 3 block(s)"), "{t}");
    // fsck replays exactly those.
    let (code, _, out) = fsck(&img, &["-y"]);
    assert_eq!(code, Some(1), "{out}");
    for (b, want) in &s.judged {
        assert!(
            block_of(&img, *b, s.bs) == *want,
            "block {b} after the replay"
        );
    }
}
