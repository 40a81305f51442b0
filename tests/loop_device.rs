//! debugfs-mmp on a real block device: a loop device over an image made by
//! mkfs.ocfs2. Exercises BLKGETSIZE64/BLKSSZGET, O_DIRECT on a block device
//! (with 512- and 4096-byte logical sectors) and LABEL=/UUID= resolution.
//! Where the kernel gives no loop device (no /dev/loop-control, not root), the
//! test fails: our users have block devices, and CI runs as root.

use std::process::Command;

mod common;
use common::shared::Loop;
use common::{need, sparse_file};

const DEBUGFS: &str = env!("CARGO_BIN_EXE_debugfs-mmp");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(DEBUGFS)
        .args(args)
        .env("TZ", "UTC")
        .output()
        .expect("run debugfs-mmp");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "debugfs-mmp {args:?} failed: {err}");
    serde_json::from_str(out.lines().next().expect("one line")).expect("JSON")
}

fn case(block: u32, sector: u32) {
    need("mkfs.ocfs2", "ocfs2-tools");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("v.img");
    sparse_file(&img, 256 << 20);
    let label = format!("looptest{block}s{sector}");
    let st = Command::new("mkfs.ocfs2")
        .args([
            "-q",
            "-F",
            "-M",
            "local",
            "-N",
            "2",
            "-b",
            &block.to_string(),
            "-L",
            &label,
        ])
        .arg(&img)
        .status()
        .unwrap();
    assert!(st.success(), "mkfs.ocfs2 failed");
    let lp = Loop::attach(&img, sector);
    let from_file = json(&["--json", "-R", "stats", img.to_str().unwrap()]);
    let from_dev = json(&["--json", "-R", "stats", &lp.dev]);
    assert_eq!(
        from_file, from_dev,
        "stats differ between the image and its loop device"
    );
    let uuid = from_dev["uuid"].as_str().unwrap().to_string();
    let by_label = json(&["--json", "-R", "stats", &format!("LABEL={label}")]);
    assert_eq!(by_label["uuid"], from_dev["uuid"]);
    let by_uuid = json(&[
        "--json",
        "-R",
        "stats",
        &format!("UUID={}", uuid.to_lowercase()),
    ]);
    assert_eq!(by_uuid["label"], serde_json::json!(label));
    // Slot map through O_DIRECT on the block device.
    let sm = json(&["--json", "-R", "slotmap", &lp.dev]);
    assert_eq!(sm["format"], "extended");
    assert_eq!(sm["slots"].as_array().unwrap().len(), 2);
    let (code, _, err) = run(&["-R", "mmp status -i", &lp.dev]);
    assert_eq!(code, 2, "MMP is off: could not tell; stderr: {err}");
    assert!(
        !err.contains("O_DIRECT refused"),
        "a block device must take O_DIRECT: {err}"
    );
}

#[test]
fn loop_device_512_sectors() {
    case(4096, 512);
}

#[test]
fn loop_device_4k_sectors_small_blocks() {
    // 4 KiB logical sectors under a 4 KiB-block volume; O_DIRECT windows
    // must be 4 KiB aligned.
    case(4096, 4096);
}

#[test]
fn label_that_matches_nothing() {
    let (code, out, err) = run(&["-R", "stats", "LABEL=no-such-label-anywhere"]);
    assert_eq!(code, 8);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("debugfs-mmp: LABEL=no-such-label-anywhere"),
        "{err}"
    );
}
