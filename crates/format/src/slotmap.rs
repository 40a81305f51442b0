//! The slot map system file, old (`le16` node number per slot, `0xFFFF` =
//! empty) and extended (8-byte entries: `es_valid` as `le32` under the MMP
//! patch, `es_node_num` as `le32`), and the MMP meaning of `es_valid`.

use serde::Serialize;

/// `es_valid` values of the MMP patch.
pub mod value {
    pub const EMPTY: u32 = 0;
    /// Largest sequence a non-clustered MMP mount writes.
    pub const SEQ_MAX: u32 = 0xE24D_4D4F;
    /// fsck is running: every mount fails.
    pub const SEQ_FSCK: u32 = 0xE24D_4D50;
    /// Held by a clustered mount (no heartbeat in this value).
    pub const VALID_CLUSTER: u32 = 0xE24D_4D55;
    /// Held by a non-clustered mount without MMP.
    pub const VALID_NOCLUSTER: u32 = 0xE24D_4D5A;
    /// The last MMP mount unmounted cleanly.
    pub const SEQ_CLEAN: u32 = 0xFF4D_4D50;
    /// A stock kernel's one-byte "in use" flag; a patched kernel reads it as sequence 1.
    pub const LEGACY_VALID: u32 = 1;
}

/// Old slot map: this node number marks an empty slot (`(u16)-1`).
pub const OLD_EMPTY: u16 = 0xFFFF;

/// `s_tunefs_flag` bit (with the aborted-tunefs feature) of a slot map
/// rewrite tunefs.ocfs2-mmp did not finish; the kernel's own bits are
/// REMOVE_SLOT (0x1) and DIR_TRAILER (0x2).
pub const TUNEFS_FLAG_SLOTMAP: u16 = 0x0100;

/// The value of an empty entry of `format`: 0 (extended), 0xFFFF (old).
pub fn empty_value(format: Format) -> u32 {
    match format {
        Format::Old => u32::from(OLD_EMPTY),
        Format::Extended => value::EMPTY,
    }
}

/// The byte an empty map of `format` is filled with (mkfs.ocfs2's
/// `ocfs2_format_slot_map`): 0 for the extended map, 0xFF for the old one.
pub fn empty_fill(format: Format) -> u8 {
    match format {
        Format::Extended => 0,
        Format::Old => 0xFF,
    }
}

/// Which format's empty map `bytes` is, if any.
pub fn empty_format_of(bytes: &[u8]) -> Option<Format> {
    [Format::Extended, Format::Old]
        .into_iter()
        .find(|&f| bytes.iter().all(|&b| b == empty_fill(f)))
}

/// Which layout the slot map uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Old,
    Extended,
}

impl Format {
    pub fn entry_size(self) -> usize {
        match self {
            Format::Old => 2,
            Format::Extended => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Format::Old => "old",
            Format::Extended => "extended",
        }
    }
}

/// What an `es_valid` value means under the MMP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "value", rename_all = "snake_case")]
pub enum MmpState {
    /// `0`: the slot is free.
    Empty,
    /// `1..=SEQ_MAX`: a non-clustered MMP mount (live if it moves), or a
    /// stock kernel's flag `1`.
    Sequence(u32),
    /// `SEQ_FSCK`: fsck is running.
    Fsck,
    /// `VALID_CLUSTER`: a clustered mount holds the slot.
    Cluster,
    /// `VALID_NOCLUSTER`: a non-clustered mount without MMP holds the slot.
    Nocluster,
    /// `SEQ_CLEAN`: the last MMP mount unmounted cleanly.
    Clean,
    /// Anything else: not safe.
    Unknown(u32),
}

impl MmpState {
    pub fn decode(v: u32) -> Self {
        match v {
            value::EMPTY => MmpState::Empty,
            1..=value::SEQ_MAX => MmpState::Sequence(v),
            value::SEQ_FSCK => MmpState::Fsck,
            value::VALID_CLUSTER => MmpState::Cluster,
            value::VALID_NOCLUSTER => MmpState::Nocluster,
            value::SEQ_CLEAN => MmpState::Clean,
            _ => MmpState::Unknown(v),
        }
    }

    /// Short stable name, used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            MmpState::Empty => "empty",
            MmpState::Sequence(_) => "sequence",
            MmpState::Fsck => "fsck",
            MmpState::Cluster => "cluster",
            MmpState::Nocluster => "nocluster",
            MmpState::Clean => "clean",
            MmpState::Unknown(_) => "unknown",
        }
    }

    /// A sentence for people.
    pub fn describe(self) -> String {
        match self {
            MmpState::Empty => "free".into(),
            MmpState::Sequence(1) => "MMP sequence 1 (or a stock kernel's in-use flag)".into(),
            MmpState::Sequence(s) => {
                format!("MMP sequence {s:#010x} (a non-clustered mount; live if it moves)")
            }
            MmpState::Fsck => "fsck is running (SEQ_FSCK)".into(),
            MmpState::Cluster => "held by a clustered mount (VALID_CLUSTER)".into(),
            MmpState::Nocluster => {
                "held by a non-clustered mount without MMP (VALID_NOCLUSTER)".into()
            }
            MmpState::Clean => "SEQ_CLEAN: a read-only mount, live or crashed".into(),
            MmpState::Unknown(v) => format!("unknown value {v:#010x}: not safe"),
        }
    }

    /// Slot not in use in the kernel's sense (`0` or `SEQ_CLEAN`).
    pub fn is_unused(self) -> bool {
        matches!(self, MmpState::Empty | MmpState::Clean)
    }
}

/// Parse a value name as the tools accept it: a number (decimal or `0x` hex)
/// or `empty`, `clean`, `fsck`, `cluster`, `nocluster`.
pub fn parse_value(s: &str) -> Option<u32> {
    match s.to_ascii_lowercase().as_str() {
        "empty" | "zero" => Some(value::EMPTY),
        "clean" => Some(value::SEQ_CLEAN),
        "fsck" => Some(value::SEQ_FSCK),
        "cluster" | "valid_cluster" => Some(value::VALID_CLUSTER),
        "nocluster" | "valid_nocluster" => Some(value::VALID_NOCLUSTER),
        other => {
            if let Some(hex) = other.strip_prefix("0x") {
                u32::from_str_radix(hex, 16).ok()
            } else {
                other.parse().ok()
            }
        }
    }
}

/// One slot as stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub index: u16,
    /// `es_valid` (extended) or the `le16` node number (old).
    pub raw: u32,
    /// Node number: `es_node_num` (extended) or the old entry itself.
    pub node: u32,
}

impl Slot {
    /// Whether a stock kernel or ocfs2-tools (which read only the low byte
    /// of `es_valid`) would take this slot as in use.
    pub fn legacy_in_use(&self, format: Format) -> bool {
        match format {
            Format::Old => self.raw as u16 != OLD_EMPTY,
            Format::Extended => self.raw & 0xFF != 0,
        }
    }
}

/// The decoded slot map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    pub format: Format,
    pub slots: Vec<Slot>,
}

impl SlotMap {
    /// Decode `num_slots` entries from the start of the slot map file.
    /// Returns `None` when `bytes` is too short.
    pub fn decode(bytes: &[u8], format: Format, num_slots: u16) -> Option<SlotMap> {
        let need = usize::from(num_slots) * format.entry_size();
        if bytes.len() < need {
            return None;
        }
        let slots = (0..num_slots)
            .map(|i| {
                let i_us = usize::from(i);
                match format {
                    Format::Old => {
                        let v = u16::from_le_bytes([bytes[i_us * 2], bytes[i_us * 2 + 1]]);
                        Slot {
                            index: i,
                            raw: u32::from(v),
                            node: u32::from(v),
                        }
                    }
                    Format::Extended => {
                        let e = &bytes[i_us * 8..i_us * 8 + 8];
                        let raw = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
                        let node = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
                        Slot {
                            index: i,
                            raw,
                            node,
                        }
                    }
                }
            })
            .collect();
        Some(SlotMap { format, slots })
    }

    /// Encode one slot's entry bytes.
    pub fn encode_entry(format: Format, raw: u32, node: u32) -> Vec<u8> {
        match format {
            Format::Old => (raw as u16).to_le_bytes().to_vec(),
            Format::Extended => {
                let mut v = raw.to_le_bytes().to_vec();
                v.extend_from_slice(&node.to_le_bytes());
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_every_protocol_value() {
        assert_eq!(MmpState::decode(0), MmpState::Empty);
        assert_eq!(MmpState::decode(1), MmpState::Sequence(1));
        assert_eq!(
            MmpState::decode(0xE24D_4D4F),
            MmpState::Sequence(0xE24D_4D4F)
        );
        assert_eq!(MmpState::decode(0xE24D_4D50), MmpState::Fsck);
        assert_eq!(MmpState::decode(0xE24D_4D55), MmpState::Cluster);
        assert_eq!(MmpState::decode(0xE24D_4D5A), MmpState::Nocluster);
        assert_eq!(MmpState::decode(0xFF4D_4D50), MmpState::Clean);
        assert_eq!(
            MmpState::decode(0xE24D_4D51),
            MmpState::Unknown(0xE24D_4D51)
        );
        assert_eq!(
            MmpState::decode(0xF000_0000),
            MmpState::Unknown(0xF000_0000)
        );
    }

    #[test]
    fn decode_both_formats() {
        let mut ext = vec![0u8; 32];
        ext[0..4].copy_from_slice(&0xE24D_4D55u32.to_le_bytes());
        ext[4..8].copy_from_slice(&3u32.to_le_bytes());
        let m = SlotMap::decode(&ext, Format::Extended, 4).unwrap();
        assert_eq!(
            m.slots[0],
            Slot {
                index: 0,
                raw: 0xE24D_4D55,
                node: 3
            }
        );
        assert!(m.slots[0].legacy_in_use(Format::Extended));
        let old = [1u8, 0, 0xFF, 0xFF];
        let m = SlotMap::decode(&old, Format::Old, 2).unwrap();
        assert!(m.slots[0].legacy_in_use(Format::Old));
        assert!(!m.slots[1].legacy_in_use(Format::Old));
        assert!(SlotMap::decode(&old, Format::Old, 3).is_none());
    }

    #[test]
    fn parse_named_values() {
        assert_eq!(parse_value("fsck"), Some(value::SEQ_FSCK));
        assert_eq!(parse_value("0xE24D4D55"), Some(value::VALID_CLUSTER));
        assert_eq!(parse_value("17"), Some(17));
        assert_eq!(parse_value("nope"), None);
    }
}
