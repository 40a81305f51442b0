//! `fsck.ocfs2-mmp`: an MMP-aware check of a whole OCFS2 volume.
//!
//! MMP first, in every mode: the kernel's check, with its wait, before
//! anything else is read; then, unless `-n`, `SEQ_FSCK` in slot 0 for as
//! long as the check runs, put back on every exit path.

pub mod ask;
pub mod check;
pub mod fix;
pub mod problems;
pub mod repair;
pub mod replay;

use anyhow::{Context, Result};
use clap::Parser;
use ocfs2_format::features::incompat;
use ocfs2_format::{OpenMode, Volume};
use ocfs2_mmp::engine::{EngineError, Guard, VolumeSlots};
use ocfs2_mmp::{CheckOptions, SystemClock, Verdict};
use std::process::ExitCode;

pub const PROG: &str = "fsck.ocfs2-mmp";

/// fsck(8) exit codes.
pub mod exit {
    pub const CLEAN: u8 = 0;
    pub const CORRECTED: u8 = 1;
    pub const UNCORRECTED: u8 = 4;
    pub const OPERATIONAL: u8 = 8;
    pub const USAGE: u8 = 16;
    pub const CANCELLED: u8 = 32;
}

/// Check an OCFS2 volume, MMP first.
#[derive(Debug, Parser)]
#[command(name = PROG, version, about, long_about = None)]
pub struct Cli {
    /// Check only: open read-only and write nothing (not even the MMP marker); dirty journals are replayed in memory so the passes see the volume as -y would leave it
    #[arg(short = 'n', conflicts_with_all = ["yes", "preen"])]
    pub no: bool,
    /// Answer yes to every repair: replay dirty journals (other findings are reported, not yet repaired)
    #[arg(short = 'y', conflicts_with = "preen")]
    pub yes: bool,
    /// Preen: make only the repairs that are safe without a person (journal replay); exit 4 on the rest
    #[arg(short = 'p', visible_short_alias = 'a')]
    pub preen: bool,
    /// Force a full check (the check is always full)
    #[arg(short = 'f')]
    pub force: bool,
    /// Verbose: also print each pass
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Save every block to FILE before this run first overwrites it (e2fsck's option); --undo FILE puts them back
    #[arg(short = 'z', value_name = "FILE", conflicts_with = "no")]
    pub undo_file: Option<std::path::PathBuf>,
    /// Put back the blocks a run with -z FILE saved, refusing when the volume changed since that run
    #[arg(long = "undo", value_name = "FILE", conflicts_with_all = ["no", "yes", "preen", "undo_file"])]
    pub undo: Option<std::path::PathBuf>,
    /// Print the findings as JSON
    #[arg(long)]
    pub json: bool,
    /// Seconds to watch the o2hb heartbeat of clustered nodes (5 to 600; default: their dead threshold, at least 62)
    #[arg(long = "hb-window", value_name = "SECONDS", value_parser = ocfs2_toolkit::parse_hb_window)]
    pub hb_window: Option<u32>,
    /// The volume: a path, LABEL=label or UUID=uuid
    #[arg(value_name = "DEVICE")]
    pub device: String,
}

/// A line per pass: always with `-v`; on a terminal, once the check has
/// taken a second (a quick check prints none); never otherwise.
struct Passes {
    show: bool,
    verbose: bool,
    start: std::time::Instant,
}
impl check::Progress for Passes {
    fn pass(&mut self, n: &str, name: &str) {
        if self.verbose || (self.show && self.start.elapsed() >= std::time::Duration::from_secs(1))
        {
            eprintln!("Pass {n}: {name}");
        }
    }
}

pub fn main() -> ExitCode {
    let cli: Cli = match ocfs2_toolkit::parse_args(exit::USAGE) {
        Ok(c) => c,
        Err(code) => return code,
    };
    ocfs2_toolkit::signals::install();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = match e.downcast_ref::<EngineError>() {
                Some(EngineError::Interrupted(_)) => exit::CANCELLED,
                _ => exit::OPERATIONAL,
            };
            // With --json, a refusal or failure is a JSON document too (the
            // one line on stderr stays).
            if cli.json {
                ocfs2_toolkit::json_error(Some(&cli.device), &ocfs2_toolkit::error_line(&e), code);
            }
            ocfs2_toolkit::print_error(PROG, &e.context(cli.device.clone()));
            ExitCode::from(code)
        }
    }
}

/// Print the findings and what was left (one JSON object with `--json`),
/// and return the exit status they make. Improvements offered and not
/// made (not damage) leave the status as it is: clean stays 0.
fn report(cli: &Cli, findings: &[check::Finding], notes: &[String], clusters: u32) -> u8 {
    let code = if findings.iter().any(|f| !f.fixed && f.damage) {
        exit::UNCORRECTED
    } else if findings.iter().any(|f| f.fixed) {
        exit::CORRECTED
    } else {
        exit::CLEAN
    };
    if cli.json {
        let out = serde_json::json!({
            "device": cli.device,
            "findings": findings,
            "left": notes,
            "exit_code": code,
        });
        println!("{out}");
    } else {
        for fnd in findings {
            let at = match (fnd.blkno, fnd.inode) {
                (Some(b), Some(i)) if i != b => format!("block {b} (inode {i})"),
                (Some(b), _) => format!("block {b}"),
                (None, Some(i)) => format!("inode {i}"),
                (None, None) => "volume".to_string(),
            };
            let fixed = match (fnd.fixed, fnd.damage) {
                (true, _) => " (fixed)",
                (false, true) => "",
                (false, false) => " (not damage; -y makes it)",
            };
            println!("[{}] {at}: {}{fixed}", fnd.code, fnd.message);
        }
        for n in notes {
            println!("{}: {n}", cli.device);
        }
        let left = findings.iter().filter(|f| !f.fixed && f.damage).count();
        let fixed = findings.iter().filter(|f| f.fixed).count();
        let offered = match findings.iter().filter(|f| !f.fixed && !f.damage).count() {
            0 => String::new(),
            n => format!("; {n} improvement(s) not made (-y makes them)"),
        };
        let dev = &cli.device;
        match (fixed, left) {
            (0, 0) => println!("{dev}: clean, {} clusters checked{offered}", clusters),
            (f, 0) => println!("{dev}: {f} problem(s) fixed; the volume is clean{offered}"),
            (0, l) => println!("{dev}: {l} problem(s) found and left uncorrected{offered}"),
            (f, l) => println!("{dev}: {f} problem(s) fixed, {l} left uncorrected{offered}"),
        }
    }
    code
}

/// Why the MMP check refuses, as one sentence naming the slot and value.
fn refusal(v: &Verdict, device: &str) -> String {
    match v {
        Verdict::FsckRunning { slot } => format!(
            "in use: slot {slot} holds SEQ_FSCK: another fsck (or tunefs) is running, or one was killed; if none runs, \
             clear it with: tunefs.ocfs2-mmp --clear-mmp {device}"
        ),
        Verdict::NoLiveness { slot, value } => format!(
            "cannot tell: slot {slot} holds {value:#010x} ({}), which no node updates and no heartbeat here shows alive or \
             dead: a node may have the volume mounted; if none does, clear it with: \
             tunefs.ocfs2-mmp --clear-mmp --force {device}",
            ocfs2_format::slotmap::MmpState::decode(*value).name()
        ),
        other => other.describe(),
    }
}

pub fn run(cli: &Cli) -> Result<u8> {
    // An undo asks nothing: putting the saved blocks back is the request.
    let Some(mut answers) =
        ask::Answers::from_options(cli.no, cli.yes || cli.undo.is_some(), cli.preen)
    else {
        anyhow::bail!(
            "no -n, -y or -p, and standard input is not a terminal: nobody can be asked before a repair \
             (use -n to check only, -p to make the repairs that are safe, -y to make them all)"
        );
    };
    let path = ocfs2_format::resolve::resolve(&cli.device)?;
    if !cli.no {
        if let Some(at) = ocfs2_format::probe::mounted_at(&path) {
            anyhow::bail!(
                "mounted at {at}: will not check a mounted volume (use -n for a read-only look)"
            );
        }
    }
    let write = !cli.no;
    let dev = ocfs2_format::FileDevice::open(
        &path,
        OpenMode {
            write,
            exclusive: write,
        },
    )?;
    if let Some(w) = ocfs2_format::BlockIo::direct_warning(&dev) {
        eprintln!("{PROG}: warning: {w}");
    }
    // With -n the volume is seen through an in-memory overlay: the journal
    // replay writes there, and the passes check what -y would leave.
    let mut undo_dev = None;
    let dev: std::sync::Arc<dyn ocfs2_format::BlockIo> = if cli.no {
        std::sync::Arc::new(ocfs2_format::overlay::Overlay::new(
            Box::new(dev),
            ocfs2_format::io::DIRECT_ALIGN as u32,
        ))
    } else if let Some(z) = &cli.undo_file {
        let u = std::sync::Arc::new(ocfs2_format::undo::UndoDevice::create(Box::new(dev), z)?);
        undo_dev = Some(u.clone());
        u
    } else {
        std::sync::Arc::new(dev)
    };
    let mut vol = Volume::open_for_check(Box::new(dev.clone()))?;
    let unknown = vol.features().unknown();
    if unknown.incompat != 0 || unknown.ro_compat != 0 {
        anyhow::bail!(
            "unsupported features (incompat {:#x}, ro_compat {:#x}): this fsck does not check volumes it does not understand",
            unknown.incompat,
            unknown.ro_compat
        );
    }
    // MMP on a volume with the old slot map (MMP_SLOTMAP_FORMAT): its
    // one-byte entries hold no sequence, so no MMP check can be made. No
    // kernel mounts it (the seed's refuses an MMP mount of it, a stock one
    // the unknown MMP bit), ocfs2-tools refuse the bit, and our tools
    // refuse the map: nobody else can be using it. -n checks it as it is;
    // a repair first rewrites the map empty in the extended format
    // (format::inprog's crash order), then takes the volume as usual.
    let mut converted = Vec::new();
    if vol.features().has_incompat(incompat::MMP)
        && !vol.features().has_incompat(incompat::EXTENDED_SLOT_MAP)
    {
        let found = check::Finding::new(
            "MMP_SLOTMAP_FORMAT",
            Some(vol.super_blkno()),
            None,
            "MMP is on but the slot map is in the old format".into(),
        );
        if !cli.no {
            let q = "MMP is on with the old slot map, which holds no MMP sequence: rewrite it empty in the extended format";
            if !answers.approve(problems::Repair::Yes, q) {
                let note = "nothing else was checked: the volume cannot be held with the old slot map (-y rewrites it)";
                return Ok(report(cli, &[found], &[note.to_string()], vol.clusters()));
            }
            ocfs2_format::inprog::convert_slot_map(
                &vol,
                ocfs2_format::slotmap::Format::Extended,
                &|| match ocfs2_toolkit::signals::pending() {
                    Some(sig) => Err(ocfs2_format::Error::Invalid(format!(
                        "interrupted by signal {sig} before the slot map was rewritten"
                    ))),
                    None => Ok(()),
                },
            )
            .context("rewriting the slot map in the extended format")?;
            vol = Volume::open_for_check(Box::new(dev.clone()))?;
            converted.push(check::Finding {
                fixed: true,
                ..found
            });
        } else {
            eprintln!(
                "{PROG}: {}: MMP is on with the old slot map, which no kernel mounts and no tool holds: checked without the MMP watch",
                cli.device
            );
        }
    }
    let f = vol.features();
    let mut say = ocfs2_toolkit::WaitReporter::new(PROG, cli.json);
    let interval = vol.sb().s_mmp_update_interval.get();
    let mmp = f.has_incompat(incompat::MMP) && f.has_incompat(incompat::EXTENDED_SLOT_MAP);
    // Only MMP needs the slot map before the passes: without MMP a slot map
    // that cannot be found is a finding of pass 0, not a reason to stop.
    let slots = if mmp {
        Some(VolumeSlots::new(&vol).context("locating the slot map")?)
    } else {
        None
    };
    // Without MMP, a cluster-capable volume is still refused while any
    // node's o2hb heartbeat moves (no wait when none ever heartbeated). A
    // slot map that cannot be found is left to pass 0.
    if !mmp && vol.slot_map_layout().is_ok() {
        // A heartbeat that cannot be read is damage for the passes to
        // report, not a reason to stop: say what was not checked.
        let watched =
            ocfs2_mmp::engine::watch_without_mmp(&vol, cli.hb_window, &mut SystemClock, &mut say)
                .unwrap_or_else(|e| {
                    eprintln!(
                        "{PROG}: {}: warning: the heartbeat cannot be read ({e}); not checked for live cluster nodes",
                        cli.device
                    );
                    None
                });
        if let Some(report) = watched {
            match report.verdict {
                Verdict::Interrupted { signal } => {
                    return Err(EngineError::Interrupted(signal).into())
                }
                Verdict::Heartbeating { .. } | Verdict::Active { .. } => {
                    anyhow::bail!("{}", report.verdict.refusal())
                }
                _ => {}
            }
        }
    }
    // MMP first: nothing else is read before the check has decided.
    let guard = if let (Some(slots), true) = (&slots, cli.no) {
        let report = ocfs2_mmp::check(
            interval,
            CheckOptions {
                wait: true,
                feature_on: true,
                hb: ocfs2_mmp::engine::hb_options(&vol, cli.hb_window),
            },
            slots,
            &mut SystemClock,
            &mut say,
        )
        .context("MMP check: reading the slot map and the heartbeat")?;
        if let Verdict::Interrupted { signal } = report.verdict {
            return Err(EngineError::Interrupted(signal).into());
        }
        if !report.verdict.is_safe() {
            anyhow::bail!(
                "{}",
                ocfs2_mmp::refusal_line(&refusal(&report.verdict, &cli.device))
            );
        }
        None
    } else if let Some(slots) = &slots {
        match Guard::acquire(
            slots,
            interval,
            ocfs2_mmp::engine::hb_options(&vol, cli.hb_window),
            ocfs2_format::slotmap::value::SEQ_FSCK,
            &mut SystemClock,
            &mut say,
            &ocfs2_toolkit::signals::pending,
        ) {
            Ok(g) => Some(g),
            Err(EngineError::InUse(v)) => {
                anyhow::bail!("{}", ocfs2_mmp::refusal_line(&refusal(&v, &cli.device)))
            }
            Err(e @ EngineError::Io(_)) => {
                return Err(anyhow::Error::new(e)
                    .context("MMP check: reading the slot map and the heartbeat"))
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        None
    };
    if let Some(file) = &cli.undo {
        let put_back = undo(&vol, file, guard.as_ref());
        let released = guard.map(Guard::release).transpose();
        let n = put_back?;
        released?;
        if cli.json {
            println!(
                "{}",
                serde_json::json!({"device": cli.device, "undo": file, "restored_chunks": n, "exit_code": exit::CLEAN})
            );
        } else {
            println!(
                "{}: {n} block(s) of 4 KiB put back from {}",
                cli.device,
                file.display()
            );
        }
        return Ok(exit::CLEAN);
    }
    // While the passes run, the guard's keep-alive re-reads slot 0 once per
    // update interval; a marker found gone stops the passes: another node
    // or tool has the volume, and what was read may be changing under us.
    let lost = || guard.as_ref().and_then(Guard::lost);
    let stop = || ocfs2_toolkit::signals::pending().is_some() || lost().is_some();
    let mut checker = check::Checker::new(&vol);
    let mut passes = Passes {
        show: cli.verbose || (!cli.json && ocfs2_toolkit::stderr_is_tty()),
        verbose: cli.verbose,
        start: std::time::Instant::now(),
    };
    let verify = || -> Result<()> {
        if let Some(sig) = ocfs2_toolkit::signals::pending() {
            return Err(EngineError::Interrupted(sig).into());
        }
        match &guard {
            Some(g) => g.verify().map_err(Into::into),
            None => Ok(()),
        }
    };
    let mut work = || -> Result<(Vec<check::Finding>, Vec<String>)> {
        // Journals are replayed as answered (with -n always, into the
        // overlay); a slot not replayed is reported by pass 4.
        let found;
        let mut notes = Vec::new();
        {
            let mut approve = |q: &str| cli.no || answers.approve(problems::Repair::Safe, q);
            let outcome = replay::run(&vol, &verify, !cli.no, &mut approve)?;
            if passes.show && !outcome.recovered.is_empty() {
                let mut slots = outcome.recovered.clone();
                slots.sort_unstable();
                eprintln!(
                    "Replayed the journal of slot(s) {}{}",
                    slots
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    if cli.no { " (in memory: -n)" } else { "" }
                );
            }
            found = outcome.findings;
            if outcome.superblock_replayed {
                // The passes below use the superblock read at open.
                notes.push(
                    "the replay wrote the superblock, which the passes read before it: run fsck again to check the replayed one"
                        .to_string(),
                );
            }
            // Recovered slots are given up, as the kernel gives up a dead
            // slot it recovered (with -n, pass 0 is told they would be).
            if !cli.no {
                replay::clear_slots(&vol, &outcome.recovered, &|w| match &guard {
                    Some(g) => g.exclusive(|| {
                        verify()?;
                        w()
                    }),
                    None => w(),
                })?;
            }
            checker.recovered.extend(outcome.recovered);
        }
        if stop() {
            return Ok((found, notes));
        }
        checker.run(&mut passes, &stop);
        if !stop() {
            let diff = std::mem::take(&mut checker.bitmap_diff);
            notes.extend(repair::rounds(
                &dev,
                &mut checker.findings,
                diff,
                !checker.dirs_incomplete,
                &checker.recovered,
                &mut |r, q| answers.approve(r, q),
                &verify,
                &stop,
                passes.show,
            )?);
        }
        Ok((found, notes))
    };
    let worked = match &guard {
        Some(g) => g.hold(work),
        None => work(),
    };
    if let Some(e) = lost() {
        // (Dropping the guard writes nothing: its hold is over.)
        return Err(
            anyhow::Error::new(e).context("the check was stopped and its findings are void")
        );
    }
    let (replayed, notes) = match worked {
        Ok(f) => f,
        Err(e) => {
            // A replay that failed part-way leaves the slot dirty: the next
            // run replays it again. The marker goes back as usual.
            let put_back = guard.map(Guard::release).transpose();
            if let Some(EngineError::Interrupted(_)) = e.downcast_ref::<EngineError>() {
                eprintln!(
                    "{PROG}: interrupted during the journal replay; the MMP marker is put back"
                );
                return Ok(exit::CANCELLED);
            }
            put_back?;
            return Err(e);
        }
    };
    if let Some(sig) = ocfs2_toolkit::signals::pending() {
        if let Some(g) = guard {
            g.release()?;
        }
        eprintln!("{PROG}: interrupted by signal {sig}; the MMP marker is put back");
        return Ok(exit::CANCELLED);
    }
    // Put back what the volume needs: 0, or a dead mount's value (its
    // journal still waits for the next mount to replay it). Reported after
    // the findings: the check itself is done.
    // A clustered slot 0 whose journal this run recovered is given up too.
    let slot0_recovered = checker.recovered.contains(&0);
    let put_back = guard
        .map(|g| {
            let back = match ocfs2_format::slotmap::MmpState::decode(g.original()) {
                ocfs2_format::slotmap::MmpState::Cluster if slot0_recovered => 0,
                _ => g.restore_value(),
            };
            g.release_to(back)
        })
        .transpose();
    let mut findings = converted;
    findings.extend(replayed);
    findings.append(&mut checker.findings);
    let code = report(cli, &findings, &notes, vol.clusters());
    if let Some(u) = undo_dev {
        let n = u
            .seal(&live_ranges(&vol))
            .context("sealing the undo file")?;
        if !cli.json && n > 0 {
            if let Some(z) = &cli.undo_file {
                println!(
                    "{}: {n} block(s) of 4 KiB saved in {}; put them back with: {PROG} --undo {} {}",
                    cli.device,
                    z.display(),
                    z.display(),
                    cli.device
                );
            }
        }
    }
    if let Err(e) = put_back {
        return Err(
            anyhow::Error::new(e).context("the check is done, but slot 0 could not be put back")
        );
    }
    Ok(code)
}

/// The slot map's byte ranges: live MMP state, left out of undo files.
fn live_ranges(vol: &Volume) -> Vec<(u64, u64)> {
    vol.slot_map_layout()
        .map(|(_, runs)| runs.iter().map(|&(_, d, n)| (d, n as u64)).collect())
        .unwrap_or_default()
}

/// `--undo FILE`: put back what a `-z FILE` run saved, under the guard,
/// refusing when the volume no longer holds what that run left.
fn undo(vol: &Volume, file: &std::path::Path, guard: Option<&Guard>) -> Result<usize> {
    let u = ocfs2_format::undo::UndoFile::read(file)?;
    let dev = vol.device();
    anyhow::ensure!(
        u.device_size == dev.size(),
        "undo file {}: it was written for a device of {} bytes, this one has {}",
        file.display(),
        u.device_size,
        dev.size()
    );
    if u.sealed.is_empty() && !u.saved.is_empty() {
        anyhow::bail!(
            "undo file {}: the run that wrote it did not finish (no seal): what it left is unknown, refusing to undo",
            file.display()
        );
    }
    // The slot map holds live MMP state (our own marker now): never undone.
    let keep = live_ranges(vol);
    let changed = u.changed_since(dev, &keep)?;
    if let Some(first) = changed.first() {
        anyhow::bail!(
            "undo file {}: {} block(s) of 4 KiB changed since that run (the first at byte {first}): refusing to undo",
            file.display(),
            changed.len()
        );
    }
    if let Some(g) = guard {
        g.verify()?;
    }
    Ok(u.restore(dev, &keep)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_valid() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn every_repair_is_documented() {
        let man = include_str!("../../../man/fsck.ocfs2-mmp.8");
        for p in super::problems::PROBLEMS {
            let entry = man
                .split(&format!(".B {}\n", p.code))
                .nth(1)
                .and_then(|rest| rest.split(".TP").next())
                .unwrap_or("");
            use super::problems::Repair;
            let says = if entry.contains("Repaired by \\fB\\-y\\fR and \\fB\\-p\\fR") {
                Repair::Safe
            } else if entry.contains("Repaired by \\fB\\-y\\fR") {
                Repair::Yes
            } else {
                Repair::No
            };
            assert_eq!(
                says, p.repair,
                "man/fsck.ocfs2-mmp.8 on {}: says how it is repaired as the table does",
                p.code
            );
        }
    }

    /// Each fsck.ocfs2 code the page maps to one of ours names a code
    /// that exists.
    #[test]
    fn fsck_ocfs2_codes_map_to_ours() {
        let man = include_str!("../../../man/fsck.ocfs2-mmp.8");
        let section = man
            .split(".SH FSCK.OCFS2 CODES")
            .nth(1)
            .and_then(|r| r.split("\n.SH ").next())
            .expect("the page has a FSCK.OCFS2 CODES section");
        let mut n = 0;
        for entry in section.split(".TP\n.B ").skip(1) {
            n += 1;
            if let Some(ours) = entry.split("Reported as \\fB").nth(1) {
                let code = ours.split("\\fR").next().unwrap_or("");
                assert!(
                    super::problems::lookup(code).is_some(),
                    "{code} is not one of our codes"
                );
            } else {
                assert!(
                    entry.contains("Not checked: "),
                    "{entry}: neither mapped nor explained"
                );
            }
        }
        assert!(n >= 40, "only {n} entries");
    }

    #[test]
    fn every_code_is_documented() {
        let man = include_str!("../../../man/fsck.ocfs2-mmp.8");
        for p in super::problems::PROBLEMS {
            assert!(
                man.contains(&format!(".B {}", p.code)),
                "man/fsck.ocfs2-mmp.8 does not document {}",
                p.code
            );
        }
    }
}
