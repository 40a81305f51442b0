//! `mkfs.ocfs2-mmp`: a native mkfs that writes every block of an OCFS2
//! volume itself, with the defaults of `mkfs.ocfs2` 1.8.7 and, on request,
//! multiple mount protection from birth.

pub mod build;
mod hold;
pub mod plan;
pub mod quota;

use anyhow::{bail, Context};
use clap::Parser;
use ocfs2_format::features::{self, incompat, FeatureSet, Kind};
use ocfs2_format::{BlockIo, FileDevice, OpenMode, Volume};
use plan::{FeatureLevel, FsType, Options, Plan};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

pub const PROG: &str = "mkfs.ocfs2-mmp";

/// Exit codes.
pub mod exit {
    /// The volume was made (or, with -n, would be).
    pub const OK: u8 = 0;
    /// Refused or failed: the message says why. A refusal writes nothing.
    pub const FAILED: u8 = 1;
    /// Usage error (fsck(8)'s code, the same in every tool).
    pub const USAGE: u8 = ocfs2_toolkit::exit::USAGE;
}

/// Make an OCFS2 file system, optionally with multiple mount protection.
#[derive(Debug, Parser)]
#[command(name = PROG, version, about, long_about = None)]
pub struct Cli {
    /// Block size in bytes: 512, 1K, 2K or 4K (default: by volume size)
    #[arg(short = 'b', long = "block-size", value_name = "SIZE", value_parser = ocfs2_toolkit::parse_size)]
    pub block_size: Option<u64>,
    /// Cluster size in bytes: 4K to 1M, a power of two (default: by volume size and type)
    #[arg(short = 'C', long = "cluster-size", value_name = "SIZE", value_parser = ocfs2_toolkit::parse_size)]
    pub cluster_size: Option<u64>,
    /// Number of node slots (1 to 255)
    #[arg(short = 'N', long = "node-slots", value_name = "N")]
    pub slots: Option<u16>,
    /// Volume label (up to 63 bytes)
    #[arg(short = 'L', long = "label", value_name = "LABEL")]
    pub label: Option<String>,
    /// Journal options: size=SIZE, block32, block64
    #[arg(short = 'J', long = "journal-options", value_name = "OPTS")]
    pub journal: Option<String>,
    /// Mount type: local (single node, no cluster stack) or cluster
    #[arg(short = 'M', long = "mount", value_name = "TYPE", value_parser = ["local", "cluster"])]
    pub mount: Option<String>,
    /// Volume type: mail, datafiles or vmstore (sets journal and cluster sizes)
    #[arg(short = 'T', value_name = "TYPE", value_parser = ["mail", "datafiles", "vmstore"])]
    pub fs_type: Option<String>,
    /// Features to turn on (name) or off (noname), comma separated; `mmp` for multiple mount protection
    #[arg(long = "fs-features", value_name = "LIST")]
    pub fs_features: Option<String>,
    /// Feature level: default, max-compat or max-features
    #[arg(long = "fs-feature-level", value_name = "LEVEL", value_parser = ["default", "max-compat", "max-features"])]
    pub fs_feature_level: Option<String>,
    /// Turn on multiple mount protection (same as --fs-features=mmp)
    #[arg(long = "enable-mmp")]
    pub enable_mmp: bool,
    /// Seconds between MMP updates by the kernel (1 to 300, default 5; 0 means the default)
    // Parsed in `options`, so that a bad value (-1 included) is one line naming the device.
    #[arg(
        long = "mmp-update-interval",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    pub mmp_update_interval: Option<String>,
    /// Volume UUID (32 hex digits, dashes allowed)
    #[arg(short = 'U', long = "uuid", value_name = "UUID")]
    pub uuid: Option<String>,
    /// Overwrite an existing file system (never one whose MMP state says it is in use)
    #[arg(short = 'F', long = "force")]
    pub force: bool,
    /// Seconds to watch the o2hb heartbeat of an existing clustered MMP volume's nodes (5 to 600; default: their dead threshold, at least 62)
    #[arg(long = "hb-window", value_name = "SECONDS", value_parser = ocfs2_toolkit::parse_hb_window)]
    pub hb_window: Option<u32>,
    /// Quiet: print nothing but errors
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Show what would be made; write nothing
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Print the volume made (or, with -n, the one that would be), or why
    /// not, as one JSON object on stdout instead of the text
    #[arg(long = "json")]
    pub json: bool,
    /// Do not write backup superblocks
    #[arg(long = "no-backup-super")]
    pub no_backup_super: bool,
    /// Cluster stack recorded in the superblock (o2cb, pcmk, cman)
    #[arg(long = "cluster-stack", value_name = "STACK")]
    pub cluster_stack: Option<String>,
    /// Cluster name recorded in the superblock
    #[arg(long = "cluster-name", value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// o2cb global heartbeat
    #[arg(long = "global-heartbeat")]
    pub global_heartbeat: bool,
    /// The device or image file: a path, LABEL=label or UUID=uuid
    #[arg(value_name = "DEVICE")]
    pub device: String,
    /// Size of the volume in blocks (default: the whole device)
    #[arg(value_name = "BLOCKS")]
    pub blocks: Option<u64>,
}

fn parse_interval(s: &str) -> Result<u16, String> {
    ocfs2_mmp::parse_update_interval(s, true)
}

/// Parse `--fs-features`: (on, off). Unknown names are errors.
pub fn parse_features(list: &str) -> Result<(FeatureSet, FeatureSet), String> {
    let mut on = FeatureSet::default();
    let mut off = FeatureSet::default();
    for raw in list.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let (neg, name) = match raw.strip_prefix("no") {
            Some(rest) if features::by_name(rest).is_some() => (true, rest),
            _ => (false, raw),
        };
        let f = features::by_name(name).ok_or_else(|| format!("unknown feature '{raw}'"))?;
        if matches!(
            f.name,
            "heartbeat-device" | "aborted-resize" | "aborted-tunefs"
        ) {
            return Err(format!("feature '{}' cannot be set by mkfs", f.name));
        }
        let set = if neg { &mut off } else { &mut on };
        match f.kind {
            Kind::Compat => set.compat |= f.mask,
            Kind::Incompat => set.incompat |= f.mask,
            Kind::RoCompat => set.ro_compat |= f.mask,
        }
        // Dependencies (feature_string.c): unwritten needs sparse.
        if neg && f.name == "sparse" {
            off.ro_compat |= features::ro_compat::UNWRITTEN;
        }
        if !neg && f.name == "unwritten" {
            on.incompat |= incompat::SPARSE_ALLOC;
        }
    }
    Ok((on, off))
}

fn parse_uuid(s: &str) -> Result<[u8; 16], String> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("'{s}' is not a UUID (32 hex digits)"));
    }
    let mut u = [0u8; 16];
    for (i, b) in u.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(u)
}

/// Turn the command line into validated options.
pub fn options(cli: &Cli) -> Result<Options, String> {
    let mut o = Options::default();
    if let Some(b) = cli.block_size {
        if !(512..=4096).contains(&b) || !b.is_power_of_two() {
            return Err(format!("block size {b}: specify 512, 1024, 2048 or 4096"));
        }
        o.block_size = Some(b as u32);
    }
    if let Some(c) = cli.cluster_size {
        if !(4096..=1 << 20).contains(&c) || !c.is_power_of_two() {
            return Err(format!(
                "cluster size {c}: specify a power of two from 4096 to 1048576"
            ));
        }
        o.cluster_size = Some(c as u32);
    }
    if let Some(n) = cli.slots {
        if n == 0 || n > 255 {
            return Err(format!("node slots {n}: specify 1 to 255"));
        }
        o.slots = Some(n);
    }
    if let Some(l) = &cli.label {
        if l.len() > 63 {
            return Err(format!("label is {} bytes: at most 63", l.len()));
        }
        o.label = l.as_bytes().to_vec();
    }
    if let Some(j) = &cli.journal {
        let opts = ocfs2_toolkit::parse_journal_options(j)?;
        if let Some(b) = opts.block64 {
            o.journal_block64 = b;
        }
        if opts.size.is_some() {
            o.journal_bytes = opts.size;
        }
    }
    o.local = cli.mount.as_deref() == Some("local");
    o.fs_type = match cli.fs_type.as_deref() {
        Some("mail") => FsType::Mail,
        Some("datafiles") => FsType::Datafiles,
        Some("vmstore") => FsType::Vmstore,
        _ => FsType::Default,
    };
    o.level = match cli.fs_feature_level.as_deref() {
        Some("max-compat") => FeatureLevel::MaxCompat,
        Some("max-features") => FeatureLevel::MaxFeatures,
        _ => FeatureLevel::Default,
    };
    if let Some(list) = &cli.fs_features {
        let (on, off) = parse_features(list)?;
        o.features_on = on;
        o.features_off = off;
    }
    if cli.enable_mmp {
        o.features_on.incompat |= incompat::MMP;
    }
    if o.features_on.has_incompat(incompat::MMP) && o.features_off.has_incompat(incompat::MMP) {
        return Err("mmp is both turned on and off".into());
    }
    let mmp_on = o.features_on.has_incompat(incompat::MMP);
    let interval = cli
        .mmp_update_interval
        .as_deref()
        .map(parse_interval)
        .transpose()?;
    if interval.is_some() && !mmp_on {
        return Err(
            "--mmp-update-interval needs MMP: add --fs-features=mmp or --enable-mmp".into(),
        );
    }
    o.mmp_interval = interval.unwrap_or(ocfs2_mmp::DEFAULT_UPDATE_INTERVAL);
    if let Some(u) = &cli.uuid {
        o.uuid = Some(parse_uuid(u)?);
    }
    o.no_backup_super = cli.no_backup_super;
    if cli.cluster_stack.is_some() != cli.cluster_name.is_some() {
        return Err("--cluster-stack and --cluster-name go together".into());
    }
    if let Some(s) = &cli.cluster_stack {
        if !matches!(s.as_str(), "o2cb" | "pcmk" | "cman") {
            return Err(format!("cluster stack '{s}': use o2cb, pcmk or cman"));
        }
        if o.local {
            return Err("a local volume has no cluster stack".into());
        }
    }
    if let Some(n) = &cli.cluster_name {
        if n.is_empty() || n.len() > 16 {
            return Err(format!("cluster name '{n}': 1 to 16 bytes"));
        }
    }
    o.cluster_stack = cli.cluster_stack.clone();
    o.cluster_name = cli.cluster_name.clone();
    o.global_heartbeat = cli.global_heartbeat;
    if o.global_heartbeat && o.cluster_stack.as_deref() != Some("o2cb") {
        return Err("--global-heartbeat needs --cluster-stack=o2cb".into());
    }
    o.blocks = cli.blocks;
    Ok(o)
}

/// Names of the set features, one list, in ocfs2-tools' table order.
fn feature_line(f: &FeatureSet) -> String {
    features::FEATURES
        .iter()
        .filter(|x| f.word(x.kind) & x.mask != 0)
        .map(|x| x.name)
        .collect::<Vec<_>>()
        .join(" ")
}

fn summary(p: &Plan) -> String {
    let mut s = String::new();
    use std::fmt::Write as _;
    match p.fs_type {
        FsType::Mail => s.push_str("Filesystem Type of mail\n"),
        FsType::Datafiles => s.push_str("Filesystem Type of datafiles\n"),
        FsType::Vmstore => s.push_str("Filesystem Type of vmstore\n"),
        FsType::Default => {}
    }
    let _ = writeln!(s, "Label: {}", ocfs2_toolkit::text(&p.label));
    let _ = writeln!(s, "Features: {}", feature_line(&p.features));
    let _ = writeln!(s, "Block size: {} ({} bits)", p.block_size, p.block_bits);
    let _ = writeln!(
        s,
        "Cluster size: {} ({} bits)",
        p.cluster_size, p.cluster_bits
    );
    let _ = writeln!(
        s,
        "Volume size: {} ({} clusters) ({} blocks)",
        p.volume_bytes, p.clusters, p.volume_blocks
    );
    let _ = writeln!(
        s,
        "Cluster groups: {} (tail covers {} clusters, rest cover {} clusters)",
        p.cluster_groups, p.tail_group_bits, p.global_cpg
    );
    let cpg = p.suballoc_cpg();
    let _ = writeln!(
        s,
        "Extent allocator size: {} ({} groups)",
        u64::from(p.extent_alloc_clusters) << p.cluster_bits,
        p.extent_alloc_clusters / cpg
    );
    let _ = writeln!(s, "Journal size: {}", p.journal_bytes);
    let _ = writeln!(s, "Node slots: {}", p.slots);
    if p.features.has_incompat(incompat::MMP) {
        let _ = writeln!(s, "MMP update interval: {} s", p.mmp_interval);
    }
    s
}

/// Progress on stdout: step names, and journals counted on a terminal.
struct Steps {
    quiet: bool,
    tty: bool,
    open: bool,
}

impl Steps {
    fn done(&mut self) {
        if self.open && !self.quiet {
            println!("done");
        }
        self.open = false;
    }
}

impl build::Progress for Steps {
    fn step(&mut self, what: &str) {
        self.done();
        if !self.quiet {
            print!("{what}: ");
            let _ = std::io::stdout().flush();
            self.open = true;
        }
    }
    fn journal(&mut self, slot: u16, of: u16) {
        if self.tty && !self.quiet {
            print!("{slot}/{of}\u{8}\u{8}\u{8}\u{8}\u{8}");
            let _ = std::io::stdout().flush();
        }
    }
}

pub fn main() -> ExitCode {
    let cli: Cli = match ocfs2_toolkit::parse_args(exit::USAGE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let opts = match options(&cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{PROG}: {}: {e}", cli.device);
            if cli.json {
                ocfs2_toolkit::json_error(Some(&cli.device), &e, exit::USAGE);
            }
            return ExitCode::from(exit::USAGE);
        }
    };
    match run(&cli, &opts) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            ocfs2_toolkit::print_error(PROG, &e);
            if cli.json {
                ocfs2_toolkit::json_error(
                    Some(&cli.device),
                    &ocfs2_toolkit::error_line(&e),
                    exit::FAILED,
                );
            }
            ExitCode::from(exit::FAILED)
        }
    }
}

/// The volume of a plan, as `--json` prints it.
fn plan_json(p: &Plan, device: &str, made: bool) -> serde_json::Value {
    serde_json::json!({
        "device": device,
        "made": made,
        "dry_run": !made,
        "label": ocfs2_toolkit::text(&p.label),
        "features": feature_line(&p.features).split(' ').filter(|f| !f.is_empty()).collect::<Vec<_>>(),
        "block_size": p.block_size,
        "cluster_size": p.cluster_size,
        "volume_bytes": p.volume_bytes,
        "clusters": p.clusters,
        "blocks": p.volume_blocks,
        "cluster_groups": p.cluster_groups,
        "journal_bytes": p.journal_bytes,
        "node_slots": p.slots,
        "mmp_update_interval": p.features.has_incompat(incompat::MMP).then_some(p.mmp_interval),
        "exit_code": exit::OK,
    })
}

/// Refuse a target that is missing, empty, read-only, mounted, busy, or
/// holds a file system (unless forced), before any byte is written.
/// The target, and whether it holds an OCFS2 volume with MMP that the
/// format must hold with the MMP guard from start to end.
fn open_target(cli: &Cli) -> anyhow::Result<(FileDevice, bool)> {
    let path = ocfs2_format::resolve::resolve(&cli.device)?;
    let dev_name = path.display().to_string();
    let meta = std::fs::metadata(&path).with_context(|| format!("{dev_name}: cannot open"))?;
    if meta.is_dir() {
        bail!("{dev_name}: is a directory, not a device or image file");
    }
    if let Some(at) = ocfs2_format::probe::mounted_at(&path) {
        bail!("{dev_name}: is mounted at {at}; will not make an OCFS2 volume here");
    }
    let dev = FileDevice::open(&path, OpenMode { write: !cli.dry_run, exclusive: true }).map_err(|e| match e {
        ocfs2_format::Error::Open { source, .. } if source.raw_os_error() == Some(30) || source.kind() == std::io::ErrorKind::PermissionDenied => {
            anyhow::anyhow!("{dev_name}: read-only target: {source}")
        }
        ocfs2_format::Error::Open { source, .. } if source.raw_os_error() == Some(16) => {
            anyhow::anyhow!("{dev_name}: in use by the system (exclusive open refused); will not make an OCFS2 volume here")
        }
        other => anyhow::Error::new(other).context(dev_name.clone()),
    })?;
    if !cli.dry_run && dev.is_block_device() && block_device_read_only(&path) {
        bail!("{dev_name}: read-only target: the block device is read-only");
    }
    if dev.size() == 0 {
        bail!("{dev_name}: the target is empty (0 bytes): give an image file a size first (truncate -s 1G {dev_name})");
    }
    let mut hold = false;
    if let Some(sig) = ocfs2_format::probe::existing_signature(&dev) {
        // On a terminal the answer stands for -F, as mkfs.ocfs2 asks.
        let mut force = cli.force;
        if !force && !cli.dry_run && !cli.json && std::io::stdin().is_terminal() {
            force = ask_overwrite(&dev_name, sig)?;
            if !force {
                bail!("{dev_name}: cancelled at the prompt; nothing written");
            }
        }
        if sig == "ocfs2" {
            hold = refuse_if_in_use(&path, &dev_name, cli, force, cli.hb_window)?;
        }
        if !force {
            bail!("{dev_name}: holds an existing {sig} file system; use -F to overwrite it");
        }
    }
    Ok((dev, hold))
}

/// Ask on the terminal before overwriting a file system, as mkfs.ocfs2
/// does ("Overwriting existing ocfs2 partition. Proceed (y/N)").
fn ask_overwrite(dev_name: &str, sig: &str) -> anyhow::Result<bool> {
    let what = if sig == "ocfs2" {
        "ocfs2 partition".to_string()
    } else {
        format!("{sig} file system")
    };
    eprint!("{PROG}: {dev_name}: overwriting existing {what}. Proceed (y/N): ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// A read-only block device (`losetup -r`, a write-protected disk) opens
/// read-write but fails every write: ask sysfs before writing anything.
fn block_device_read_only(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(rdev) = std::fs::metadata(path).map(|m| m.rdev()) else {
        return false;
    };
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/ro"))
        .is_ok_and(|s| s.trim() == "1")
}

/// An OCFS2 volume with MMP that is in use (or being checked) is refused
/// even with -F. `Ok(true)`: a volume with MMP, to be held with the guard
/// while it is formatted over (whose check comes first; a dry run checks
/// here instead).
fn refuse_if_in_use(
    path: &std::path::Path,
    dev_name: &str,
    cli: &Cli,
    force: bool,
    hb_window: Option<u32>,
) -> anyhow::Result<bool> {
    let Ok(dev) = FileDevice::open(path, OpenMode::default()) else {
        return Ok(false);
    };
    let Ok(vol) = Volume::open(Box::new(dev)) else {
        return Ok(false);
    };
    if !vol.features().has_incompat(incompat::MMP) {
        // A cluster (stock kernels, no MMP) may have it mounted: its nodes'
        // o2hb heartbeat says so. Nothing to wait for when none ever
        // heartbeated here, or when the slot map cannot be found; and none
        // without -F, which is refused next anyway.
        if !force || vol.slot_map_layout().is_err() {
            return Ok(false);
        }
        let report = ocfs2_mmp::engine::watch_without_mmp(
            &vol,
            hb_window,
            &mut ocfs2_mmp::SystemClock,
            &mut ocfs2_toolkit::WaitReporter::new(PROG, cli.quiet).with_prefix("existing volume: "),
        )
        .unwrap_or_else(|e| {
            // A damaged volume is what -F is for: say what could not be
            // checked, and go on.
            eprintln!(
                "{PROG}: {dev_name}: warning: the existing volume's heartbeat cannot be read ({e}); \
                 not checked for live cluster nodes"
            );
            None
        });
        if let Some(r) = report {
            if matches!(
                r.verdict,
                ocfs2_mmp::Verdict::Heartbeating { .. }
                    | ocfs2_mmp::Verdict::Active { .. }
                    | ocfs2_mmp::Verdict::Interrupted { .. }
            ) {
                bail!(
                    "{dev_name}: the existing OCFS2 volume is {}; refusing even with -F",
                    r.verdict.describe()
                );
            }
        }
        return Ok(false);
    }
    let io = ocfs2_mmp::engine::VolumeSlots::new(&vol).map_err(|e| {
        anyhow::anyhow!(
            "{dev_name}: the existing OCFS2 volume has MMP on but its slot map cannot be read ({e}): cannot tell \
             whether a node uses it; refusing even with -F (clear the volume's first MiB by hand if you are sure)"
        )
    })?;
    if force && !cli.dry_run {
        // The guard runs the same check, then holds the volume.
        return Ok(true);
    }
    let report = ocfs2_mmp::check(
        vol.sb().s_mmp_update_interval.get(),
        ocfs2_mmp::CheckOptions {
            wait: true,
            feature_on: true,
            hb: ocfs2_mmp::engine::hb_options(&vol, hb_window),
        },
        &io,
        &mut ocfs2_mmp::SystemClock,
        &mut ocfs2_toolkit::WaitReporter::new(PROG, cli.quiet).with_prefix("existing volume: "),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "{dev_name}: the existing OCFS2 volume has MMP on but its slot map or heartbeat cannot be read ({e}): \
             cannot tell whether a node uses it; refusing even with -F"
        )
    })?;
    if !report.verdict.is_safe() {
        bail!(
            "{dev_name}: the existing OCFS2 volume is {}; refusing even with -F",
            report.verdict.describe()
        );
    }
    Ok(false)
}

pub fn run(cli: &Cli, opts: &Options) -> anyhow::Result<()> {
    let (dev, hold) = open_target(cli)?;
    let dev_name = dev.path().display().to_string();
    let p = plan::make_plan(opts, dev.size(), dev.sector_size())
        .map_err(|e| anyhow::anyhow!("{dev_name}: {e}"))?;
    let mut rng = rand::rng();
    let id = build::Identity {
        uuid: opts.uuid.unwrap_or_else(|| {
            let mut u: [u8; 16] = rand::Rng::random(&mut rng);
            u[6] = (u[6] & 0x0F) | 0x40;
            u[8] = (u[8] & 0x3F) | 0x80;
            u
        }),
        generation: rand::Rng::random(&mut rng),
        dx_seed: [
            rand::Rng::random(&mut rng),
            rand::Rng::random(&mut rng),
            rand::Rng::random(&mut rng),
        ],
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    // Lay out in memory first: every refusal comes before the first write.
    let mut layout = build::layout(&p, id).map_err(|e| anyhow::anyhow!("{dev_name}: {e}"))?;
    // --json: one object at the end, no text.
    let quiet = cli.quiet || cli.json;
    if cli.dry_run {
        if cli.json {
            println!("{}", plan_json(&p, &dev_name, false));
        } else if !quiet {
            println!("Dry run");
            print!("{}", summary(&p));
        }
        return Ok(());
    }
    // Printed once the volume is ours to write: a refusal prints nothing.
    let announce = || {
        if !quiet {
            print!("{}", summary(&p));
        }
    };
    let mut steps = Steps {
        quiet,
        tty: ocfs2_toolkit::stdout_is_tty(),
        open: false,
    };
    if hold {
        hold::format_held(&dev, &mut layout, &mut steps, cli.hb_window, &announce)
            .with_context(|| dev_name.clone())?;
    } else {
        announce();
        layout
            .write(&dev, &mut steps)
            .map_err(|e| anyhow::anyhow!("{dev_name}: {e}"))?;
    }
    steps.done();
    if cli.json {
        println!("{}", plan_json(&p, &dev_name, true));
    } else if !quiet {
        println!(
            "Writing backup superblock: {} block(s)",
            layout.backups().len()
        );
        println!("{PROG} successful\n");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_and_features() {
        assert_eq!(ocfs2_toolkit::parse_size("4k"), Ok(4096));
        assert_eq!(ocfs2_toolkit::parse_size("1M"), Ok(1 << 20));
        assert!(ocfs2_toolkit::parse_size("x").is_err());
        let (on, off) = parse_features("mmp,nosparse,metaecc").unwrap();
        assert!(on.has_incompat(incompat::MMP | incompat::META_ECC));
        assert!(off.has_incompat(incompat::SPARSE_ALLOC));
        assert!(off.ro_compat & features::ro_compat::UNWRITTEN != 0);
        assert!(parse_features("bogus").is_err());
        assert_eq!(parse_interval("0"), Ok(5));
        assert!(parse_interval("301").is_err());
        assert!(parse_interval("-1").is_err());
        assert!(parse_interval("abc").is_err());
    }
}
