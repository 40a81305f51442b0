//! The requests of `debugfs-mmp`: parsing and execution.

use crate::{Outcome, PROG};
use anyhow::{bail, Context, Result};
use ocfs2_format::features::incompat;
use ocfs2_format::ondisk::{self, inode_flags, Dinode};
use ocfs2_format::slotmap::{Format, MmpState, SlotMap};
use ocfs2_format::{Inode, Volume};
use ocfs2_mmp::{CheckOptions, SystemClock};
use ocfs2_toolkit::{ctime_utc, exit, ls_time_utc, text};
use serde_json::{json, Value};
use std::fmt::Write as _;
use tabled::settings::Style;
use tabled::{Table, Tabled};

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Stats,
    Slotmap,
    MmpStatus {
        info_only: bool,
        /// Heartbeat window in seconds (default: the dead threshold).
        hb_window: Option<u32>,
    },
    Ls {
        long: bool,
        path: String,
    },
    Stat {
        path: String,
    },
    /// Hold the volume like a live non-clustered MMP mount.
    MmpHeartbeat {
        run_for: Option<u64>,
        hb_window: Option<u32>,
    },
    /// Write one slot: after the MMP check, or with `--force` without it
    /// (fault injection, repairs by hand).
    MmpSet {
        slot: u16,
        value: u32,
        node: Option<u32>,
        force: bool,
    },
    /// The o2hb heartbeat blocks, optionally watched for SECONDS.
    Hb {
        watch: Option<u64>,
    },
    /// A file's bytes on standard output.
    Cat {
        path: String,
    },
    /// A file copied to a host file (`-p`: its mode, owner and times too).
    Dump {
        preserve: bool,
        path: String,
        host: String,
    },
    /// A whole tree copied to a host directory.
    Rdump {
        path: String,
        host: String,
    },
    /// The jbd2 log of a slot's journal.
    Logdump {
        slot: u16,
    },
    /// A path that names an inode.
    Findpath {
        inode: u64,
    },
    /// Every path that names each inode.
    Ncheck {
        inodes: Vec<u64>,
    },
    /// The inode that owns each block.
    Icheck {
        blocks: Vec<u64>,
    },
    /// A file's clusters and extents.
    Frag {
        path: String,
    },
    /// An inode's extended attributes (`-v`: each name and value).
    Xattr {
        verbose: bool,
        path: String,
    },
    Help,
    /// End the session.
    Quit,
}

impl Request {
    pub fn name(&self) -> &'static str {
        match self {
            Request::Stats => "stats",
            Request::Slotmap => "slotmap",
            Request::MmpStatus { .. } => "mmp status",
            Request::Ls { .. } => "ls",
            Request::Stat { .. } => "stat",
            Request::MmpHeartbeat { .. } => "mmp heartbeat",
            Request::MmpSet { .. } => "mmp set",
            Request::Hb { .. } => "hb",
            Request::Cat { .. } => "cat",
            Request::Dump { .. } => "dump",
            Request::Rdump { .. } => "rdump",
            Request::Logdump { .. } => "logdump",
            Request::Findpath { .. } => "findpath",
            Request::Ncheck { .. } => "ncheck",
            Request::Icheck { .. } => "icheck",
            Request::Frag { .. } => "frag",
            Request::Xattr { .. } => "xattr",
            Request::Help => "help",
            Request::Quit => "quit",
        }
    }

    /// Take the command line's `--hb-window` where the request gave none.
    pub fn with_default_hb_window(mut self, dflt: Option<u32>) -> Self {
        if let Request::MmpStatus { hb_window, .. } | Request::MmpHeartbeat { hb_window, .. } =
            &mut self
        {
            *hb_window = hb_window.or(dflt);
        }
        self
    }

    /// Requests that write to the device (need -w).
    pub fn writes(&self) -> bool {
        matches!(self, Request::MmpHeartbeat { .. } | Request::MmpSet { .. })
    }
}

const HELP: &str = "\
stats                 the superblock, as debugfs.ocfs2 -R stats shows it
slotmap               the slot map: slot, raw value, MMP state, node
mmp status [-i] [--hb-window SECONDS]
                      MMP check as the kernel runs it (waits), and on a
                      clustered volume a watch of the o2hb heartbeat of the
                      nodes the slots name (default window: the dead
                      threshold, 62 s); -i: no wait
ls [-l] PATH          list a directory (/ is the root, // the system directory)
stat PATH             an inode's fields and extent list
mmp heartbeat [--for SECONDS]
                      (-w) hold the volume like a live non-clustered MMP mount:
                      a new sequence, then +1 every update interval, until the
                      time is up or a signal comes; then 0 (clean)
mmp set [--force] SLOT VALUE [NODE]
                      (-w) write VALUE into slot SLOT's es_valid, raw: a number
                      (0x.. for hex) or empty, clean, fsck, cluster, nocluster
hb [--watch SECONDS]  the o2hb heartbeat blocks (node, sequence, generation);
                      --watch re-reads them every second for SECONDS: live,
                      silent or never, and when each last changed
cat PATH              a file's bytes (holes read as zeros)
dump [-p] PATH HOSTFILE
                      copy a file out, its holes kept; -p: its mode, owner
                      and times too
rdump PATH HOSTDIR    copy a whole tree out (holes kept, symbolic links, hard
                      links once, modes, owners and times); lists what it
                      could not copy
logdump [SLOT]        slot SLOT's journal (default 0): its transactions from
                      s_start, the blocks each writes and revokes, and what a
                      replay would write
findpath INODE        a path that names the inode (INODE: a number or <N>)
ncheck INODE...       every path that names each inode
icheck BLOCK...       the inode that owns each block (BLOCK: a number, 0x..
                      for hex) and what the block is to it
frag PATH             a file's clusters, the extents they take, and how
                      fragmented that is
xattr [-v] PATH       an inode's extended attributes: how many each storage
                      holds (inode, block, buckets); -v: each name, size and
                      value (escaped; --json: the whole value in hex)
help                  this list
quit, q               end the session
PATH starts with / (the root directory), // (the system directory) or is
<BLKNO> (an inode by its block).
";

/// An inode number as debugfs.ocfs2 takes it: `123` or `<123>`.
fn inode_number(w: &str) -> Option<u64> {
    let n = w
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(w);
    n.parse().ok()
}

/// A block number as debugfs.ocfs2 takes it (`strtoull` base 0): decimal,
/// or `0x` hexadecimal.
fn block_number(w: &str) -> Option<u64> {
    match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => w.parse().ok(),
    }
}

/// Parse one request line.
pub fn parse(line: &str) -> Result<Request, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let bad = |msg: &str| Err(format!("request \"{line}\": {msg}"));
    match words.as_slice() {
        ["stats"] => Ok(Request::Stats),
        ["slotmap"] => Ok(Request::Slotmap),
        ["mmp", "status", rest @ ..] => {
            let (mut info_only, mut hb_window) = (false, None);
            let mut it = rest.iter();
            while let Some(w) = it.next() {
                match *w {
                    "-i" => info_only = true,
                    "--hb-window" => match it.next().map(|n| ocfs2_toolkit::parse_hb_window(n)) {
                        Some(Ok(n)) => hb_window = Some(n),
                        Some(Err(e)) => return bad(&e),
                        None => return bad("--hb-window takes a number of seconds"),
                    },
                    _ => return bad("usage: mmp status [-i] [--hb-window SECONDS]"),
                }
            }
            Ok(Request::MmpStatus {
                info_only,
                hb_window,
            })
        }
        ["mmp", "heartbeat", rest @ ..] => {
            let (mut run_for, mut hb_window) = (None, None);
            let mut it = rest.iter();
            while let Some(w) = it.next() {
                match *w {
                    "--for" => match it.next().map(|n| n.parse()) {
                        Some(Ok(secs)) => run_for = Some(secs),
                        _ => return bad("--for takes a number of seconds"),
                    },
                    "--hb-window" => match it.next().map(|n| ocfs2_toolkit::parse_hb_window(n)) {
                        Some(Ok(n)) => hb_window = Some(n),
                        Some(Err(e)) => return bad(&e),
                        None => return bad("--hb-window takes a number of seconds"),
                    },
                    _ => return bad("usage: mmp heartbeat [--for SECONDS] [--hb-window SECONDS]"),
                }
            }
            Ok(Request::MmpHeartbeat { run_for, hb_window })
        }
        ["mmp", "set", "--force", slot, val, rest @ ..] if rest.len() <= 1 => {
            parse_mmp_set(slot, val, rest, true)
        }
        ["mmp", "set", slot, val, rest @ ..] if rest.len() <= 1 => {
            parse_mmp_set(slot, val, rest, false)
        }
        ["mmp", ..] => bad(
            "usage: mmp status [-i] [--hb-window SECONDS] | mmp heartbeat [--for SECONDS] | mmp set [--force] SLOT VALUE [NODE]",
        ),
        ["ls"] => Ok(Request::Ls {
            long: false,
            path: "/".into(),
        }),
        ["ls", "-l"] => Ok(Request::Ls {
            long: true,
            path: "/".into(),
        }),
        ["ls", "-l", p] => Ok(Request::Ls {
            long: true,
            path: (*p).into(),
        }),
        ["ls", p] => Ok(Request::Ls {
            long: false,
            path: (*p).into(),
        }),
        ["ls", ..] => bad("usage: ls [-l] PATH"),
        ["stat", p] => Ok(Request::Stat { path: (*p).into() }),
        ["stat", ..] => bad("usage: stat PATH"),
        ["hb"] => Ok(Request::Hb { watch: None }),
        ["hb", "--watch", n] => match n.parse() {
            Ok(secs) => Ok(Request::Hb { watch: Some(secs) }),
            Err(_) => bad("--watch takes a number of seconds"),
        },
        ["hb", ..] => bad("usage: hb [--watch SECONDS]"),
        ["cat", p] => Ok(Request::Cat { path: (*p).into() }),
        ["cat", ..] => bad("usage: cat PATH"),
        ["dump", "-p", p, h] => Ok(Request::Dump {
            preserve: true,
            path: (*p).into(),
            host: (*h).into(),
        }),
        ["dump", p, h] => Ok(Request::Dump {
            preserve: false,
            path: (*p).into(),
            host: (*h).into(),
        }),
        ["dump", ..] => bad("usage: dump [-p] PATH HOSTFILE"),
        ["rdump", p, h] => Ok(Request::Rdump {
            path: (*p).into(),
            host: (*h).into(),
        }),
        ["rdump", ..] => bad("usage: rdump PATH HOSTDIR"),
        ["logdump"] => Ok(Request::Logdump { slot: 0 }),
        ["logdump", n] => match n.parse() {
            Ok(slot) => Ok(Request::Logdump { slot }),
            Err(_) => bad("usage: logdump [SLOT]"),
        },
        ["logdump", ..] => bad("usage: logdump [SLOT]"),
        ["findpath", i] => match inode_number(i) {
            Some(inode) => Ok(Request::Findpath { inode }),
            None => bad("usage: findpath INODE (a number, or <N>)"),
        },
        ["findpath", ..] => bad("usage: findpath INODE"),
        ["ncheck", rest @ ..] if !rest.is_empty() => {
            match rest.iter().map(|i| inode_number(i)).collect::<Option<Vec<_>>>() {
                Some(inodes) => Ok(Request::Ncheck { inodes }),
                None => bad("usage: ncheck INODE... (numbers, or <N>)"),
            }
        }
        ["ncheck"] => bad("usage: ncheck INODE..."),
        ["icheck", rest @ ..] if !rest.is_empty() => {
            match rest.iter().map(|w| block_number(w)).collect::<Option<Vec<_>>>() {
                Some(blocks) => Ok(Request::Icheck { blocks }),
                None => bad("usage: icheck BLOCK... (numbers, 0x.. for hex)"),
            }
        }
        ["icheck"] => bad("usage: icheck BLOCK..."),
        ["frag", p] => Ok(Request::Frag { path: (*p).into() }),
        ["frag", ..] => bad("usage: frag PATH"),
        ["xattr", "-v", p] => Ok(Request::Xattr {
            verbose: true,
            path: (*p).into(),
        }),
        ["xattr", p] if *p != "-v" => Ok(Request::Xattr {
            verbose: false,
            path: (*p).into(),
        }),
        ["xattr", ..] => bad("usage: xattr [-v] PATH"),
        ["help"] | ["?"] => Ok(Request::Help),
        ["quit"] | ["q"] => Ok(Request::Quit),
        [] => bad("empty request"),
        [other, ..] => bad(&format!("unknown request '{other}' (try: help)")),
    }
}

pub fn execute(vol: &Volume, device: &str, req: &Request, json: bool) -> Result<Outcome> {
    match req {
        Request::Stats => stats(vol),
        Request::Slotmap => slotmap(vol),
        Request::MmpStatus {
            info_only,
            hb_window,
        } => mmp_status(vol, device, *info_only, *hb_window, json),
        Request::Ls { long, path } => ls(vol, path, *long),
        Request::Stat { path } => stat(vol, path),
        Request::MmpHeartbeat { run_for, hb_window } => {
            mmp_heartbeat(vol, *run_for, *hb_window, json)
        }
        Request::MmpSet {
            slot,
            value,
            node,
            force,
        } => mmp_set(vol, *slot, *value, *node, *force, json),
        Request::Hb { watch } => hb(vol, *watch),
        Request::Cat { path } => crate::files::cat(vol, path, json),
        Request::Dump {
            preserve,
            path,
            host,
        } => crate::files::dump(vol, path, host, *preserve),
        Request::Rdump { path, host } => crate::files::rdump(vol, path, host),
        Request::Logdump { slot } => crate::logdump::logdump(vol, *slot),
        Request::Findpath { inode } => crate::files::findpath(vol, *inode),
        Request::Ncheck { inodes } => crate::files::ncheck(vol, inodes),
        Request::Icheck { blocks } => crate::blocks::icheck(vol, blocks),
        Request::Frag { path } => crate::blocks::frag(vol, path),
        Request::Xattr { verbose, path } => crate::xattrs::xattr(vol, path, *verbose),
        Request::Help => Ok(Outcome {
            text: HELP.into(),
            raw: Vec::new(),
            warnings: Vec::new(),
            json: json!({ "help": HELP }),
            exit: exit::OK,
        }),
        Request::Quit => ok(String::new(), Value::Null),
    }
}

fn ok(text: String, json: Value) -> Result<Outcome> {
    Ok(Outcome {
        text,
        raw: Vec::new(),
        warnings: Vec::new(),
        json,
        exit: exit::OK,
    })
}

// ---------------------------------------------------------------- stats

fn flag_names(word: u32, kind: ocfs2_format::features::Kind) -> String {
    let set = ocfs2_format::features::FeatureSet {
        compat: if kind == ocfs2_format::features::Kind::Compat {
            word
        } else {
            0
        },
        incompat: if kind == ocfs2_format::features::Kind::Incompat {
            word
        } else {
            0
        },
        ro_compat: if kind == ocfs2_format::features::Kind::RoCompat {
            word
        } else {
            0
        },
    };
    let n = set.names();
    [n.compat, n.incompat, n.ro_compat].concat().join(" ")
}

use ocfs2_toolkit::cstr_text as cstr;

fn stats(vol: &Volume) -> Result<Outcome> {
    use ocfs2_format::features::Kind;
    let sb = vol.sb();
    let f = vol.features();
    let clusterinfo = f.incompat & (incompat::USERSPACE_STACK | incompat::CLUSTERINFO) != 0;
    let mut t = String::new();
    let w = &mut t;
    let _ = writeln!(
        w,
        "\tRevision: {}.{}",
        sb.s_major_rev_level.get(),
        sb.s_minor_rev_level.get()
    );
    let _ = writeln!(
        w,
        "\tMount Count: {}   Max Mount Count: {}",
        sb.s_mnt_count.get(),
        sb.s_max_mnt_count.get()
    );
    let _ = writeln!(
        w,
        "\tState: {}   Errors: {}",
        sb.s_state.get(),
        sb.s_errors.get()
    );
    let _ = writeln!(
        w,
        "\tCheck Interval: {}   Last Check: {}",
        sb.s_checkinterval.get(),
        ctime_utc(sb.s_lastcheck.get() as i64)
    );
    let _ = writeln!(w, "\tCreator OS: {}", sb.s_creator_os.get());
    let _ = writeln!(
        w,
        "\tFeature Compat: {} {}",
        f.compat,
        flag_names(f.compat, Kind::Compat)
    );
    let _ = writeln!(
        w,
        "\tFeature Incompat: {} {}",
        f.incompat,
        flag_names(f.incompat, Kind::Incompat)
    );
    let tunefs = sb.s_tunefs_flag.get();
    let tf: Vec<&str> = [(1u16, "remove-slot"), (2, "dir-trailer")]
        .iter()
        .filter(|(m, _)| tunefs & m != 0)
        .map(|(_, n)| *n)
        .collect();
    let _ = writeln!(w, "\tTunefs Incomplete: {} {}", tunefs, tf.join(" "));
    let _ = writeln!(
        w,
        "\tFeature RO compat: {} {}",
        f.ro_compat,
        flag_names(f.ro_compat, Kind::RoCompat)
    );
    let _ = writeln!(
        w,
        "\tRoot Blknum: {}   System Dir Blknum: {}",
        vol.root_blkno(),
        vol.system_dir_blkno()
    );
    let _ = writeln!(
        w,
        "\tFirst Cluster Group Blknum: {}",
        sb.s_first_cluster_group.get()
    );
    let _ = writeln!(
        w,
        "\tBlock Size Bits: {}   Cluster Size Bits: {}",
        sb.s_blocksize_bits.get(),
        sb.s_clustersize_bits.get()
    );
    let _ = writeln!(w, "\tMax Node Slots: {}", sb.s_max_slots.get());
    let _ = writeln!(
        w,
        "\tExtended Attributes Inline Size: {}",
        sb.s_xattr_inline_size.get()
    );
    let _ = writeln!(w, "\tLabel: {}", text(&vol.label()));
    let _ = writeln!(w, "\tUUID: {}", vol.uuid_hex());
    let h = sb.s_uuid_hash.get();
    let _ = writeln!(w, "\tHash: {h} ({h:#x})");
    let d: Vec<u32> = sb.s_dx_seed.iter().map(|x| x.get()).collect();
    let _ = writeln!(
        w,
        "\tDX Seeds: {} {} {} ({:#010x} {:#010x} {:#010x})",
        d[0], d[1], d[2], d[0], d[1], d[2]
    );
    let stack = cstr(&sb.s_cluster_info.ci_stack);
    let cluster = cstr(&sb.s_cluster_info.ci_cluster);
    if clusterinfo {
        let _ = writeln!(w, "\tCluster stack: {stack}");
        let _ = writeln!(w, "\tCluster name: {cluster}");
    } else {
        let _ = writeln!(w, "\tCluster stack: classic o2cb");
    }
    let cf = sb.s_cluster_info.ci_stackflags;
    let _ = writeln!(
        w,
        "\tCluster flags: {} {}",
        cf,
        if cf & 1 != 0 { "Globalheartbeat" } else { "" }
    );
    // Lines of our own, after the debugfs.ocfs2 ones.
    let mmp_on = f.has_incompat(incompat::MMP);
    let _ = writeln!(
        w,
        "\tBlock Size: {}   Cluster Size: {}",
        vol.block_size(),
        vol.cluster_size()
    );
    let _ = writeln!(w, "\tClusters: {}", vol.clusters());
    let _ = writeln!(
        w,
        "\tMMP: {}   MMP Update Interval: {}",
        if mmp_on { "enabled" } else { "disabled" },
        sb.s_mmp_update_interval.get()
    );
    let names = f.names();
    let json = json!({
        "label": text(&vol.label()),
        "uuid": vol.uuid_hex(),
        "revision": format!("{}.{}", sb.s_major_rev_level.get(), sb.s_minor_rev_level.get()),
        "block_size": vol.block_size(),
        "cluster_size": vol.cluster_size(),
        "block_size_bits": sb.s_blocksize_bits.get(),
        "cluster_size_bits": sb.s_clustersize_bits.get(),
        "max_slots": sb.s_max_slots.get(),
        "clusters": vol.clusters(),
        "root_blkno": vol.root_blkno(),
        "system_dir_blkno": vol.system_dir_blkno(),
        "first_cluster_group": sb.s_first_cluster_group.get(),
        "features": names,
        "feature_words": { "compat": f.compat, "incompat": f.incompat, "ro_compat": f.ro_compat },
        "tunefs_flag": tunefs,
        "mount_count": sb.s_mnt_count.get(),
        "max_mount_count": sb.s_max_mnt_count.get(),
        "state": sb.s_state.get(),
        "errors": sb.s_errors.get(),
        "xattr_inline_size": sb.s_xattr_inline_size.get(),
        "uuid_hash": h,
        "dx_seeds": d,
        "cluster_stack": if clusterinfo { Value::from(stack) } else { Value::Null },
        "cluster_name": if clusterinfo { Value::from(cluster) } else { Value::Null },
        "cluster_flags": cf,
        "mmp": mmp_on,
        "mmp_update_interval": sb.s_mmp_update_interval.get(),
        "backup_superblocks": if f.compat & ocfs2_format::features::compat::BACKUP_SB != 0 {
            vol.backup_super_blknos()
        } else {
            Vec::new()
        },
    });
    ok(t, json)
}

// ---------------------------------------------------------------- slotmap

#[derive(Tabled)]
struct SlotRow {
    #[tabled(rename = "Slot")]
    slot: u16,
    #[tabled(rename = "Raw")]
    raw: String,
    #[tabled(rename = "State")]
    state: String,
    #[tabled(rename = "Node")]
    node: String,
    #[tabled(rename = "Meaning")]
    meaning: String,
}

/// State name and node of a slot, by format.
fn slot_view(format: Format, raw: u32, node: u32) -> (&'static str, Option<u32>, String) {
    match format {
        Format::Old => {
            if raw as u16 == ocfs2_format::slotmap::OLD_EMPTY {
                ("empty", None, "free".into())
            } else {
                ("in-use", Some(node), format!("held by node {node}"))
            }
        }
        Format::Extended => {
            let st = MmpState::decode(raw);
            let node = if st == MmpState::Empty {
                None
            } else {
                Some(node)
            };
            (st.name(), node, st.describe())
        }
    }
}

fn slots_json(map: &SlotMap) -> Value {
    Value::Array(
        map.slots
            .iter()
            .map(|s| {
                let (state, node, meaning) = slot_view(map.format, s.raw, s.node);
                json!({ "slot": s.index, "raw": s.raw, "state": state, "node": node,
                        "node_field": s.node, "meaning": meaning })
            })
            .collect(),
    )
}

fn slot_table(map: &SlotMap) -> String {
    let rows: Vec<SlotRow> = map
        .slots
        .iter()
        .map(|s| {
            let (state, node, meaning) = slot_view(map.format, s.raw, s.node);
            let raw = match map.format {
                Format::Old => format!("{:#06x}", s.raw),
                Format::Extended => format!("{:#010x}", s.raw),
            };
            SlotRow {
                slot: s.index,
                raw,
                state: state.into(),
                node: node.map_or("-".into(), |n| n.to_string()),
                meaning,
            }
        })
        .collect();
    let mut t = Table::new(rows);
    t.with(Style::blank());
    format!("{t}\n")
}

fn slotmap(vol: &Volume) -> Result<Outcome> {
    let map = vol.read_slot_map().context("reading the slot map")?;
    let text = format!(
        "Slot map: {} format, {} slots\n{}",
        map.format.name(),
        map.slots.len(),
        slot_table(&map)
    );
    ok(
        text,
        json!({ "format": map.format.name(), "slots": slots_json(&map) }),
    )
}

// ---------------------------------------------------------------- mmp status

fn mmp_status(
    vol: &Volume,
    device: &str,
    info_only: bool,
    hb_window: Option<u32>,
    json_mode: bool,
) -> Result<Outcome> {
    let f = vol.features();
    let feature_on = f.has_incompat(incompat::MMP);
    let interval = vol.sb().s_mmp_update_interval.get();
    let format = vol.slot_map_format();
    let io = ocfs2_mmp::engine::VolumeSlots::new(vol).context("locating the slot map")?;
    let hb = ocfs2_mmp::engine::hb_options(vol, hb_window);
    let mut clock = SystemClock;
    let mut obs = ocfs2_toolkit::WaitReporter::new(PROG, json_mode);
    let report = ocfs2_mmp::check(
        interval,
        CheckOptions {
            wait: !info_only,
            feature_on: feature_on && format == Format::Extended,
            hb,
        },
        &io,
        &mut clock,
        &mut obs,
    )
    .context("reading the slot map and heartbeat")?;
    let last = report.last.clone().unwrap_or(SlotMap {
        format,
        slots: Vec::new(),
    });
    let rule = ocfs2_mmp::same_kind_rule(&last);
    let mut verdict_text = report.verdict.describe();
    if feature_on && format == Format::Old {
        verdict_text = "MMP is on but the slot map is in the old format: the kernel refuses to mount with MMP \
                        (tunefs.ocfs2 --fs-features=extended-slotmap converts it)"
            .into();
        if let ocfs2_mmp::Verdict::Heartbeating { .. } = report.verdict {
            verdict_text = format!("{}; {verdict_text}", report.verdict.describe());
        }
    }
    let code = report.verdict.exit_code();
    let local_feature = f.has_incompat(incompat::LOCAL_MOUNT);
    let nodes = report.nodes();
    let mut t = String::new();
    let w = &mut t;
    let _ = writeln!(w, "Device: {device}");
    let _ = writeln!(
        w,
        "MMP feature: {}",
        if feature_on { "enabled" } else { "disabled" }
    );
    let _ = writeln!(
        w,
        "Mount type: {}",
        if local_feature {
            "local (volume made with -M local)"
        } else {
            "cluster-capable"
        }
    );
    let _ = writeln!(w, "Update interval: {} s", report.update_interval);
    let _ = writeln!(w, "Check interval: {} s", report.check_interval);
    let _ = writeln!(
        w,
        "Wait time: {} s (min(2 x check + 1, check + 60))",
        report.wait_time
    );
    let _ = writeln!(w, "Waited: {} s", report.waited);
    let _ = writeln!(
        w,
        "Slot map: {} format, {} slots",
        last.format.name(),
        last.slots.len()
    );
    t.push_str(&slot_table(&last));
    let w = &mut t;
    match &report.heartbeat {
        Some(h) => {
            let _ = writeln!(
                w,
                "Heartbeat: watched {} s of a {} s window ({} o2hb blocks)",
                h.watched, h.window, h.blocks
            );
            if h.nodes.is_empty() {
                let _ = writeln!(w, "  no node ever heartbeated on this volume");
            } else {
                let _ = write!(w, "{}", node_table(h));
            }
        }
        None => {
            let why = if local_feature {
                "not watched: a local volume, no node heartbeats on it"
            } else if hb.is_none() {
                "not watched"
            } else if info_only {
                "not watched (-i)"
            } else {
                "not watched: no slot names a clustered holder"
            };
            let _ = writeln!(w, "Heartbeat: {why}");
        }
    }
    let list = |v: &[u16]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        }
    };
    if report.heartbeat.is_some() {
        let _ = writeln!(w, "Mounted nodes: {}", list(&nodes.mounted));
        if !nodes.live_without_slot.is_empty() {
            let _ = writeln!(
                w,
                "Heartbeating without a slot: {} (mounting, or a heartbeat region left up)",
                list(&nodes.live_without_slot)
            );
        }
        let _ = writeln!(w, "Silent nodes: {}", list(&nodes.silent));
    }
    let _ = writeln!(w, "Stale slots: {}", list(&nodes.stale_slots));
    let _ = writeln!(
        w,
        "Last mount: {}",
        match rule.last_mount {
            ocfs2_mmp::MountKind::None => "none recorded (clean)",
            ocfs2_mmp::MountKind::Clustered => "clustered",
            ocfs2_mmp::MountKind::NonClustered => "non-clustered",
        }
    );
    let _ = writeln!(w, "Next mount: {}", rule.explanation);
    if let Some(r) = &nodes.recovery {
        let _ = writeln!(w, "Recovery: {r}");
    }
    let _ = writeln!(w, "Verdict: {verdict_text}");
    let json = json!({
        "device": device,
        "mmp": feature_on,
        "local": local_feature,
        "update_interval": report.update_interval,
        "check_interval": report.check_interval,
        "wait_time": report.wait_time,
        "waited": report.waited,
        "format": last.format.name(),
        "slots": slots_json(&last),
        "first_slots": report.first.as_ref().map(slots_json),
        "heartbeat": report.heartbeat,
        "mounted_nodes": nodes.mounted,
        "live_without_slot": nodes.live_without_slot,
        "silent_nodes": nodes.silent,
        "stale_slots": nodes.stale_slots,
        "recovery": nodes.recovery,
        "verdict": report.verdict,
        "verdict_text": verdict_text,
        "safe": report.verdict.is_safe(),
        "exit_code": code,
        "same_kind_rule": rule,
    });
    Ok(Outcome {
        text: t,
        raw: Vec::new(),
        warnings: Vec::new(),
        json,
        exit: code,
    })
}

#[derive(Tabled)]
struct NodeRow {
    #[tabled(rename = "Node")]
    node: u16,
    #[tabled(rename = "Slots")]
    slots: String,
    #[tabled(rename = "State")]
    state: &'static str,
    #[tabled(rename = "First seq")]
    first: String,
    #[tabled(rename = "Last seq")]
    last: String,
    #[tabled(rename = "Generation")]
    generation: String,
    #[tabled(rename = "Changes")]
    changes: u32,
    #[tabled(rename = "Last change")]
    last_change: String,
    #[tabled(rename = "Block")]
    block: String,
}

fn node_table(h: &ocfs2_mmp::liveness::HbReport) -> String {
    let rows: Vec<NodeRow> = h
        .nodes
        .iter()
        .map(|n| NodeRow {
            node: n.node,
            slots: if n.slots.is_empty() {
                "-".into()
            } else {
                n.slots
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            },
            state: n.state.name(),
            first: format!("{:#x}", n.first_seq),
            last: format!("{:#x}", n.last_seq),
            generation: format!("{:#018x}", n.generation),
            changes: n.changes,
            last_change: n.last_change.map_or("-".into(), |s| format!("at {s} s")),
            block: match &n.damage {
                None => "ok".into(),
                Some(d) => format!("DAMAGED: {d}"),
            },
        })
        .collect();
    let mut t = Table::new(rows);
    t.with(Style::blank());
    format!("{t}\n")
}

// ---------------------------------------------------------------- mmp writes

fn mmp_heartbeat(
    vol: &Volume,
    run_for: Option<u64>,
    hb_window: Option<u32>,
    json: bool,
) -> Result<Outcome> {
    if !vol.features().has_incompat(incompat::MMP) {
        bail!("the MMP feature is not enabled on this volume");
    }
    let interval = vol.sb().s_mmp_update_interval.get();
    if interval == 0 {
        bail!("s_mmp_update_interval is 0 (the kernel would busy-loop): set 1 to 300 with tunefs.ocfs2-mmp --mmp-update-interval");
    }
    let io = ocfs2_mmp::engine::VolumeSlots::new(vol).context("locating the slot map")?;
    let end = ocfs2_mmp::engine::heartbeat(
        &io,
        interval,
        ocfs2_mmp::engine::hb_options(vol, hb_window),
        run_for.map(std::time::Duration::from_secs),
        &mut SystemClock,
        &mut ocfs2_toolkit::WaitReporter::new(PROG, json).with_beats(),
        &ocfs2_toolkit::signals::pending,
    )?;
    let how = match end.signal {
        Some(s) => format!("stopped by signal {s}"),
        None => "time is up".into(),
    };
    let text = format!(
        "Heartbeat: {} updates, last sequence {:#010x}; {how}; slot 0 left at 0 (clean)\n",
        end.updates, end.last_seq
    );
    let json = json!({ "updates": end.updates, "last_seq": end.last_seq, "signal": end.signal });
    ok(text, json)
}

fn mmp_set(
    vol: &Volume,
    slot: u16,
    value: u32,
    node: Option<u32>,
    force: bool,
    json: bool,
) -> Result<Outcome> {
    if vol.slot_map_format() != Format::Extended {
        bail!("the slot map is in the old format: es_valid exists only in the extended one");
    }
    let (_, runs) = vol.slot_map_layout().context("locating the slot map")?;
    let before = vol.read_slot_map_runs(&runs)?;
    let Some(old) = before.slots.get(usize::from(slot)) else {
        bail!(
            "slot {slot} does not exist (the volume has {} slots)",
            before.slots.len()
        );
    };
    let node = node.unwrap_or(old.node);
    let io = ocfs2_mmp::engine::VolumeSlots::new(vol).context("locating the slot map")?;
    if !force && vol.features().has_incompat(incompat::MMP) {
        // As any other writer: the kernel's check first, and the write only
        // if the slot still holds what the check saw.
        let report = ocfs2_mmp::check(
            vol.sb().s_mmp_update_interval.get(),
            ocfs2_mmp::CheckOptions {
                wait: true,
                feature_on: true,
                hb: ocfs2_mmp::engine::hb_options(vol, None),
            },
            &io,
            &mut SystemClock,
            &mut ocfs2_toolkit::WaitReporter::new(PROG, json),
        )
        .context("MMP check: reading the slot map and the heartbeat")?;
        if !report.verdict.is_safe() {
            bail!(
                "not writing slot {slot}: {} (mmp set --force writes without the check)",
                report.verdict.describe()
            );
        }
    }
    ocfs2_mmp::engine::SlotIo::write_if(&io, slot, old.raw, value, node)?;
    let after = vol.read_slot_map_runs(&runs)?;
    let now = after.slots[usize::from(slot)];
    if now.raw != value {
        bail!(
            "slot {slot} reads {:#010x} after writing {value:#010x}",
            now.raw
        );
    }
    let text = format!(
        "Slot {slot}: {:#010x} -> {value:#010x} ({}), node {node}\n",
        old.raw,
        MmpState::decode(value).describe()
    );
    ok(
        text,
        json!({ "slot": slot, "old": old.raw, "new": value, "node": node, "state": MmpState::decode(value).name() }),
    )
}

// ---------------------------------------------------------------- heartbeat

#[derive(Tabled)]
struct HbRow {
    #[tabled(rename = "Node")]
    node: u16,
    #[tabled(rename = "Sequence")]
    seq: String,
    #[tabled(rename = "Written (UTC)")]
    when: String,
    #[tabled(rename = "Generation")]
    generation: String,
    #[tabled(rename = "Dead ms")]
    dead_ms: u32,
    #[tabled(rename = "Last change seen")]
    last_change: String,
    #[tabled(rename = "Block")]
    block: String,
    #[tabled(rename = "Verdict")]
    verdict: &'static str,
}

fn hb(vol: &Volume, watch: Option<u64>) -> Result<Outcome> {
    let bytes = vol.device().sector_size() as usize;
    let read = || vol.heartbeat_area().context("reading the heartbeat area");
    let first = read()?;
    let blocks = first.len();
    let mut tracker = ocfs2_mmp::liveness::Tracker::new(first);
    if let Some(secs) = watch {
        let secs = u32::try_from(secs).unwrap_or(u32::MAX);
        eprintln!("{PROG}: watching the heartbeat blocks for {secs} s (re-read every second)");
        ocfs2_mmp::each_second(secs, &mut SystemClock, |at| -> Result<_> {
            if ocfs2_toolkit::signals::pending().is_some() {
                return Ok(std::ops::ControlFlow::Break(()));
            }
            tracker.sample(at, read()?);
            Ok(std::ops::ControlFlow::Continue(()))
        })?;
    }
    let watched = watch.map(|w| u32::try_from(w).unwrap_or(u32::MAX));
    // Name the slots that point at each node, for context.
    let holders = vol
        .read_slot_map()
        .map(|m| ocfs2_mmp::slot_holders(&m))
        .unwrap_or_default();
    let report = tracker.report(watched.unwrap_or(0), watched.unwrap_or(0), &holders);
    let mut rows = Vec::new();
    let mut nodes = Vec::new();
    for n in &report.nodes {
        let verdict = match (watch, n.state) {
            (None, ocfs2_mmp::liveness::NodeState::Never) => "never",
            (None, _) => "heartbeated",
            (Some(_), s) => s.name(),
        };
        rows.push(HbRow {
            node: n.node,
            seq: format!("{:#x}", n.last_seq),
            when: if n.last_seq == 0 {
                "-".into()
            } else {
                ctime_utc(i64::try_from(n.last_seq).unwrap_or(i64::MAX))
            },
            generation: format!("{:#018x}", n.generation),
            dead_ms: n.dead_ms,
            last_change: match (watch, n.last_change) {
                (None, _) => "not watched".into(),
                (Some(_), None) => "none".into(),
                (Some(_), Some(at)) => format!("at {at} s ({} changes)", n.changes),
            },
            block: n
                .damage
                .clone()
                .map_or("ok".into(), |d| format!("DAMAGED: {d}")),
            verdict,
        });
        nodes.push(json!({
            "node": n.node, "slots": n.slots, "seq": n.last_seq, "first_seq": n.first_seq,
            "generation": n.generation, "dead_ms": n.dead_ms, "changes": n.changes,
            "last_change": n.last_change, "block_ok": n.block_ok, "damage": n.damage,
            "verdict": verdict,
        }));
    }
    let mut t = format!(
        "Heartbeat area: {blocks} blocks of {bytes} bytes; {} node(s) heartbeated or named by a slot{}\n",
        rows.len(),
        watch.map_or(String::new(), |w| format!("; watched {w} s"))
    );
    if !rows.is_empty() {
        let mut table = Table::new(rows);
        table.with(Style::blank());
        t.push_str(&format!("{table}\n"));
    }
    ok(
        t,
        json!({ "block_bytes": bytes, "blocks": blocks, "watched": watch, "nodes": nodes }),
    )
}

// ---------------------------------------------------------------- ls / stat

fn perms(mode: u16) -> String {
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut s = String::from(kind);
    for shift in [6u16, 3, 0] {
        let b = (mode >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn ls(vol: &Volume, path: &str, long: bool) -> Result<Outcome> {
    let blkno = vol
        .resolve_path(path)
        .with_context(|| format!("resolving {path}"))?;
    let dir = vol.read_inode(blkno)?;
    if !dir.is_dir() {
        bail!("{path} (inode {blkno}) is not a directory");
    }
    let entries = vol.dir_entries(&dir)?;
    let mut t = String::new();
    let mut items = Vec::new();
    for e in &entries {
        let name = e.name_lossy();
        if long {
            let child = vol
                .read_inode(e.inode)
                .with_context(|| format!("reading inode {} of entry {name}", e.inode))?;
            let di = child.di();
            let _ = writeln!(
                t,
                "\t{:<15} {:>10} {:>3} {:>5} {:>5} {:>15} {} {}",
                e.inode,
                perms(di.i_mode.get()),
                di.i_links_count.get(),
                di.i_uid.get(),
                di.i_gid.get(),
                di.i_size.get(),
                ls_time_utc(di.i_mtime.get() as i64),
                name
            );
            items.push(json!({ "inode": e.inode, "name": name, "file_type": e.file_type, "rec_len": e.rec_len,
                "mode": di.i_mode.get(), "links": di.links(), "uid": di.i_uid.get(), "gid": di.i_gid.get(),
                "size": di.i_size.get(), "mtime": di.i_mtime.get() }));
        } else {
            let _ = writeln!(
                t,
                "\t{:<15} {:<4} {:<4} {:<2} {}",
                e.inode,
                e.rec_len,
                e.name.len(),
                e.file_type,
                name
            );
            items.push(json!({ "inode": e.inode, "name": name, "file_type": e.file_type, "rec_len": e.rec_len }));
        }
    }
    ok(t, json!({ "path": path, "inode": blkno, "entries": items }))
}

fn flag_list<T: Copy + Into<u32>>(v: T, names: &[(T, &str)]) -> Vec<String> {
    names
        .iter()
        .filter(|(m, _)| v.into() & (*m).into() != 0)
        .map(|(_, n)| (*n).to_string())
        .collect()
}

fn stat(vol: &Volume, path: &str) -> Result<Outcome> {
    let blkno = vol
        .resolve_path(path)
        .with_context(|| format!("resolving {path}"))?;
    let inode = vol.read_inode(blkno)?;
    let di: &Dinode = inode.di();
    let flags = flag_list(di.i_flags.get(), inode_flags::NAMES);
    let dynf = flag_list(di.i_dyn_features.get(), ondisk::dyn_features::NAMES);
    let mode = di.i_mode.get();
    let kind = match mode & 0o170000 {
        0o100000 => "Regular",
        0o040000 => "Directory",
        0o120000 => "Symbolic Link",
        0o020000 => "Char Device",
        0o060000 => "Block Device",
        0o010000 => "FIFO",
        0o140000 => "Socket",
        _ => "Unknown",
    };
    let slot = di.i_suballoc_slot.get();
    let slot_s = if slot == 0xFFFF {
        "Global".to_string()
    } else {
        slot.to_string()
    };
    let mut t = String::new();
    let w = &mut t;
    let _ = writeln!(
        w,
        "\tInode: {blkno}   Mode: {:04o}   Generation: {} ({:#010x})",
        mode & 0o7777,
        di.i_generation.get(),
        di.i_generation.get()
    );
    let _ = writeln!(
        w,
        "\tFS Generation: {} ({:#010x})",
        di.i_fs_generation.get(),
        di.i_fs_generation.get()
    );
    let _ = writeln!(
        w,
        "\tCRC32: {:08x}   ECC: {:04x}",
        di.i_check.bc_crc32e.get(),
        di.i_check.bc_ecc.get()
    );
    let _ = writeln!(
        w,
        "\tType: {kind}   Attr: {:#x}   Flags: {}",
        di.i_attr.get(),
        flags.join(" ")
    );
    let _ = writeln!(
        w,
        "\tDynamic Features: ({:#x}) {}",
        di.i_dyn_features.get(),
        dynf.join(" ")
    );
    if di.i_dyn_features.get() & ondisk::dyn_features::HAS_XATTR != 0 {
        let _ = writeln!(
            w,
            "\tExtended Attributes Block: {}  Extended Attributes Inline Size: {}",
            di.i_xattr_loc.get(),
            di.i_xattr_inline_size.get()
        );
    }
    let _ = writeln!(
        w,
        "\tUser: {}   Group: {}   Size: {}",
        di.i_uid.get(),
        di.i_gid.get(),
        di.i_size.get()
    );
    let _ = writeln!(
        w,
        "\tLinks: {}   Clusters: {}",
        di.links(),
        di.i_clusters.get()
    );
    for (name, secs, nsec) in [
        ("ctime", di.i_ctime.get(), di.i_ctime_nsec.get()),
        ("atime", di.i_atime.get(), di.i_atime_nsec.get()),
        ("mtime", di.i_mtime.get(), di.i_mtime_nsec.get()),
    ] {
        let _ = writeln!(
            w,
            "\t{name}: {secs:#x} {nsec:#x} -- {}",
            ctime_utc(secs as i64)
        );
    }
    let _ = writeln!(
        w,
        "\tdtime: {:#x} -- {}",
        di.i_dtime.get(),
        ctime_utc(di.i_dtime.get() as i64)
    );
    let _ = writeln!(
        w,
        "\tLast Extblk: {}   Orphan Slot: {}",
        di.i_last_eb_blk.get(),
        di.i_orphaned_slot.get()
    );
    let _ = writeln!(
        w,
        "\tSub Alloc Slot: {slot_s}   Sub Alloc Bit: {}",
        di.i_suballoc_bit.get()
    );
    let mut j = json!({
        "inode": blkno, "mode": mode, "type": kind, "generation": di.i_generation.get(),
        "fs_generation": di.i_fs_generation.get(), "flags": flags, "dyn_features": dynf,
        "xattr_loc": di.i_xattr_loc.get(), "xattr_inline_size": di.i_xattr_inline_size.get(),
        "uid": di.i_uid.get(), "gid": di.i_gid.get(), "size": di.i_size.get(), "links": di.links(),
        "clusters": di.i_clusters.get(), "ctime": di.i_ctime.get(), "atime": di.i_atime.get(),
        "mtime": di.i_mtime.get(), "dtime": di.i_dtime.get(), "last_eb_blk": di.i_last_eb_blk.get(),
        "suballoc_slot": slot, "suballoc_bit": di.i_suballoc_bit.get(),
        "crc32": di.i_check.bc_crc32e.get(), "ecc": di.i_check.bc_ecc.get(),
    });
    describe_id2(vol, &inode, &mut t, &mut j)?;
    ok(t, j)
}

/// The type-specific part of an inode: extent list, chain list, inline data,
/// local alloc, truncate log, superblock or journal fields.
fn describe_id2(vol: &Volume, inode: &Inode, t: &mut String, j: &mut Value) -> Result<()> {
    let di = inode.di();
    let f = di.i_flags.get();
    if f & inode_flags::BITMAP != 0 || f & inode_flags::CHAIN != 0 {
        let _ = writeln!(
            t,
            "\tBitmap Total: {}   Used: {}   Free: {}",
            di.bitmap_total(),
            di.bitmap_used(),
            di.bitmap_total().saturating_sub(di.bitmap_used())
        );
        j["bitmap_total"] = di.bitmap_total().into();
        j["bitmap_used"] = di.bitmap_used().into();
    }
    if f & inode_flags::JOURNAL != 0 {
        let _ = writeln!(
            t,
            "\tJournal Flags: {:#x}   Recovery Generation: {}",
            di.journal_flags(),
            di.journal_recovery_generation()
        );
        j["journal_flags"] = di.journal_flags().into();
        // OCFS2 decides recovery by the inode's dirty flag, not by jbd2's
        // s_start (mkfs.ocfs2 leaves s_start = 1 on a clean journal).
        let dirty = di.journal_flags() & ondisk::JOURNAL_DIRTY_FL != 0;
        j["journal_dirty"] = dirty.into();
        let extents = vol.extents(inode)?;
        if let Some(first) = vol.map_block(&extents, 0) {
            let blk = vol.read_block(first)?;
            let jsb = ocfs2_format::journal::JournalSuperblock::read_from_bytes_prefix(&blk);
            if let Some(jsb) = jsb.filter(ocfs2_format::journal::JournalSuperblock::is_valid) {
                let _ = writeln!(
                    t,
                    "\tJournal Superblock: Block {first}   Type: {}   Block Size: {}   Max Len: {}   First: {}",
                    jsb.h_blocktype.get(), jsb.s_blocksize.get(), jsb.s_maxlen.get(), jsb.s_first.get()
                );
                let _ = writeln!(
                    t,
                    "\tJournal Sequence: {}   Start: {}   Needs Recovery: {}",
                    jsb.s_sequence.get(),
                    jsb.s_start.get(),
                    if dirty { "yes" } else { "no" }
                );
                j["jbd2"] = json!({ "blkno": first, "blocktype": jsb.h_blocktype.get(), "blocksize": jsb.s_blocksize.get(),
                    "maxlen": jsb.s_maxlen.get(), "first": jsb.s_first.get(), "sequence": jsb.s_sequence.get(),
                    "start": jsb.s_start.get(), "needs_recovery": dirty,
                    "feature_compat": jsb.s_feature_compat.get(), "feature_incompat": jsb.s_feature_incompat.get(),
                    "feature_ro_compat": jsb.s_feature_ro_compat.get() });
            } else {
                let _ = writeln!(
                    t,
                    "\tJournal Superblock: Block {first}   (no jbd2 signature)"
                );
                j["jbd2"] = Value::Null;
            }
        }
    }
    if f & inode_flags::SUPER_BLOCK != 0 {
        return Ok(());
    }
    if f & inode_flags::CHAIN != 0 {
        let (cl, recs) = inode.chain_list()?;
        let _ = writeln!(
            t,
            "\tClusters per Group: {}   Bits per Cluster: {}",
            cl.cl_cpg.get(),
            cl.cl_bpc.get()
        );
        let _ = writeln!(
            t,
            "\tCount: {}   Next Free Rec: {}",
            cl.cl_count.get(),
            cl.cl_next_free_rec.get()
        );
        let _ = writeln!(t, "\t##   Total        Used         Free         Block#");
        let mut chains = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            let used = r.c_total.get().saturating_sub(r.c_free.get());
            let _ = writeln!(
                t,
                "\t{:<4} {:<12} {:<12} {:<12} {}",
                i,
                r.c_total.get(),
                used,
                r.c_free.get(),
                r.c_blkno.get()
            );
            chains.push(json!({ "total": r.c_total.get(), "free": r.c_free.get(), "blkno": r.c_blkno.get() }));
        }
        j["chains"] = Value::Array(chains);
        return Ok(());
    }
    if f & inode_flags::LOCAL_ALLOC != 0 {
        let la = ocfs2_format::ondisk::LocalAlloc::read_from_bytes_prefix(inode.id2());
        if let Some(la) = la {
            let _ = writeln!(
                t,
                "\tLocal Bitmap Offset: {}   Size: {}",
                la.la_bm_off.get(),
                la.la_size.get()
            );
            j["local_alloc"] = json!({ "bm_off": la.la_bm_off.get(), "size": la.la_size.get() });
        }
        return Ok(());
    }
    if f & inode_flags::DEALLOC != 0 {
        if let Some(tl) = ocfs2_format::ondisk::TruncateLog::read_from_bytes_prefix(inode.id2()) {
            let _ = writeln!(
                t,
                "\tTotal Records: {}   Used: {}",
                tl.tl_count.get(),
                tl.tl_used.get()
            );
            j["truncate_log"] = json!({ "count": tl.tl_count.get(), "used": tl.tl_used.get() });
        }
        return Ok(());
    }
    if inode.is_inline() {
        let d = inode.inline_data()?;
        let _ = writeln!(
            t,
            "\tInline Data Max: {}   Used: {}",
            ondisk::max_inline_data(vol.block_size() as usize),
            d.len()
        );
        j["inline_size"] = d.len().into();
        return Ok(());
    }
    if !inode.has_extent_list() {
        return Ok(());
    }
    let (el, recs) = inode.extent_list()?;
    let depth = el.l_tree_depth.get();
    let _ = writeln!(
        t,
        "\tTree Depth: {}   Count: {}   Next Free Rec: {}",
        depth,
        el.l_count.get(),
        el.l_next_free_rec.get()
    );
    let _ = writeln!(t, "\t## Offset        Clusters       Block#          Flags");
    let mut list = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        let flags = if depth == 0 { r.flags() } else { 0 };
        let _ = writeln!(
            t,
            "\t{:<2} {:<13} {:<14} {:<15} {:#x}",
            i,
            r.e_cpos.get(),
            r.clusters(depth),
            r.e_blkno.get(),
            flags
        );
        list.push(json!({ "cpos": r.e_cpos.get(), "clusters": r.clusters(depth), "blkno": r.e_blkno.get(), "flags": flags }));
    }
    j["tree_depth"] = depth.into();
    j["extents"] = Value::Array(list);
    if depth > 0 {
        let (leaves, blocks) = vol.extent_tree(inode)?;
        let ebs: Vec<String> = blocks.iter().map(u64::to_string).collect();
        let _ = writeln!(t, "\tExtent Blocks: {}", ebs.join(" "));
        let _ = writeln!(t, "\tLeaf Extents: {}", leaves.len());
        let _ = writeln!(t, "\t## Offset        Clusters       Block#          Flags");
        for (i, e) in leaves.iter().enumerate() {
            let _ = writeln!(
                t,
                "\t{:<2} {:<13} {:<14} {:<15} {:#x}",
                i, e.cpos, e.clusters, e.blkno, e.flags
            );
        }
        j["extent_blocks"] = blocks.into();
        j["leaf_extents"] = Value::Array(
            leaves.iter().map(|e| json!({ "cpos": e.cpos, "clusters": e.clusters, "blkno": e.blkno, "flags": e.flags })).collect(),
        );
    }
    Ok(())
}

/// Read a struct from the front of a byte slice (helper trait).
trait PrefixRead: Sized {
    fn read_from_bytes_prefix(b: &[u8]) -> Option<Self>;
}
impl<T: zerocopy::FromBytes> PrefixRead for T {
    fn read_from_bytes_prefix(b: &[u8]) -> Option<Self> {
        T::read_from_prefix(b).ok().map(|(v, _)| v)
    }
}

fn parse_mmp_set(slot: &str, val: &str, rest: &[&str], force: bool) -> Result<Request, String> {
    let bad = |m: &str| Err(format!("mmp set: {m}"));
    let Ok(slot) = slot.parse::<u16>() else {
        return bad("SLOT is a number");
    };
    let Some(value) = ocfs2_format::slotmap::parse_value(val) else {
        return bad(
            "VALUE is a 32-bit number (0x.. for hex) or empty, clean, fsck, cluster, nocluster",
        );
    };
    let node = match rest.first() {
        Some(n) => match n.parse() {
            Ok(n) => Some(n),
            Err(_) => return bad("NODE is a number"),
        },
        None => None,
    };
    Ok(Request::MmpSet {
        slot,
        value,
        node,
        force,
    })
}
