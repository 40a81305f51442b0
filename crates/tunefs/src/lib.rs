//! `tunefs.ocfs2-mmp`: turn MMP on and off, tune its interval, clear a stale
//! marker, query a volume, and change what tunefs.ocfs2 changes on volumes
//! it no longer opens: the slot map format (slotmap.rs), the label, UUID and
//! mount type (identity.rs). Every change runs the MMP check and holds the
//! volume (SEQ_FSCK in slot 0) while it writes; `--clear-mmp` is clear.rs,
//! `-Q` query.rs.

use anyhow::{Context, Result};
use clap::Parser;
use ocfs2_format::features::{self, incompat};
use ocfs2_format::slotmap::{value, Format, MmpState};
use ocfs2_format::{OpenMode, Volume};
use ocfs2_mmp::engine::{EngineError, Guard, SlotIo, VolumeSlots};
use ocfs2_mmp::SystemClock;
use ocfs2_toolkit::WaitReporter;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

mod backup;
mod clear;
mod identity;
mod journal;
mod query;
mod quota;
mod resize;
mod slotmap;
mod slots;
mod toggles;

/// The MMP guard's re-check (`verify`, anyhow) as the format crate's
/// writers call it between their writes.
fn format_verify(verify: &dyn Fn() -> Result<()>) -> impl Fn() -> ocfs2_format::Result<()> + '_ {
    move || verify().map_err(|e| ocfs2_format::Error::Invalid(format!("{e:#}")))
}

pub const PROG: &str = "tunefs.ocfs2-mmp";

/// Exit codes.
pub mod exit {
    /// Done (or nothing to do).
    pub const OK: u8 = 0;
    /// Refused: the volume is in use (mounted here, MMP says in use, fsck
    /// running), or the change is not possible; nothing was written.
    pub const REFUSED: u8 = 1;
    /// Usage error (fsck(8)'s code, the same in every tool).
    pub const USAGE: u8 = ocfs2_toolkit::exit::USAGE;
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
    /// Features to change: [no]mmp, [no]extended-slotmap, [no]local
    #[arg(long = "fs-features", value_name = "LIST")]
    pub fs_features: Option<String>,
    /// Change the volume label (at most 63 bytes)
    #[arg(short = 'L', long = "label", value_name = "LABEL")]
    pub label: Option<String>,
    /// Give the volume a new UUID: a random one, or the one given (32 hex digits, or 36 with dashes)
    #[arg(short = 'U', long = "uuid-reset", value_name = "UUID", num_args = 0..=1, require_equals = true)]
    pub uuid_reset: Option<Option<String>>,
    /// Mark a copy of another volume: a new random UUID, and the label given (default: the old one with -cloned)
    #[arg(long = "cloned-volume", value_name = "LABEL", num_args = 0..=1, require_equals = true)]
    pub cloned_volume: Option<Option<String>>,
    /// Cluster stack to record: o2cb, pcmk or cman (with --cluster-name)
    #[arg(
        long = "cluster-stack",
        value_name = "STACK",
        requires = "cluster_name"
    )]
    pub cluster_stack: Option<String>,
    /// Cluster name to record (with --cluster-stack)
    #[arg(long = "cluster-name", value_name = "NAME", requires = "cluster_stack")]
    pub cluster_name: Option<String>,
    /// With --cluster-stack=o2cb: o2cb's global heartbeat
    #[arg(long = "global-heartbeat", requires = "cluster_stack")]
    pub global_heartbeat: bool,
    /// Record the cluster stack this host runs (/sys/fs/ocfs2/cluster_stack and its cluster)
    #[arg(long = "update-cluster-stack", conflicts_with = "cluster_stack")]
    pub update_cluster_stack: bool,
    /// Journal options: size=SIZE gives every slot's journal that size (K, M, G, T suffixes; at least 4M)
    #[arg(short = 'J', long = "journal-options", value_name = "OPTIONS")]
    pub journal: Option<String>,
    /// Number of node slots: adds slots (their system files, journals like slot 0's)
    #[arg(short = 'N', long = "node-slots", value_name = "N")]
    pub node_slots: Option<u16>,
    /// Grow the volume to the device's size, or to BLOCKS (after the device)
    #[arg(short = 'S', long = "volume-size")]
    pub volume_size: bool,
    /// Turn backup superblocks on (their clusters must be free)
    #[arg(long = "backup-super")]
    pub backup_super: bool,
    /// Mount type: local (one node, no cluster stack) or cluster (the o2cb stack)
    #[arg(short = 'M', long = "mount-type", value_name = "TYPE", value_parser = ["local", "cluster"])]
    pub mount_type: Option<String>,
    /// Seconds between the kernel's MMP updates (1 to 300)
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
    /// Seconds to watch the o2hb heartbeat of clustered nodes (5 to 600; default: their dead threshold, at least 62)
    #[arg(long = "hb-window", value_name = "SECONDS", value_parser = ocfs2_toolkit::parse_hb_window)]
    pub hb_window: Option<u32>,
    /// Query: %B block size, %T cluster size, %N slots, %R root, %Y system dir, %P first cluster group, %V label, %U UUID, %M %H %O feature names, %I MMP interval, %A MMP on/off, %S slot map
    #[arg(short = 'Q', long = "query", value_name = "FORMAT")]
    pub query: Option<String>,
    /// Do not ask for confirmation
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// Print the query, the dry run, or why not, as one JSON object on
    /// stdout
    #[arg(long = "json")]
    pub json: bool,
    /// Show what would change; write nothing
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Quiet: only errors
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// The volume: a path, LABEL=label or UUID=uuid
    #[arg(value_name = "DEVICE")]
    pub device: String,
    /// With -S: the new size in blocks (default: the whole device)
    #[arg(value_name = "BLOCKS", requires = "volume_size")]
    pub blocks: Option<u64>,
}

/// What the command line asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub mmp: Option<bool>,
    pub interval: Option<u16>,
    pub clear: bool,
    pub force: bool,
    pub label: Option<[u8; 64]>,
    /// A new UUID: `Some(None)` for a random one.
    pub uuid: Option<Option<[u8; 16]>>,
    /// `--cloned-volume`: a random UUID and this label (None: the old one
    /// with -cloned).
    pub cloned: Option<Option<[u8; 64]>>,
    pub local: Option<bool>,
    pub slot_map: Option<Format>,
    pub backup: Option<bool>,
    pub stack: Option<identity::Stack>,
    /// `-J size=`: every journal's size in bytes.
    pub journal: Option<u64>,
    /// `-N`: the number of node slots.
    pub slots: Option<u16>,
    /// `-S [BLOCKS]`: grow (None inside: to the device's size).
    pub resize: Option<Option<u64>>,
    /// Feature bits turned by a superblock write alone (toggles.rs).
    pub bits: Vec<(String, bool)>,
    /// Quota types turned on or off (quota.rs).
    pub quota: Vec<(ocfs2_format::quota::QuotaType, bool)>,
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
            let (name, want) = match raw.strip_prefix("no") {
                Some(n) => (n, false),
                None => (raw, true),
            };
            let slot = match name {
                "mmp" => &mut r.mmp,
                "local" => &mut r.local,
                "backup-super" => &mut r.backup,
                "extended-slotmap" => {
                    let f = if want { Format::Extended } else { Format::Old };
                    if r.slot_map.is_some_and(|x| x != f) {
                        return Err("extended-slotmap is both turned on and off".into());
                    }
                    r.slot_map = Some(f);
                    continue;
                }
                other if quota::by_name(other).is_some() => {
                    let t = quota::by_name(other).expect("checked");
                    if r.quota.iter().any(|q| q.0 == t && q.1 != want) {
                        return Err(format!("{other} is both turned on and off"));
                    }
                    r.quota.push((t, want));
                    continue;
                }
                other if toggles::known(other) => {
                    if r.bits.iter().any(|b| b.0 == other && b.1 != want) {
                        return Err(format!("{other} is both turned on and off"));
                    }
                    r.bits.push((other.to_string(), want));
                    continue;
                }
                other => {
                    return Err(if features::by_name(other).is_some() {
                        format!("feature '{raw}': not changed by this release (it changes mmp, extended-slotmap, local, backup-super, sparse, append-dio, inline-data, refcount, discontig-bg, xattr, unwritten, metaecc, indexed-dirs, usrquota and grpquota)")
                    } else {
                        format!("unknown feature '{raw}'")
                    });
                }
            };
            if slot.is_some_and(|m| m != want) {
                return Err(format!("{name} is both turned on and off"));
            }
            *slot = Some(want);
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
    if let Some(l) = &cli.label {
        r.label = Some(identity::parse_label(l)?);
    }
    if let Some(u) = &cli.uuid_reset {
        r.uuid = Some(match u {
            Some(u) => Some(identity::parse_uuid(u)?),
            None => None,
        });
    }
    if let Some(c) = &cli.cloned_volume {
        if r.uuid.is_some() || r.label.is_some() {
            return Err("--cloned-volume sets the UUID and the label: give the label as --cloned-volume=LABEL, without -U or -L".into());
        }
        r.cloned = Some(match c {
            Some(l) => Some(identity::parse_label(l)?),
            None => None,
        });
    }
    if let Some(m) = &cli.mount_type {
        let local = m == "local";
        if r.local.is_some_and(|x| x != local) {
            return Err("-M and --fs-features=[no]local disagree".into());
        }
        r.local = Some(local);
    }
    if cli.backup_super {
        if r.backup == Some(false) {
            return Err("--backup-super and --fs-features=nobackup-super disagree".into());
        }
        r.backup = Some(true);
    }
    if let (Some(st), Some(name)) = (&cli.cluster_stack, &cli.cluster_name) {
        r.stack = Some(identity::Stack::new(st, name, cli.global_heartbeat)?);
    }
    if cli.update_cluster_stack {
        r.stack = Some(identity::Stack::running()?);
    }
    if let Some(j) = &cli.journal {
        let o = ocfs2_toolkit::parse_journal_options(j)?;
        if o.block64.is_some() {
            return Err("-J block32/block64: not changed by this release (only size=)".into());
        }
        r.journal = o.size;
        if r.journal.is_none() {
            return Err("-J: give size=SIZE".into());
        }
    }
    if cli.volume_size {
        r.resize = Some(cli.blocks);
    }
    if let Some(n) = cli.node_slots {
        if n == 0 {
            return Err("-N 0: at least one slot".into());
        }
        r.slots = Some(n);
    }
    if r.stack.is_some() && r.local == Some(true) {
        return Err("a local volume has no cluster stack".into());
    }
    let identity = r.stack.is_some()
        || r.backup.is_some()
        || r.label.is_some()
        || r.uuid.is_some()
        || r.cloned.is_some()
        || r.local.is_some()
        || r.journal.is_some()
        || r.slots.is_some()
        || r.resize.is_some()
        || !r.bits.is_empty()
        || !r.quota.is_empty();
    if r.clear && (r.mmp.is_some() || r.interval.is_some() || identity || r.slot_map.is_some()) {
        return Err("--clear-mmp goes alone: clear first, then change the volume".into());
    }
    let changes =
        r.mmp.is_some() || r.interval.is_some() || r.clear || identity || r.slot_map.is_some();
    if cli.query.is_some() && changes {
        return Err("-Q queries; it does not combine with changes".into());
    }
    if let Some(q) = &cli.query {
        query::check(q)?;
    }
    if !changes && cli.query.is_none() {
        return Err("nothing to do: give --enable-mmp, --disable-mmp, --mmp-update-interval, --clear-mmp, --fs-features, -L, -U, --cloned-volume, -M, -J, -N, -S, --backup-super, --cluster-stack, --update-cluster-stack or -Q".into());
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
            if cli.json {
                ocfs2_toolkit::json_error(Some(&cli.device), &e, exit::USAGE);
            }
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
            if cli.json {
                ocfs2_toolkit::json_error(Some(&cli.device), &ocfs2_toolkit::error_line(&e), code);
            }
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

pub(crate) fn refuse<T>(msg: impl Into<String>) -> Result<T> {
    Err(Refusal(msg.into()).into())
}

pub(crate) fn confirm(cli: &Cli, what: &str) -> Result<bool> {
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
    label: Option<([u8; 64], [u8; 64])>,
    uuid: Option<([u8; 16], [u8; 16])>,
    local: Option<bool>,
    /// The slot map rewritten empty in this format.
    slot_map: Option<Format>,
    /// Backup superblocks turned on or off.
    backup: Option<bool>,
    /// The cluster stack recorded.
    stack: Option<identity::Stack>,
    /// Journals resized.
    journal: Vec<journal::Resize>,
    /// Node slots added: (from, to).
    slots: Option<(u16, u16)>,
    /// Volume grown: (from, to) clusters.
    resize: Option<(u64, u64)>,
    /// Feature bits turned: (name, on).
    bits: Vec<(&'static str, bool)>,
    /// Quota types turned: (type, on).
    quota: Vec<(ocfs2_format::quota::QuotaType, bool)>,
    notes: Vec<String>,
}

impl Plan {
    fn changes(&self) -> bool {
        self.enable
            || self.disable
            || self.interval.is_some()
            || self.label.is_some()
            || self.uuid.is_some()
            || self.local.is_some()
            || self.slot_map.is_some()
            || self.backup.is_some()
            || self.stack.is_some()
            || !self.journal.is_empty()
            || self.slots.is_some()
            || self.resize.is_some()
            || !self.bits.is_empty()
            || !self.quota.is_empty()
    }
}

pub fn run(cli: &Cli, req: &Request) -> Result<u8> {
    let path = ocfs2_format::resolve::resolve(&cli.device)?;
    if let Some(q) = &cli.query {
        let (_, vol) = ocfs2_format::open_volume(&cli.device, OpenMode::default())?;
        let out = query::query(&vol, q)?;
        if cli.json {
            println!("{}", query::json(&vol, &cli.device, q, &out));
        } else {
            print!("{out}");
        }
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
        return clear::clear_mmp(cli, req, &vol, &mut say);
    }

    // What would change.
    let mut plan = Plan::default();
    let want_on = req.mmp.unwrap_or(mmp_on);
    if req.interval.is_some() && !want_on {
        return refuse(
            "MMP is not enabled on this volume: add --enable-mmp to set its update interval",
        );
    }
    let format = vol.slot_map_format();
    if let Some(f) = req.slot_map {
        if f == Format::Old && want_on {
            return refuse(if mmp_on {
                "MMP needs the extended slot map: turn MMP off first (--disable-mmp), then the extended slot map"
            } else {
                "MMP needs the extended slot map: it cannot be turned on with noextended-slotmap"
            });
        }
        if f != format {
            if mmp_on {
                return refuse("the slot map is not rewritten while MMP is on");
            }
            plan.slot_map = Some(f);
        }
    }
    if want_on && !mmp_on {
        // MMP lives in the extended slot map: the old one is converted
        // first, in the same run.
        if format != Format::Extended {
            plan.slot_map = Some(Format::Extended);
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
            plan.notes.push(format!("the stored MMP update interval {stored} is out of range (1 to 300): replacing it with {new}"));
        }
        if new != stored {
            plan.interval = Some((stored, new));
        }
    }
    let old_label: [u8; 64] = vol.sb().s_label;
    let new_label = match (&req.cloned, req.label) {
        (Some(c), _) => Some(identity::cloned_label(&old_label, c.as_ref())),
        (None, l) => l,
    };
    if let Some(l) = new_label.filter(|l| *l != old_label) {
        plan.label = Some((old_label, l));
    }
    let old_uuid: [u8; 16] = vol.sb().s_uuid;
    let new_uuid = match (&req.uuid, &req.cloned) {
        (Some(Some(u)), _) => Some(*u),
        (Some(None), _) | (None, Some(_)) => {
            Some(identity::random_uuid().context("reading /dev/urandom for a new UUID")?)
        }
        (None, None) => None,
    };
    if let Some(u) = new_uuid.filter(|u| *u != old_uuid) {
        plan.uuid = Some((old_uuid, u));
    }
    if let Some(local) = req
        .local
        .filter(|&l| l != f.has_incompat(incompat::LOCAL_MOUNT))
    {
        plan.local = Some(local);
    }
    if let Some(st) = req
        .stack
        .as_ref()
        .filter(|st| identity::Stack::of(vol.sb()).as_ref() != Some(*st))
    {
        let local_after = plan.local.unwrap_or(f.has_incompat(incompat::LOCAL_MOUNT));
        if local_after {
            return refuse(
                "a local volume has no cluster stack: make it clustered too (-M cluster)",
            );
        }
        // A stack other than the default needs the extended slot map
        // (libocfs2 converts it too).
        if format != Format::Extended {
            if mmp_on {
                return refuse("the slot map is not rewritten while MMP is on");
            }
            plan.slot_map = Some(Format::Extended);
        }
        plan.stack = Some(st.clone());
    }
    let has_backups = f.compat & ocfs2_format::features::compat::BACKUP_SB != 0;
    if let Some(b) = req.backup.filter(|&b| b != has_backups) {
        plan.backup = Some(b);
    }
    if let Some(bytes) = req.journal {
        plan.journal = journal::plan(&vol, bytes)?;
    }
    if let Some(n) = req.slots.filter(|&n| n != vol.max_slots()) {
        if let Some(why) = slots::refusal(&vol, n)? {
            return refuse(why);
        }
        if !plan.journal.is_empty() {
            return refuse("-N and -J go in separate runs: first one, then the other");
        }
        plan.slots = Some((vol.max_slots(), n));
    }
    plan.bits = toggles::changes(&vol, &req.bits);
    plan.quota = quota::changes(&vol, &req.quota)?;
    if !plan.quota.is_empty() {
        if plan.slots.is_some() {
            return refuse("-N and quota changes go in separate runs: first one, then the other");
        }
        if let Some(why) = slotmap::busy(&vol, "quotas are turned on or off")? {
            return refuse(why);
        }
    }
    if let Some(why) = toggles::refusal(&vol, &plan.bits)? {
        return refuse(why);
    }
    if let Some(blocks) = req.resize {
        let (to, why) = resize::target(&vol, blocks)?;
        if let Some(why) = why {
            return refuse(why);
        }
        let from = u64::from(vol.clusters());
        if to != from {
            if plan.slots.is_some() || !plan.journal.is_empty() {
                return refuse("-S goes alone: grow the volume, then change slots or journals");
            }
            if let Some(why) = slotmap::busy(&vol, "the volume is resized")? {
                return refuse(why);
            }
            plan.resize = Some((from, to));
        } else {
            plan.notes
                .push(format!("the volume has {from} clusters already: not grown"));
        }
    }
    if !plan.changes() {
        if !cli.quiet {
            // Say what was asked that the volume has already, then the
            // MMP state the run found.
            let already: Vec<String> = req
                .bits
                .iter()
                .map(|(name, on)| (name.as_str(), *on))
                .chain(req.quota.iter().map(|&(t, on)| (quota::name(t), on)))
                .map(|(name, on)| format!("{}{name}", if on { "" } else { "no" }))
                .collect();
            for n in &plan.notes {
                println!("{n}");
            }
            if already.is_empty() {
                println!(
                    "Nothing to change: MMP is {}, update interval {stored} s",
                    if mmp_on { "enabled" } else { "disabled" }
                );
            } else {
                println!(
                    "Nothing to change: the volume has {} already (MMP is {})",
                    already.join(", "),
                    if mmp_on { "enabled" } else { "disabled" }
                );
            }
        }
        return Ok(exit::OK);
    }
    if plan.slot_map.is_some() {
        if let Some(why) = slotmap::refusal(&vol)? {
            return refuse(why);
        }
    }
    if plan.backup == Some(true) {
        if let Some(why) = backup::refusal(&vol)? {
            return refuse(why);
        }
    }
    if let Some(why) = journal::refusal(&vol, &plan.journal)? {
        return refuse(why);
    }
    let mut lines = Vec::new();
    if let Some(st) = &plan.stack {
        lines.push(format!(
            "cluster stack {}, cluster {}{}",
            st.stack,
            st.cluster,
            if st.global_heartbeat {
                ", global heartbeat"
            } else {
                ""
            }
        ));
    }
    let cs = u64::from(vol.cluster_size());
    for (name, on) in &plan.bits {
        lines.push(format!(
            "feature {name}: {}",
            if *on { "on" } else { "off" }
        ));
    }
    for (t, on) in &plan.quota {
        lines.push(if *on {
            format!(
                "feature {}: on ({} and a local file per slot, usage counted from the inodes)",
                quota::name(*t),
                t.global_name()
            )
        } else {
            format!("feature {}: off (its quota files removed)", quota::name(*t))
        });
    }
    if let Some((a, b)) = plan.resize {
        lines.push(format!(
            "grow the volume from {a} to {b} clusters ({} to {} bytes)",
            a * cs,
            b * cs
        ));
    }
    if let Some((a, b)) = plan.slots {
        let j0 = vol.read_inode(vol.system_inode("journal:0000")?)?;
        lines.push(if b > a {
            format!(
                "node slots {a} -> {b}: {} for each new slot, journals of {} bytes like slot 0's",
                slots::files_of(&vol, a).join(", "),
                u64::from(j0.di().i_clusters.get()) * cs
            )
        } else {
            format!(
                "node slots {a} -> {b}: slots {b} to {} removed (their allocators' groups go to slots 0 to {}, their journals, orphan directories and local files freed)",
                a - 1,
                b - 1
            )
        });
    }
    for r in &plan.journal {
        lines.push(format!(
            "journal:{:04}: {} -> {} bytes ({} -> {} clusters), formatted afresh",
            r.slot,
            r.from * cs,
            r.to * cs,
            r.from,
            r.to
        ));
    }
    if let Some(on) = plan.backup {
        lines.push(if on {
            format!(
                "turn backup superblocks on: blocks {:?}, their clusters marked in use",
                backup::positions(&vol)
            )
        } else {
            "turn backup superblocks off: their clusters freed".to_string()
        });
    }
    if let Some(t) = plan.slot_map {
        lines.push(format!(
            "rewrite the slot map, empty, in the {} format (was {})",
            t.name(),
            format.name()
        ));
    }
    if let Some((a, b)) = &plan.label {
        lines.push(format!(
            "label \"{}\" -> \"{}\"",
            identity::label_text(a),
            identity::label_text(b)
        ));
    }
    if let Some((a, b)) = &plan.uuid {
        lines.push(format!(
            "UUID {} -> {}",
            identity::uuid_text(a),
            identity::uuid_text(b)
        ));
    }
    if let Some(local) = plan.local {
        lines.push(if local {
            "mount type: local (one node at a time, no cluster stack)".to_string()
        } else {
            "mount type: cluster (the o2cb cluster stack)".to_string()
        });
    }
    if plan.enable {
        lines.push("enable MMP (incompat 0x10000)".to_string());
    }
    if plan.disable {
        lines.push("disable MMP; leave in the slot map only values older kernels and ocfs2-tools read correctly".to_string());
    }
    if let Some((a, b)) = plan.interval {
        lines.push(format!("MMP update interval {a} -> {b} s"));
    }
    let backups = match plan.backup {
        Some(true) => backup::positions(&vol),
        Some(false) => Vec::new(),
        None => vol.present_backups()?,
    };
    lines.push(format!(
        "write the superblock and {} backup superblock(s)",
        backups.len()
    ));
    if !cli.quiet && !cli.json {
        for n in &plan.notes {
            eprintln!("{PROG}: {n}");
        }
    }
    if mmp_on {
        lines.insert(
            0,
            format!(
                "hold the volume: the MMP check waits {} s (twice the check interval, plus 1){}",
                ocfs2_mmp::wait_time(stored),
                if vol.sb().s_feature_incompat.get() & incompat::LOCAL_MOUNT == 0 {
                    ", and watches the o2hb heartbeat of the nodes clustered slots name"
                } else {
                    ""
                }
            ),
        );
    }
    if cli.dry_run {
        if cli.json {
            println!(
                "{}",
                serde_json::json!({
                    "device": cli.device, "dry_run": true, "would": lines, "notes": plan.notes,
                    "mmp_wait_seconds": mmp_on.then(|| ocfs2_mmp::wait_time(stored)),
                    "exit_code": exit::OK,
                })
            );
        } else {
            println!("Would (dry run, nothing written):");
            for l in &lines {
                println!("  {l}");
            }
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
    if let Some((_, n)) = plan.slots {
        sb.s_max_slots.set(n);
    }
    toggles::apply(&mut sb, &plan.bits);
    quota::apply(&mut sb, &plan.quota);
    if let Some((_, l)) = plan.label {
        sb.s_label = l;
    }
    if let Some((_, u)) = plan.uuid {
        sb.s_uuid = u;
    }
    if let Some(local) = plan.local {
        identity::set_local(&mut sb, local);
    }
    if let Some(st) = &plan.stack {
        st.apply(&mut sb);
    }
    if let Some(on) = plan.backup {
        let bit = ocfs2_format::features::compat::BACKUP_SB;
        let c = sb.s_feature_compat.get();
        sb.s_feature_compat.set(if on { c | bit } else { c & !bit });
    }
    if let Some(t) = plan.slot_map {
        let bit = incompat::EXTENDED_SLOT_MAP;
        let f = sb.s_feature_incompat.get();
        sb.s_feature_incompat.set(if t == Format::Extended {
            f | bit
        } else {
            f & !bit
        });
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
        let verify_any = || verify().map_err(anyhow::Error::from);
        quota::write(&vol, &plan.quota, &verify_any)?;
        toggles::write(&vol, &sb, &plan.bits, &verify_any)?;
        for r in &plan.journal {
            journal::apply(&vol, r, &verify_any)?;
        }
        if let Some((_, to)) = plan.resize {
            resize::grow(&vol, to, &verify_any)?;
            verify()?;
            let backups = vol.backups_within(to);
            vol.write_super_sized(&sb, Some(to as u32), &backups)
                .context("writing the superblock")?;
            return Ok(backups);
        }
        if let Some((from, to)) = plan.slots {
            // The new entries may share slot 0's sector: written while the
            // keep-alive waits.
            let clear = || -> Result<()> {
                let run = || vol.empty_slot_entries(from, to);
                match &guard {
                    Some(g) => g.exclusive(run)?,
                    None => run()?,
                }
                Ok(())
            };
            if to > from {
                slots::add(&vol, to, &verify_any, &clear)?;
            } else {
                slots::remove(&vol, to, &verify_any)?;
            }
        }
        if let Some(t) = plan.slot_map {
            slotmap::rewrite(&vol, t, &verify_any)?;
        }
        match plan.backup {
            Some(true) => return backup::enable(&vol, &sb, &verify_any),
            Some(false) => {
                backup::disable(&vol, &sb, &verify_any)?;
                return Ok(Vec::new());
            }
            None => {}
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
        assert!(request(&cli(&["--fs-features=heartbeat-device"]))
            .unwrap_err()
            .contains("not changed by this release"));
        assert_eq!(
            request(&cli(&["--fs-features=nosparse"])).unwrap().bits,
            [("sparse".to_string(), false)]
        );
        let r = request(&cli(&["--fs-features=extended-slotmap,nolocal"])).unwrap();
        assert_eq!((r.slot_map, r.local), (Some(Format::Extended), Some(false)));
        assert!(request(&cli(&["--fs-features=local,nolocal"])).is_err());
        assert!(request(&cli(&["-M", "local", "--fs-features=nolocal"])).is_err());
        assert!(request(&cli(&["-U", "--cloned-volume"])).is_err());
        assert!(request(&cli(&["--clear-mmp", "-L", "x"])).is_err());
        assert_eq!(request(&cli(&["--uuid-reset"])).unwrap().uuid, Some(None));
        assert!(request(&cli(&["--force"])).is_err());
        assert!(request(&cli(&[])).is_err());
    }
}
