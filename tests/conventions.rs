//! Issue 15, item 3: the five tools meet bad input the same way. Every tool
//! is run on the same bad inputs (a missing path, a directory, an empty
//! file, an ext4 image, a bad option, an out-of-range value); each ends
//! with its documented exit code and exactly one line on stderr naming what
//! was wrong, and with `--json` (where the tool has it) one JSON object on
//! stdout that carries the same exit code.

mod common;

use common::{find_tool, scratch, sparse_file, MIB};
use std::path::Path;
use std::process::{Command, Stdio};

/// fsck(8)'s usage code, the same in every tool.
const USAGE: i32 = 16;

struct Tool {
    name: &'static str,
    bin: &'static str,
    /// Arguments before the device.
    args: &'static [&'static str],
    /// An out-of-range value.
    bad_value: &'static [&'static str],
    /// Its exit code for a device it cannot open.
    cannot_use: i32,
    /// Its exit code for a file that holds no OCFS2 volume (mounted lists
    /// it as such: no volume found).
    not_ocfs2: i32,
    json: bool,
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "mkfs.ocfs2-mmp",
        bin: env!("CARGO_BIN_EXE_mkfs-ocfs2-mmp"),
        args: &["-n"],
        bad_value: &["-N", "0"],
        cannot_use: 1,
        not_ocfs2: 1,
        json: true,
    },
    Tool {
        name: "tunefs.ocfs2-mmp",
        bin: env!("CARGO_BIN_EXE_tunefs-ocfs2-mmp"),
        args: &["-Q", "%N"],
        bad_value: &["--mmp-update-interval=301"],
        cannot_use: 8,
        not_ocfs2: 8,
        json: true,
    },
    Tool {
        name: "fsck.ocfs2-mmp",
        bin: env!("CARGO_BIN_EXE_fsck-ocfs2-mmp"),
        args: &["-n"],
        bad_value: &["--hb-window=1"],
        cannot_use: 8,
        not_ocfs2: 8,
        json: true,
    },
    Tool {
        name: "debugfs-mmp",
        bin: env!("CARGO_BIN_EXE_debugfs-mmp"),
        args: &["-R", "stats"],
        bad_value: &["--hb-window=1"],
        cannot_use: 8,
        not_ocfs2: 8,
        json: true,
    },
    Tool {
        name: "mounted.ocfs2-mmp",
        bin: env!("CARGO_BIN_EXE_mounted-ocfs2-mmp"),
        args: &["-d"],
        bad_value: &["--hb-window=1"],
        cannot_use: 8,
        not_ocfs2: 1,
        json: true,
    },
];

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(bin: &str, args: &[&str]) -> Out {
    let o = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tool");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn every_tool_meets_bad_input_the_same_way() {
    let dir = scratch("conventions-");
    let d = dir.path();
    let missing = d.join("missing.img");
    let empty = d.join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    let ext4 = d.join("ext4.img");
    sparse_file(&ext4, 64 * MIB);
    let mk = Command::new(find_tool("mkfs.ext4", "e2fsprogs"))
        .args(["-q", "-F"])
        .arg(&ext4)
        .output()
        .unwrap();
    assert!(mk.status.success(), "mkfs.ext4");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let mut problems = Vec::new();
    for t in TOOLS {
        let mut cases: Vec<(String, Vec<String>, i32, String)> = Vec::new();
        let with = |extra: &[&str], dev: &str| -> Vec<String> {
            t.args
                .iter()
                .chain(extra)
                .map(|a| a.to_string())
                .chain([dev.to_string()])
                .collect()
        };
        cases.push((
            "a missing path".into(),
            with(&[], &s(&missing)),
            t.cannot_use,
            s(&missing),
        ));
        cases.push(("a directory".into(), with(&[], &s(d)), t.cannot_use, s(d)));
        cases.push((
            "an empty file".into(),
            with(&[], &s(&empty)),
            t.not_ocfs2,
            s(&empty),
        ));
        // (mkfs refuses an ext4 image without -F.)
        cases.push((
            "an ext4 image".into(),
            with(&[], &s(&ext4)),
            t.not_ocfs2,
            s(&ext4),
        ));
        cases.push((
            "a bad option".into(),
            with(&["--bogus"], &s(&empty)),
            USAGE,
            "--bogus".into(),
        ));
        cases.push((
            "an out-of-range value".into(),
            with(t.bad_value, &s(&empty)),
            USAGE,
            t.bad_value
                .last()
                .unwrap()
                .split('=')
                .next_back()
                .unwrap()
                .into(),
        ));
        for (what, args, code, names) in cases {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = run(t.bin, &argv);
            let shown = format!(
                "{} {} ({what}): exit {}\n--- stdout ---\n{}--- stderr ---\n{}",
                t.name,
                args.join(" "),
                r.code,
                r.stdout,
                r.stderr
            );
            if r.code != code {
                problems.push(format!("want exit {code}: {shown}"));
                continue;
            }
            let lines: Vec<&str> = r.stderr.lines().collect();
            if lines.len() != 1
                || !lines[0].starts_with(&format!("{}: ", t.name))
                || !lines[0].contains(&names)
            {
                problems.push(format!(
                    "want one stderr line '{}: ...{names}...': {shown}",
                    t.name
                ));
            }
            if lines.first().is_some_and(|l| has_repeat(l)) {
                problems.push(format!("a phrase said twice: {shown}"));
            }
            if t.json {
                let mut jargs = vec!["--json"];
                jargs.extend(&argv);
                let r = run(t.bin, &jargs);
                match serde_json::from_str::<serde_json::Value>(r.stdout.trim()) {
                    Ok(v) if v["exit_code"] == code => {}
                    _ => problems.push(format!(
                        "{} --json {} ({what}): want one object with exit_code {code}: exit {}\n--- stdout ---\n{}",
                        t.name,
                        args.join(" "),
                        r.code,
                        r.stdout
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Whether a message says the same thing twice in a row ("a: a: b",
/// "in use: in use").
fn has_repeat(line: &str) -> bool {
    let parts: Vec<&str> = line.split(": ").collect();
    parts.windows(2).any(|w| w[0] == w[1])
        || parts
            .windows(2)
            .any(|w| w[1].contains(w[0]) && w[0].len() > 6 && !w[0].starts_with('/'))
}

/// mkfs over an existing file system asks on a terminal, as mkfs.ocfs2
/// does: "n" leaves the image as it was (exit 1), "y" makes the volume;
/// without a terminal it is refused unless -F.
#[test]
fn mkfs_asks_before_overwriting_on_a_terminal() {
    let dir = scratch("conventions-ask-");
    let img = dir.path().join("ext4.img");
    sparse_file(&img, 128 * MIB);
    let mk = Command::new(find_tool("mkfs.ext4", "e2fsprogs"))
        .args(["-q", "-F"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(mk.status.success(), "mkfs.ext4");
    let before = std::fs::read(&img).unwrap()[..1 << 20].to_vec();
    let mkfs = env!("CARGO_BIN_EXE_mkfs-ocfs2-mmp");
    // script(1) gives mkfs a terminal; the answer comes on its input.
    let on_tty = |answer: &str| {
        let mut c = Command::new(find_tool("script", "bsdutils"))
            .args(["-qec"])
            .arg(format!("{mkfs} -q -M local {}", img.display()))
            .arg("/dev/null")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let o = c.wait_with_output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = on_tty("n\n");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Proceed (y/N)"), "no question: {out}");
    assert_eq!(
        std::fs::read(&img).unwrap()[..1 << 20],
        before[..],
        "'n' wrote"
    );
    let r = run(mkfs, &["-q", "-M", "local", img.to_str().unwrap()]);
    assert_eq!(r.code, 1, "no terminal, no -F: refused\n{}", r.stderr);
    assert!(r.stderr.contains("use -F"), "{}", r.stderr);
    let (code, out) = on_tty("y\n");
    assert_eq!(code, Some(0), "{out}");
    let q = run(
        env!("CARGO_BIN_EXE_tunefs-ocfs2-mmp"),
        &["-Q", "%B", img.to_str().unwrap()],
    );
    assert_eq!(q.code, 0, "'y' made no volume: {}", q.stderr);
}
