//! `-f`: who holds each volume. Every volume's MMP check (its slot map
//! watched for the wait its update interval asks, and on a clustered volume
//! the o2hb heartbeat of its nodes) runs in a thread of its own, so the
//! whole run waits as long as the longest check, not their sum.

use crate::Entry;
use ocfs2_format::features::incompat;
use ocfs2_format::slotmap::Format;
use ocfs2_format::{FileDevice, OpenMode, Volume};
use ocfs2_mmp::{CheckOptions, SystemClock, Verdict};
use serde::Serialize;

/// A volume's state.
#[derive(Debug, Clone, Serialize)]
pub struct State {
    /// free, mounted, fsck, stale, unknown.
    pub kind: &'static str,
    /// For people: the state with its nodes or slots.
    pub text: String,
    /// Nodes seen holding the volume (heartbeat moving, named by a slot).
    pub nodes: Vec<u16>,
    /// The MMP check's verdict in one sentence.
    pub verdict: String,
}

fn join<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}

/// The state of the volume at `device`: the MMP check, waited out.
fn check(device: &str, hb_window: Option<u32>) -> Result<State, String> {
    let dev = FileDevice::open(std::path::Path::new(device), OpenMode::default())
        .map_err(|e| e.to_string())?;
    let vol = Volume::open(Box::new(dev)).map_err(|e| format!("{device}: {e}"))?;
    let f = vol.features();
    let mmp = f.has_incompat(incompat::MMP);
    let io = ocfs2_mmp::engine::VolumeSlots::new(&vol).map_err(|e| format!("{device}: {e}"))?;
    let hb = ocfs2_mmp::engine::hb_options(&vol, hb_window);
    let report = ocfs2_mmp::check(
        vol.sb().s_mmp_update_interval.get(),
        CheckOptions {
            wait: true,
            feature_on: mmp && vol.slot_map_format() == Format::Extended,
            hb,
        },
        &io,
        &mut SystemClock,
        &mut ocfs2_mmp::Silent,
    )
    .map_err(|e| format!("{device}: {e}"))?;
    let nodes = report.nodes();
    let verdict = report.verdict.describe();
    let held: Vec<u16> = report
        .last
        .as_ref()
        .map(|m| {
            m.slots
                .iter()
                .filter(|s| s.legacy_in_use(m.format))
                .map(|s| s.index)
                .collect()
        })
        .unwrap_or_default();
    let (kind, text) = match &report.verdict {
        Verdict::Clean => ("free", "free".to_string()),
        Verdict::Stale { slots, .. } => (
            "stale",
            format!(
                "stale: slot(s) {} of mounts that died (journal recovery due)",
                join(slots)
            ),
        ),
        Verdict::Active { slot, .. } => ("mounted", format!("mounted (slot {slot} moves)")),
        Verdict::Heartbeating { nodes: n, .. } => {
            ("mounted", format!("mounted by node(s) {}", join(n)))
        }
        Verdict::FsckRunning { .. } => ("fsck", "fsck running (or a killed fsck's marker)".into()),
        Verdict::ReadOnlyMount { slot } => ("mounted", format!("mounted read-only (slot {slot})")),
        Verdict::FeatureOff if !nodes.mounted.is_empty() => (
            "mounted",
            format!("mounted by node(s) {}", join(&nodes.mounted)),
        ),
        Verdict::FeatureOff if !held.is_empty() => (
            "unknown",
            format!(
                "slot(s) {} held; without MMP a live mount and a dead one look the same",
                join(&held)
            ),
        ),
        Verdict::FeatureOff => ("free", "free (no slot held; no MMP)".to_string()),
        v => ("unknown", format!("cannot tell: {}", v.describe())),
    };
    Ok(State {
        kind,
        text,
        nodes: nodes.mounted,
        verdict,
    })
}

/// Fill in every readable volume's state, all checks at once. The wait is
/// announced once, on standard error (not with `--json`).
pub fn fill(entries: &mut [Entry], hb_window: Option<u32>, json: bool) {
    let todo: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].ocfs2 && entries[i].problem.is_none())
        .collect();
    if todo.is_empty() {
        return;
    }
    if !json {
        // The slot maps' wait; a clustered volume's heartbeat watch may
        // take its window (the dead threshold, 62 s by default) instead.
        let wait = todo
            .iter()
            .map(|&i| ocfs2_mmp::wait_time(entries[i].interval))
            .max()
            .unwrap_or(0);
        let clustered = todo.iter().any(|&i| entries[i].stack != "local");
        eprintln!(
            "{}: watching {} volume(s) at once: {wait} s for the slot maps{}",
            crate::PROG,
            todo.len(),
            if clustered {
                format!(
                    ", the heartbeat of clustered ones for {} s",
                    hb_window.map_or("their dead threshold (at least 62)".to_string(), |w| w
                        .to_string())
                )
            } else {
                String::new()
            }
        );
    }
    let results: Vec<(usize, Result<State, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = todo
            .iter()
            .map(|&i| {
                let device = entries[i].device.clone();
                (i, s.spawn(move || check(&device, hb_window)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(i, h)| {
                (
                    i,
                    h.join()
                        .unwrap_or_else(|_| Err("the check stopped".to_string())),
                )
            })
            .collect()
    });
    for (i, r) in results {
        entries[i].state = Some(r.unwrap_or_else(|e| State {
            kind: "unknown",
            text: format!("cannot tell: {e}"),
            nodes: Vec::new(),
            verdict: e,
        }));
    }
}
