//! `tunefs.ocfs2-mmp`: turn MMP on and off, tune its interval, clear a stale
//! marker, and query a volume, safely: every change runs the MMP check and
//! holds the volume (SEQ_FSCK in slot 0) while it writes.

use anyhow::{bail, Context, Result};
use clap::Parser;
use ocfs2_format::features::{self, incompat};
use ocfs2_format::slotmap::{value, Format, MmpState};
use ocfs2_format::{OpenMode, Volume};
use ocfs2_mmp::engine::{EngineError, Guard, SlotIo, VolumeSlots};
use ocfs2_mmp::{Observer, SystemClock};
use ocfs2_toolkit::WaitReporter;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

pub const PROG: &str = "tunefs.ocfs2-mmp";

/// Exit codes.
pub mod exit {
    /// Done (or nothing to do).
    pub const OK: u8 = 0;
    /// Refused: the volume is in use (mounted here, MMP says in use, fsck
    /// running), or the change is not possible; nothing was written.
    pub const REFUSED: u8 = 1;
    /// Usage error.
    pub const USAGE: u8 = 2;
    /// Failed: the device cannot be read or written, or holds no OCFS2
    /// volume (or a damaged one); the message says what was done.
    pub const FAILED: u8 = 8;
    /// The user declined at the prompt.
    pub const CANCELLED: u8 = 32;
}

/// Change the MMP settings of an OCFS2 volume, or query it.
#[derive(Debug, Parser)]
#[command(name = PROG, version, about, long_about = None)]
pub struct Cli {
    /// Turn multiple mount protection on (converts nothing: the volume must use the extended slot map)
    #[arg(long = "enable-mmp", conflicts_with = "disable_mmp")]
    pub enable_mmp: bool,
    /// Turn multiple mount protection off, leaving only values older kernels read correctly
    #[arg(long = "disable-mmp")]
    pub disable_mmp: bool,
    /// Features to change: mmp or nommp (other features: use tunefs.ocfs2)
    #[arg(long = "fs-features", value_name = "LIST")]
    pub fs_features: Option<String>,
    /// Seconds between the kernel's MMP updates (1..=300)
    #[arg(
        long = "mmp-update-interval",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub mmp_update_interval: Option<String>,
    /// Reset a stale SEQ_FSCK, a dead sequence or an unknown value, after watching one wait window
    #[arg(long = "clear-mmp")]
    pub clear_mmp: bool,
    /// With --clear-mmp: skip the watch (say so), for when the operator knows no node is up
    #[arg(long = "force")]
    pub force: bool,
    /// Seconds to watch the o2hb heartbeat of clustered nodes (1..=600; default: their dead threshold, at least 62)
    #[arg(long = "hb-window", value_name = "SECONDS", value_parser = ocfs2_toolkit::parse_hb_window)]
    pub hb_window: Option<u32>,
    /// Query: %B block size, %T cluster size, %N slots, %R root, %Y system dir, %P first cluster group, %V label, %U UUID, %M %H %O feature names, %I MMP interval, %A MMP on/off, %S slot map
    #[arg(short = 'Q', long = "query", value_name = "FORMAT")]
    pub query: Option<String>,
    /// Do not ask for confirmation
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// Show what would change; write nothing
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Quiet: only errors
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// The volume: a path, LABEL=label or UUID=uuid
    #[arg(value_name = "DEVICE")]
    pub device: String,
}

/// What the command line asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub mmp: Option<bool>,
    pub interval: Option<u16>,
    pub clear: bool,
    pub force: bool,
}

fn parse_interval(s: &str) -> Result<u16, String> {
    ocfs2_mmp::parse_update_interval(s, false)
}

/// Validate the command line.
pub fn request(cli: &Cli) -> Result<Request, String> {
    let mut r = Request {
        clear: cli.clear_mmp,
        force: cli.force,
        ..Default::default()
    };
    if cli.enable_mmp {
        r.mmp = Some(true);
    }
    if cli.disable_mmp {
        r.mmp = Some(false);
    }
    if let Some(list) = &cli.fs_features {
        for raw in list.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let want = match raw {
                "mmp" => true,
                "nommp" => false,
                other => {
                    let name = other.strip_prefix("no").unwrap_or(other);
                    return Err(if features::by_name(name).is_some() {
                        format!("feature '{other}': this tool changes only mmp; use tunefs.ocfs2 --fs-features={other}")
                    } else {
                        format!("unknown feature '{other}'")
                    });
                }
            };
            if r.mmp.is_some_and(|m| m != want) {
                return Err("mmp is both turned on and off".into());
            }
            r.mmp = Some(want);
        }
    }
    if let Some(s) = &cli.mmp_update_interval {
        r.interval = Some(parse_interval(s)?);
        if r.mmp == Some(false) {
            return Err("--mmp-update-interval with --disable-mmp makes no sense".into());
        }
    }
    if cli.force && !cli.clear_mmp {
        return Err("--force goes with --clear-mmp".into());
    }
    let changes = r.mmp.is_some() || r.interval.is_some() || r.clear;
    if cli.query.is_some() && changes {
        return Err("-Q queries; it does not combine with changes".into());
    }
    if !changes && cli.query.is_none() {
        return Err("nothing to do: give --enable-mmp, --disable-mmp, --mmp-update-interval, --clear-mmp or -Q".into());
    }
    Ok(r)
}

pub fn main() -> ExitCode {
    let cli: Cli = match ocfs2_toolkit::parse_args(exit::USAGE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let req = match request(&cli) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{PROG}: {}: {e}", cli.device);
            return ExitCode::from(exit::USAGE);
        }
    };
    ocfs2_toolkit::signals::install();
    match run(&cli, &req) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = match e.downcast_ref::<Refusal>() {
                Some(_) => exit::REFUSED,
                None => match e.downcast_ref::<EngineError>() {
                    Some(
                        EngineError::InUse(_)
                        | EngineError::Raced { .. }
                        | EngineError::ForeignWrite { .. },
                    ) => exit::REFUSED,
                    Some(EngineError::Interrupted(s)) => ocfs2_toolkit::signals::exit_status(*s),
                    _ => exit::FAILED,
                },
            };
            let e = e.context(cli.device.clone());
            ocfs2_toolkit::print_error(PROG, &e);
            ExitCode::from(code)
        }
    }
}

/// A refusal: nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse<T>(msg: impl Into<String>) -> Result<T> {
    Err(Refusal(msg.into()).into())
}

fn query(vol: &Volume, fmt: &str) -> Result<String> {
    let sb = vol.sb();
    let f = vol.features();
    let names = f.names();
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('B') => out.push_str(&vol.block_size().to_string()),
                Some('T') => out.push_str(&vol.cluster_size().to_string()),
                Some('N') => out.push_str(&vol.max_slots().to_string()),
                Some('R') => out.push_str(&vol.root_blkno().to_string()),
                Some('Y') => out.push_str(&vol.system_dir_blkno().to_string()),
                Some('P') => out.push_str(&sb.s_first_cluster_group.get().to_string()),
                Some('V') => out.push_str(&String::from_utf8_lossy(&vol.label())),
                Some('U') => out.push_str(&vol.uuid_hex()),
                Some('M') => out.push_str(&names.compat.join(" ")),
                Some('H') => out.push_str(&names.incompat.join(" ")),
                Some('O') => out.push_str(&names.ro_compat.join(" ")),
                Some('I') => out.push_str(&sb.s_mmp_update_interval.get().to_string()),
                Some('A') => out.push_str(if f.has_incompat(incompat::MMP) {
                    "enabled"
                } else {
                    "disabled"
                }),
                Some('S') => out.push_str(vol.slot_map_format().name()),
                Some('%') => out.push('%'),
                Some(other) => bail!("unknown query specifier %{other}"),
                None => bail!("query format ends in %"),
            },
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

fn confirm(cli: &Cli, what: &str) -> Result<bool> {
    if cli.yes || !std::io::stdin().is_terminal() {
        return Ok(true);
    }
    print!("{what}\nProceed (y/N): ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    // std retries the read on EINTR: a Ctrl-C at the prompt shows up here.
    if let Some(sig) = ocfs2_toolkit::signals::pending() {
        return Err(EngineError::Interrupted(sig).into());
    }
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// The planned change, for -n and the confirmation.
#[derive(Debug, Default)]
struct Plan {
    enable: bool,
    disable: bool,
    interval: Option<(u16, u16)>,
    notes: Vec<String>,
}

pub fn run(cli: &Cli, req: &Request) -> Result<u8> {
    let path = ocfs2_format::resolve::resolve(&cli.device)?;
    if let Some(q) = &cli.query {
        let (_, vol) = ocfs2_format::open_volume(&cli.device, OpenMode::default())?;
        print!("{}", query(&vol, q)?);
        return Ok(exit::OK);
    }
    if let Some(at) = ocfs2_format::probe::mounted_at(&path) {
        return refuse(format!("mounted at {at}: unmount it first"));
    }
    let write = !cli.dry_run;
    let dev = ocfs2_format::FileDevice::open(
        &path,
        OpenMode {
            write,
            exclusive: write,
        },
    )
    .map_err(|e| match e {
        ocfs2_format::Error::Open { ref source, .. } if source.raw_os_error() == Some(16) => {
            anyhow::Error::new(Refusal(
                "in use by the system (exclusive open refused): is it mounted?".into(),
            ))
        }
        other => anyhow::Error::new(other),
    })?;
    if let Some(w) = ocfs2_format::BlockIo::direct_warning(&dev) {
        eprintln!("{PROG}: warning: {w}");
    }
    let vol = Volume::open(Box::new(dev))?;
    let unknown = vol.features().unknown();
    if unknown.incompat != 0 || unknown.ro_compat != 0 {
        return refuse(format!(
            "unknown features (incompat {:#x}, ro_compat {:#x}): this tool does not change volumes it does not understand",
            unknown.incompat, unknown.ro_compat
        ));
    }
    let f = vol.features();
    if f.has_incompat(incompat::TUNEFS_INPROG | incompat::RESIZE_INPROG) {
        return refuse("an earlier tunefs or resize did not finish (aborted-tunefs/aborted-resize): run fsck.ocfs2 first");
    }
    let mmp_on = f.has_incompat(incompat::MMP);
    let stored = vol.sb().s_mmp_update_interval.get();
    let mut say = WaitReporter::new(PROG, cli.quiet);

    if req.clear {
        return clear_mmp(cli, req, &vol, &mut say);
    }

    // What would change.
    let mut plan = Plan::default();
    let want_on = req.mmp.unwrap_or(mmp_on);
    if req.interval.is_some() && !want_on {
        return refuse(
            "MMP is not enabled on this volume: add --enable-mmp to set its update interval",
        );
    }
    if want_on && !mmp_on {
        if vol.slot_map_format() != Format::Extended {
            return refuse(
                "the volume uses the old slot map, and MMP needs the extended one: convert it first with \
                 tunefs.ocfs2 --fs-features=extended-slotmap (while MMP is off, ocfs2-tools can open the volume)",
            );
        }
        plan.enable = true;
    }
    if !want_on && mmp_on {
        plan.disable = true;
    }
    if want_on {
        let new = req.interval.unwrap_or(if (1..=300).contains(&stored) {
            stored
        } else {
            ocfs2_mmp::DEFAULT_UPDATE_INTERVAL
        });
        if !(1..=300).contains(&stored) && (mmp_on || stored != 0) {
            plan.notes.push(format!("the stored MMP update interval {stored} is out of range (1..=300): replacing it with {new}"));
        }
        if new != stored {
            plan.interval = Some((stored, new));
        }
    }
    if !plan.enable && !plan.disable && plan.interval.is_none() {
        if !cli.quiet {
            println!(
                "Nothing to change: MMP is {}, update interval {stored} s",
                if mmp_on { "enabled" } else { "disabled" }
            );
        }
        return Ok(exit::OK);
    }
    let mut lines = Vec::new();
    if plan.enable {
        lines.push("enable MMP (incompat 0x10000)".to_string());
    }
    if plan.disable {
        lines.push("disable MMP; leave in the slot map only values older kernels and ocfs2-tools read correctly".to_string());
    }
    if let Some((a, b)) = plan.interval {
        lines.push(format!("MMP update interval {a} -> {b} s"));
    }
    let backups = vol.present_backups()?;
    lines.push(format!(
        "write the superblock and {} backup superblock(s)",
        backups.len()
    ));
    for n in &plan.notes {
        eprintln!("{PROG}: {n}");
    }
    if cli.dry_run {
        println!("Would (dry run, nothing written):");
        for l in &lines {
            println!("  {l}");
        }
        return Ok(exit::OK);
    }
    if !confirm(cli, &format!("{}: {}", cli.device, lines.join("; ")))? {
        eprintln!("{PROG}: cancelled; nothing written");
        return Ok(exit::CANCELLED);
    }

    // Safety: on an MMP volume, hold it with SEQ_FSCK while we write; on a
    // volume without MMP, refuse while any slot is held (a stock kernel's flag).
    let slots = VolumeSlots::new(&vol).context("locating the slot map")?;
    let map = slots.read()?;
    let guard = if mmp_on {
        let g = Guard::acquire(
            &slots,
            stored,
            ocfs2_mmp::engine::hb_options(&vol, cli.hb_window),
            value::SEQ_FSCK,
            &mut SystemClock,
            &mut say,
            &ocfs2_toolkit::signals::pending,
        )?;
        Some(g)
    } else {
        if let Some(s) = map.slots.iter().find(|s| s.legacy_in_use(map.format)) {
            return refuse(format!(
                "slot {} is held ({:#010x}, node {}): the volume is mounted somewhere, or a node crashed (recover it first)",
                s.index, s.raw, s.node
            ));
        }
        None
    };
    if let Some(sig) = ocfs2_toolkit::signals::pending() {
        drop(guard);
        return Err(EngineError::Interrupted(sig).into());
    }

    let mut sb = *vol.sb();
    if plan.enable {
        sb.s_feature_incompat
            .set(sb.s_feature_incompat.get() | incompat::MMP);
    }
    if plan.disable {
        sb.s_feature_incompat
            .set(sb.s_feature_incompat.get() & !incompat::MMP);
    }
    if let Some((_, b)) = plan.interval {
        sb.s_mmp_update_interval.set(b);
    }
    let write = || -> Result<Vec<u64>> {
        // Each batch of writes starts from a re-read of slot 0: if the
        // marker is gone, another node has the volume and nothing is written.
        let verify = || guard.as_ref().map_or(Ok(()), Guard::verify);
        if plan.disable {
            // Other slots: SEQ_CLEAN (read as "in use" by older tools) -> 0;
            // a dead mount's sequence -> 1 (a stock kernel's "held", so its
            // journal is still recovered).
            verify()?;
            // Slots 1.. share slot 0's sector: written while the keep-alive
            // waits, so neither read-modify-write undoes the other.
            let others = || -> Result<(), EngineError> {
                for s in map.slots.iter().skip(1) {
                    let new = match MmpState::decode(s.raw) {
                        MmpState::Clean => value::EMPTY,
                        MmpState::Sequence(_) => value::LEGACY_VALID,
                        _ => continue,
                    };
                    if new != s.raw {
                        slots.write_if(s.index, s.raw, new, s.node)?;
                    }
                }
                Ok(())
            };
            match &guard {
                Some(g) => g.exclusive(others)?,
                None => others()?,
            }
        }
        verify()?;
        vol.write_super_everywhere(&sb)
            .context("writing the superblock")
    };
    // Slot 0 back to what it meant before: 0, or a dead mount's mark (a
    // dead clustered node's VALID_CLUSTER stays: its journal still needs a
    // clustered mount; a stock kernel reads its low byte as held). Decided
    // before the writes: a failure part-way (the primary may be written
    // with MMP off) puts back the same value as success.
    let restore = guard.as_ref().map(|g| {
        let v = g.restore_value();
        match MmpState::decode(v) {
            MmpState::Sequence(_) if plan.disable => value::LEGACY_VALID,
            _ => v,
        }
    });
    let written = match &guard {
        Some(g) => g.hold(write),
        None => write(),
    };
    let put_back = guard.map(|g| g.release_to(restore.unwrap_or(value::EMPTY)));
    let written = written?;
    if !cli.quiet {
        for l in &lines {
            println!("{l}: done");
        }
        println!("Superblock and {} backup(s) written", written.len());
    }
    if let Some(Err(e)) = put_back {
        // The change is on disk by now: say so, then why slot 0 was left.
        return Err(anyhow::Error::new(e)
            .context("the change is written, but slot 0 could not be put back"));
    }
    Ok(exit::OK)
}

/// `--clear-mmp`: watch one wait window, then reset what is stale.
fn clear_mmp(cli: &Cli, req: &Request, vol: &Volume, say: &mut WaitReporter) -> Result<u8> {
    let mmp_on = vol.features().has_incompat(incompat::MMP);
    let slots = VolumeSlots::new(vol).context("locating the slot map")?;
    let before = slots.read()?;
    // Without MMP only SEQ_FSCK is ours to clear: the marker of a tunefs
    // --disable-mmp killed after its superblock write; other values are a
    // stock kernel's.
    let stale: Vec<_> = before
        .slots
        .iter()
        .filter(|s| {
            if mmp_on {
                s.raw != value::EMPTY
            } else {
                before.format == Format::Extended && s.raw == value::SEQ_FSCK
            }
        })
        .copied()
        .collect();
    if !mmp_on && stale.is_empty() {
        return refuse("MMP is not enabled on this volume: there is no MMP marker to clear");
    }
    if stale.is_empty() {
        if !cli.quiet {
            println!("Nothing to clear: every slot is empty or clean");
        }
        return Ok(exit::OK);
    }
    let hb = ocfs2_mmp::engine::hb_options(vol, cli.hb_window);
    // Clustered values have no sequence: only the heartbeat of the node
    // they name can prove it dead.
    let clustered =
        |raw: u32| raw == value::VALID_CLUSTER || (raw == value::LEGACY_VALID && hb.is_some());
    if !req.force {
        // Values nothing updates while their holder lives: VALID_NOCLUSTER,
        // SEQ_CLEAN (a read-only mount), values outside the protocol, and a
        // clustered value no heartbeat covers. (SEQ_FSCK is watched: a live
        // holder moves its node field every update interval.)
        if let Some(s) = stale.iter().find(|s| {
            matches!(
                MmpState::decode(s.raw),
                MmpState::Nocluster | MmpState::Clean | MmpState::Unknown(_)
            ) || (clustered(s.raw) && hb.is_none())
        }) {
            return refuse(format!(
                "slot {} holds {:#010x} ({}), which no node updates and no heartbeat covers: watching cannot prove it \
                 dead; if you are sure no node has the volume mounted, use --clear-mmp --force",
                s.index,
                s.raw,
                MmpState::decode(s.raw).name()
            ));
        }
    }
    // A dead clustered node's journal is replayed by the kernel only while
    // its slot is held: freeing the slot first would leave the log to be
    // replayed later, by whichever node takes the slot, over newer metadata.
    for s in stale.iter().filter(|s| clustered(s.raw)) {
        let dirty = vol
            .journal_dirty(s.index)
            .with_context(|| format!("reading journal:{:04}", s.index))?;
        if dirty && !req.force {
            return refuse(format!(
                "slot {} holds {:#010x} for node {} and journal:{:04} is dirty: a clustered mount must replay it \
                 first (mount the volume clustered on any node: the kernel replays the dead node's journal and \
                 frees its slot); clearing the slot now would leave that log to be replayed later over newer \
                 metadata",
                s.index, s.raw, s.node, s.index
            ));
        }
        if dirty {
            println!(
                "--force: slot {}'s journal is dirty; it will be replayed when a node next takes slot {}",
                s.index, s.index
            );
        }
    }
    for s in &stale {
        println!(
            "Found slot {}: {:#010x} ({})",
            s.index,
            s.raw,
            MmpState::decode(s.raw).describe()
        );
    }
    let interval = vol.sb().s_mmp_update_interval.get();
    if req.force {
        println!("--force: not watching whether any node updates these values");
    } else {
        let watch_hb = hb.is_some() && stale.iter().any(|s| clustered(s.raw));
        let mut tracker = if watch_hb {
            Some(ocfs2_mmp::liveness::Tracker::new(
                slots.heartbeat().context("reading the heartbeat area")?,
            ))
        } else {
            None
        };
        let window = match (&tracker, &hb) {
            (Some(t), Some(h)) => ocfs2_mmp::liveness::window_for(h, t),
            _ => 0,
        };
        let wt = ocfs2_mmp::wait_time(interval).max(window);
        say.waiting(
            wt,
            &if watch_hb {
                format!("watching the slot map and the o2hb heartbeat of every node for {wt} s (one dead threshold) to prove no node is live")
            } else {
                "watching one full wait window to prove no node updates the slot map".to_string()
            },
        );
        ocfs2_mmp::each_second(wt, &mut SystemClock, |at| -> Result<_> {
            if let Some(sig) = ocfs2_toolkit::signals::pending() {
                return Err(EngineError::Interrupted(sig).into());
            }
            if let Some(t) = tracker.as_mut() {
                t.sample(at, slots.heartbeat().context("reading the heartbeat area")?);
            }
            say.tick(wt.saturating_sub(at));
            Ok(std::ops::ControlFlow::<()>::Continue(()))
        })?;
        let after = slots.read()?;
        for (b, a) in before.slots.iter().zip(&after.slots) {
            if (b.raw, b.node) != (a.raw, a.node) {
                return refuse(format!(
                    "slot {} moved from {:#010x} (node {}) to {:#010x} (node {}) during the watch: {}; not clearing",
                    b.index,
                    b.raw,
                    b.node,
                    a.raw,
                    a.node,
                    if (b.raw, a.raw) == (value::SEQ_FSCK, value::SEQ_FSCK) {
                        "the tool holding it is alive"
                    } else {
                        "a node is live"
                    }
                ));
            }
        }
        if let Some(t) = &tracker {
            let holders = ocfs2_mmp::slot_holders(&before);
            let r = t.report(window, wt, &holders);
            let live = r.live();
            if !live.is_empty() {
                return refuse(format!(
                    "node(s) {} heartbeat on this volume (o2hb blocks moved during the watch): in use; not clearing",
                    live.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                ));
            }
            for s in stale.iter().filter(|s| clustered(s.raw)) {
                let state = u16::try_from(s.node)
                    .ok()
                    .and_then(|n| r.node(n))
                    .map(|n| n.state);
                if state != Some(ocfs2_mmp::liveness::NodeState::Silent) {
                    return refuse(format!(
                        "slot {} holds {:#010x} for node {}, which never heartbeated on this volume: its liveness \
                         cannot be seen here (another heartbeat mode?); if you are sure no node has the volume \
                         mounted, use --clear-mmp --force",
                        s.index, s.raw, s.node
                    ));
                }
                println!(
                    "Slot {}: node {} stayed silent for {wt} s: dead (its journal is replayed by the next mount \
                     that takes slot {})",
                    s.index, s.node, s.index
                );
            }
        }
    }
    if cli.dry_run {
        println!(
            "Would reset {} slot(s) to 0 (dry run, nothing written)",
            stale.len()
        );
        return Ok(exit::OK);
    }
    if !confirm(
        cli,
        &format!("{}: reset {} slot(s) to 0", cli.device, stale.len()),
    )? {
        eprintln!("{PROG}: cancelled; nothing written");
        return Ok(exit::CANCELLED);
    }
    for s in &stale {
        // As watched, node field included: a holder that finished while the
        // question was asked, and a new one that took its place, differ.
        // A tool's SEQ_FSCK carries a node field of its own making (its
        // keep-alive counter): that goes too. Other values keep their node.
        let node = if s.raw == value::SEQ_FSCK { 0 } else { s.node };
        slots.write_if_entry(s.index, (s.raw, s.node), value::EMPTY, node)?;
        println!("Slot {}: overrode {:#010x} with 0", s.index, s.raw);
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec![PROG];
        v.extend_from_slice(args);
        v.push("dev");
        Cli::try_parse_from(v).unwrap()
    }

    #[test]
    fn cli_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn requests() {
        assert_eq!(request(&cli(&["--enable-mmp"])).unwrap().mmp, Some(true));
        assert_eq!(
            request(&cli(&["--fs-features=nommp"])).unwrap().mmp,
            Some(false)
        );
        assert_eq!(
            request(&cli(&["--enable-mmp", "--mmp-update-interval=1"]))
                .unwrap()
                .interval,
            Some(1)
        );
        for bad in ["0", "0x", "301", "-1", "abc"] {
            let arg = format!("--mmp-update-interval={bad}");
            assert!(request(&cli(&["--enable-mmp", &arg])).is_err(), "{bad}");
        }
        assert!(request(&cli(&["--fs-features=bogus"]))
            .unwrap_err()
            .contains("unknown feature"));
        assert!(request(&cli(&["--fs-features=metaecc"]))
            .unwrap_err()
            .contains("tunefs.ocfs2"));
        assert!(request(&cli(&["--force"])).is_err());
        assert!(request(&cli(&[])).is_err());
    }
}
