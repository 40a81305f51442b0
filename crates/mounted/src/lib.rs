//! `mounted.ocfs2-mmp`: which OCFS2 volumes are here, and who holds each,
//! the way mounted.ocfs2 answers it. With no device, every block device
//! of /proc/partitions is probed; with devices or image files, only those.
//! `-d` (the default) reads each superblock: label, UUID, stack, MMP on or
//! off, no waiting. `-f` also reads each slot map and watches it (and on
//! clustered volumes the o2hb heartbeat) as the kernel's MMP check does,
//! for every volume at once: one wait, the longest, not one per volume.

mod state;

use clap::Parser;
use ocfs2_format::features::incompat;
use ocfs2_format::{OpenMode, Volume};
use ocfs2_toolkit::exit;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use tabled::settings::Style;
use tabled::{Table, Tabled};

pub const PROG: &str = "mounted.ocfs2-mmp";

/// List OCFS2 volumes and who holds each.
#[derive(Debug, Parser)]
#[command(name = PROG, version, about, long_about = None)]
pub struct Cli {
    /// Quick: each volume's superblock only (label, UUID, stack, MMP), no
    /// waiting (the default)
    #[arg(short = 'd', long = "detect", conflicts_with = "full")]
    pub detect: bool,

    /// Full: also who holds each volume (slot map and heartbeat, watched
    /// for the MMP wait; all volumes at once)
    #[arg(short = 'f', long = "full")]
    pub full: bool,

    /// Heartbeat window on clustered volumes, in seconds (5 to 600; default:
    /// the nodes' dead threshold, at least 62 s)
    #[arg(long = "hb-window", value_name = "SECONDS", value_parser = ocfs2_toolkit::parse_hb_window)]
    pub hb_window: Option<u32>,

    /// One JSON object on standard output
    #[arg(long)]
    pub json: bool,

    /// Devices or image files (default: every block device)
    #[arg(value_name = "DEVICE")]
    pub devices: Vec<PathBuf>,
}

/// One device looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub device: String,
    /// Whether the device holds an OCFS2 volume.
    pub ocfs2: bool,
    pub label: String,
    pub uuid: String,
    /// `local`, or the cluster stack (`o2cb`, or the userspace stack's name).
    pub stack: String,
    pub mmp: bool,
    /// `s_mmp_update_interval` (the wait of `-f` follows from it).
    #[serde(skip)]
    pub interval: u16,
    /// An OCFS2 signature whose superblock cannot be used: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// With `-f`: free, mounted, fsck running, stale, cannot tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<state::State>,
}

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "DEVICE")]
    device: String,
    #[tabled(rename = "STACK")]
    stack: String,
    #[tabled(rename = "MMP")]
    mmp: String,
    #[tabled(rename = "UUID")]
    uuid: String,
    #[tabled(rename = "LABEL")]
    label: String,
}

#[derive(Tabled)]
struct FullRow {
    #[tabled(rename = "DEVICE")]
    device: String,
    #[tabled(rename = "MMP")]
    mmp: String,
    #[tabled(rename = "STATE")]
    state: String,
    #[tabled(rename = "LABEL")]
    label: String,
}

pub fn main() -> ExitCode {
    let cli: Cli = match ocfs2_toolkit::parse_args(exit::USAGE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    ExitCode::from(run(&cli))
}

/// What a device holds, from its superblock; Err when it cannot be read.
fn look(path: &std::path::Path) -> Result<Entry, String> {
    let dev =
        ocfs2_format::FileDevice::open(path, OpenMode::default()).map_err(|e| e.to_string())?;
    let device = path.display().to_string();
    match Volume::open(Box::new(dev)) {
        Ok(vol) => Ok(describe(&device, &vol)),
        Err(e @ (ocfs2_format::Error::Read { .. } | ocfs2_format::Error::Io { .. })) => {
            Err(format!("{device}: {e}"))
        }
        Err(ocfs2_format::Error::NoSuperblock) => Ok(Entry {
            device,
            ocfs2: false,
            label: String::new(),
            uuid: String::new(),
            stack: String::new(),
            mmp: false,
            interval: 0,
            problem: None,
            state: None,
        }),
        // A signature whose superblock does not hold together: listed, with
        // what is wrong.
        Err(e) => Ok(Entry {
            device,
            ocfs2: true,
            label: String::new(),
            uuid: String::new(),
            stack: String::new(),
            mmp: false,
            interval: 0,
            problem: Some(e.to_string()),
            state: None,
        }),
    }
}

fn describe(device: &str, vol: &Volume) -> Entry {
    let f = vol.features();
    let sb = vol.sb();
    let cstr = ocfs2_toolkit::cstr_text;
    let stack = if f.has_incompat(incompat::LOCAL_MOUNT) {
        "local".to_string()
    } else if f.has_incompat(incompat::USERSPACE_STACK) {
        cstr(&sb.s_cluster_info.ci_stack)
    } else {
        "o2cb".to_string()
    };
    Entry {
        device: device.to_string(),
        ocfs2: true,
        label: cstr(&vol.label()),
        uuid: vol.uuid_hex(),
        stack,
        mmp: f.has_incompat(incompat::MMP),
        interval: sb.s_mmp_update_interval.get(),
        problem: None,
        state: None,
    }
}

pub fn run(cli: &Cli) -> u8 {
    let scan = cli.devices.is_empty();
    let paths = if scan {
        ocfs2_format::resolve::candidates()
    } else {
        cli.devices.clone()
    };
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for p in &paths {
        match look(p) {
            // A scan lists OCFS2 volumes only; named devices are all shown.
            Ok(e) if e.ocfs2 || !scan => entries.push(e),
            Ok(_) => {}
            Err(e) if scan => {
                // Devices a scan cannot open (no medium, busy) are not errors.
                let _ = e;
            }
            Err(e) => errors.push(e),
        }
    }
    if cli.full {
        state::fill(&mut entries, cli.hb_window, cli.json);
    }
    let found = entries.iter().filter(|e| e.ocfs2).count();
    for e in &errors {
        eprintln!("{PROG}: {e}");
    }
    // A device named that holds no OCFS2 volume is listed, and said once.
    for e in entries.iter().filter(|e| !e.ocfs2) {
        eprintln!(
            "{PROG}: {}: no OCFS2 volume (no OCFS2 superblock)",
            e.device
        );
    }
    let code = if !errors.is_empty() {
        exit::OPERATIONAL
    } else if found == 0 {
        exit::MMP_IN_USE // 1: no OCFS2 volume
    } else {
        exit::OK
    };
    if cli.json {
        println!(
            "{}",
            serde_json::json!({ "volumes": entries, "errors": errors, "ocfs2_volumes": found, "exit_code": code })
        );
    } else if cli.full {
        let rows: Vec<FullRow> = entries
            .iter()
            .map(|e| FullRow {
                device: e.device.clone(),
                mmp: mmp_word(e),
                state: e.state.as_ref().map_or("-".into(), |s| s.text.clone()),
                label: label_cell(e),
            })
            .collect();
        print_table(Table::new(rows), entries.is_empty());
    } else {
        let rows: Vec<Row> = entries
            .iter()
            .map(|e| Row {
                device: e.device.clone(),
                stack: if e.ocfs2 { e.stack.clone() } else { "-".into() },
                mmp: mmp_word(e),
                uuid: if e.ocfs2 { e.uuid.clone() } else { "-".into() },
                label: label_cell(e),
            })
            .collect();
        print_table(Table::new(rows), entries.is_empty());
    }
    code
}

fn label_cell(e: &Entry) -> String {
    match &e.problem {
        Some(p) => format!("[cannot read the superblock: {p}]"),
        None => e.label.clone(),
    }
}

fn mmp_word(e: &Entry) -> String {
    match (e.ocfs2, e.mmp) {
        (false, _) => "not OCFS2".into(),
        (true, _) if e.problem.is_some() => "?".into(),
        (true, true) => "on".into(),
        (true, false) => "off".into(),
    }
}

fn print_table(mut t: Table, empty: bool) {
    if empty {
        return;
    }
    t.with(Style::blank());
    println!("{t}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_valid() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
