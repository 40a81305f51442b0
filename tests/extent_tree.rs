//! The extent tree walk on a tree of depth 1: a volume made by mkfs.ocfs2
//! whose slot_map inode is rewritten (through the format crate) to point at
//! an extent block holding its original leaf record. debugfs.ocfs2 must read
//! the rewritten tree the same way we do.

use ocfs2_format::blockcheck::{self, CheckAt};
use ocfs2_format::ondisk::{ExtentBlock, ExtentList, ExtentRec, DINODE_ID2};
use ocfs2_format::zerocopy::{FromBytes, IntoBytes};
use ocfs2_format::{FileDevice, OpenMode, Volume};
use std::process::Command;

mod common;
use common::{need, sparse_file};

const DEBUGFS: &str = env!("CARGO_BIN_EXE_debugfs-mmp");

fn deepen(features: &str) {
    need("mkfs.ocfs2", "ocfs2-tools");
    need("debugfs.ocfs2", "ocfs2-tools");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("v.img");
    sparse_file(&img, 512 << 20);
    let mut args = vec![
        "-q", "-F", "-M", "local", "-N", "2", "-b", "1024", "-C", "4096",
    ];
    if !features.is_empty() {
        args.push(features);
    }
    assert!(Command::new("mkfs.ocfs2")
        .args(&args)
        .arg(&img)
        .status()
        .unwrap()
        .success());

    let vol = Volume::open(Box::new(
        FileDevice::open(
            &img,
            OpenMode {
                write: true,
                exclusive: false,
            },
        )
        .unwrap(),
    ))
    .unwrap();
    let bs = vol.block_size() as usize;
    let sm_blkno = vol.system_inode("slot_map").unwrap();
    let mut inode = vol.read_inode(sm_blkno).unwrap();
    let (el, recs) = inode.extent_list().unwrap();
    assert_eq!(el.l_tree_depth.get(), 0);
    assert_eq!(recs.len(), 1);
    let leaf = recs[0];
    let before = vol.extents(&inode).unwrap();

    // A free block: the last block of the volume is never used by mkfs.
    let eb_blkno = vol.device_blocks() - 1;
    let mut eb = vec![0u8; bs];
    {
        let (hdr, rest) = ExtentBlock::mut_from_prefix(&mut eb).unwrap();
        hdr.h_signature.copy_from_slice(b"EXBLK01\0");
        hdr.h_blkno.set(eb_blkno);
        hdr.h_fs_generation.set(inode.di().i_fs_generation.get());
        hdr.h_suballoc_slot.set(0);
        hdr.h_list.l_tree_depth.set(0);
        hdr.h_list
            .l_count
            .set(ocfs2_format::ondisk::extent_recs_per_eb(bs) as u16);
        hdr.h_list.l_next_free_rec.set(1);
        rest[..16].copy_from_slice(leaf.as_bytes());
    }
    if vol.meta_ecc() {
        blockcheck::update(&mut eb, CheckAt::ExtentBlock);
    }
    vol.write_block(eb_blkno, &eb).unwrap();
    // Its cluster in use, as the allocator would leave it (icheck below).
    let bpc = u64::from(vol.cluster_size() / vol.block_size());
    ocfs2_format::alloc::claim_clusters(&vol, &[(eb_blkno / bpc, 1)]).unwrap();

    // The inode now has one branch record covering the same clusters.
    {
        let id2 = &mut inode.buf[DINODE_ID2..];
        let (list, rest) = ExtentList::mut_from_prefix(id2).unwrap();
        list.l_tree_depth.set(1);
        let mut branch = ExtentRec::default();
        branch.e_cpos.set(0);
        branch.e_int_clusters.set(u32::from(leaf.leaf_clusters()));
        branch.e_blkno.set(eb_blkno);
        rest[..16].copy_from_slice(branch.as_bytes());
    }
    inode.di_mut().i_last_eb_blk.set(eb_blkno);
    if vol.meta_ecc() {
        blockcheck::update(&mut inode.buf, CheckAt::Inode);
    }
    vol.write_block(sm_blkno, &inode.buf).unwrap();

    let vol = Volume::open(Box::new(
        FileDevice::open(&img, OpenMode::default()).unwrap(),
    ))
    .unwrap();
    let inode = vol.read_inode(sm_blkno).unwrap();
    assert_eq!(
        vol.extents(&inode).unwrap(),
        before,
        "depth-1 walk gives the original leaf"
    );
    assert!(vol.read_slot_map().is_ok());

    let out = Command::new(DEBUGFS)
        .args(["--json", "-R", "stat //slot_map"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["tree_depth"], 1);
    assert_eq!(j["leaf_extents"][0]["blkno"], leaf.e_blkno.get());
    assert_eq!(j["extent_blocks"], serde_json::json!([eb_blkno]));
    // icheck names the extent block's owner, as debugfs.ocfs2 does.
    let req = format!("icheck {eb_blkno} {}", leaf.e_blkno.get());
    let ours = Command::new(DEBUGFS)
        .args(["-R", &req])
        .arg(&img)
        .output()
        .unwrap();
    let ours = String::from_utf8_lossy(&ours.stdout).to_string();
    assert!(
        ours.lines().any(|l| l.contains(&format!("{eb_blkno}"))
            && l.contains("extent block")
            && l.contains(&sm_blkno.to_string())),
        "{ours}"
    );
    let theirs = Command::new("debugfs.ocfs2")
        .args(["-R", &req])
        .arg(&img)
        .output()
        .unwrap();
    let theirs = String::from_utf8_lossy(&theirs.stdout).to_string();
    let cols = |t: &str| -> Vec<String> {
        t.lines()
            .skip(1)
            .map(|l| l.get(..52).unwrap_or(l).trim_end().to_string())
            .collect()
    };
    assert_eq!(
        cols(&ours),
        cols(&theirs),
        "ours:\n{ours}\ntheirs:\n{theirs}"
    );
    // The oracle agrees on the rewritten tree.
    let theirs = Command::new("debugfs.ocfs2")
        .args(["-R", "stat //slot_map"])
        .arg(&img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&theirs.stdout);
    assert!(
        text.contains("Tree Depth: 1"),
        "debugfs.ocfs2 sees depth 1: {text}"
    );
    assert!(
        text.contains(&eb_blkno.to_string()),
        "debugfs.ocfs2 names the extent block: {text}"
    );

    // A loop: the extent block pointing at itself is an error, not a hang.
    let mut bad = eb.clone();
    {
        let (hdr, rest) = ExtentBlock::mut_from_prefix(&mut bad).unwrap();
        hdr.h_list.l_tree_depth.set(1);
        let mut r = ExtentRec::default();
        r.e_int_clusters.set(1);
        r.e_blkno.set(eb_blkno);
        rest[..16].copy_from_slice(r.as_bytes());
    }
    if vol.meta_ecc() {
        blockcheck::update(&mut bad, CheckAt::ExtentBlock);
    }
    let w = Volume::open(Box::new(
        FileDevice::open(
            &img,
            OpenMode {
                write: true,
                exclusive: false,
            },
        )
        .unwrap(),
    ))
    .unwrap();
    w.write_block(eb_blkno, &bad).unwrap();
    let err = vol.extents(&inode).unwrap_err().to_string();
    assert!(err.contains(&format!("block {eb_blkno}")), "{err}");
}

#[test]
fn depth_one_tree() {
    deepen("");
}

#[test]
fn depth_one_tree_metaecc() {
    deepen("--fs-features=metaecc");
}
