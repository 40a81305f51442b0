//! Identity and mount type, all superblock fields, changed as
//! tunefs.ocfs2 changes them: the label (`-L`), the UUID (`-U`,
//! `--uuid-reset[=UUID]`, `--cloned-volume[=LABEL]`) and local or clustered
//! mounts (`-M local|cluster`, `--fs-features=[no]local`).
//!
//! The UUID names the volume's o2hb heartbeat region; `s_uuid_hash`, which
//! seeds the directory index hash, is left as it is (tunefs.ocfs2 leaves it
//! too), so indexed directories stay valid under a new UUID.

use ocfs2_format::features::incompat;
use ocfs2_format::ondisk::{SuperBlock, MAX_VOL_LABEL_LEN, VOL_UUID_LEN};

/// What `--cloned-volume` appends to a label (tunefs.ocfs2's CLONED_LABEL).
const CLONED: &[u8] = b"-cloned";

/// A label as stored: at most 63 bytes, NUL-padded to 64.
pub fn parse_label(s: &str) -> Result<[u8; MAX_VOL_LABEL_LEN], String> {
    if s.is_empty() {
        return Err("no label given".into());
    }
    if s.len() >= MAX_VOL_LABEL_LEN {
        return Err(format!(
            "label '{s}' is {} bytes: labels hold at most {}",
            s.len(),
            MAX_VOL_LABEL_LEN - 1
        ));
    }
    let mut out = [0u8; MAX_VOL_LABEL_LEN];
    out[..s.len()].copy_from_slice(s.as_bytes());
    Ok(out)
}

/// A UUID given as 32 hex digits, or 36 with dashes at 8, 13, 18 and 23
/// (the two forms tunefs.ocfs2 takes).
pub fn parse_uuid(s: &str) -> Result<[u8; VOL_UUID_LEN], String> {
    let hex: String = match s.len() {
        32 => s.to_string(),
        36 if [8, 13, 18, 23].iter().all(|&i| s.as_bytes()[i] == b'-') => {
            s.chars().filter(|&c| c != '-').collect()
        }
        _ => {
            return Err(format!(
                "UUID '{s}': give 32 hex digits, or 36 characters with dashes (8-4-4-4-12)"
            ))
        }
    };
    let mut out = [0u8; VOL_UUID_LEN];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
            .map_err(|_| format!("UUID '{s}': not hexadecimal"))?;
    }
    Ok(out)
}

/// A random (version 4) UUID, from the kernel's random source.
pub fn random_uuid() -> std::io::Result<[u8; VOL_UUID_LEN]> {
    use std::io::Read;
    let mut u = [0u8; VOL_UUID_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut u)?;
    u[6] = (u[6] & 0x0F) | 0x40;
    u[8] = (u[8] & 0x3F) | 0x80;
    Ok(u)
}

/// The label `--cloned-volume` gives: the one asked for, or the old one
/// with "-cloned" appended (the old one cut short to make room), unless it
/// ends so already.
pub fn cloned_label(
    old: &[u8; MAX_VOL_LABEL_LEN],
    new: Option<&[u8; MAX_VOL_LABEL_LEN]>,
) -> [u8; MAX_VOL_LABEL_LEN] {
    if let Some(n) = new {
        return *n;
    }
    let len = old
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(MAX_VOL_LABEL_LEN);
    if old[..len].ends_with(CLONED) {
        return *old;
    }
    let keep = len.min(MAX_VOL_LABEL_LEN - 1 - CLONED.len());
    let mut out = [0u8; MAX_VOL_LABEL_LEN];
    out[..keep].copy_from_slice(&old[..keep]);
    out[keep..keep + CLONED.len()].copy_from_slice(CLONED);
    out
}

/// Text of a stored label.
pub fn label_text(l: &[u8; MAX_VOL_LABEL_LEN]) -> String {
    let len = l.iter().position(|&c| c == 0).unwrap_or(l.len());
    String::from_utf8_lossy(&l[..len]).into_owned()
}

/// Hex of a UUID, as debugfs.ocfs2 prints it.
pub fn uuid_text(u: &[u8; VOL_UUID_LEN]) -> String {
    u.iter().map(|b| format!("{b:02X}")).collect()
}

/// Local (single-node) or clustered mounts: the LOCAL_MOUNT bit; turning
/// it on also drops USERSPACE_STACK, as tunefs.ocfs2 does (a local volume
/// has no cluster stack). Turning it off leaves the classic o2cb stack.
pub fn set_local(sb: &mut SuperBlock, local: bool) {
    let f = sb.s_feature_incompat.get();
    sb.s_feature_incompat.set(if local {
        (f | incompat::LOCAL_MOUNT) & !incompat::USERSPACE_STACK
    } else {
        f & !incompat::LOCAL_MOUNT
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        let a = parse_uuid("178BDC83D50241EF94EB474A677D498B").unwrap();
        let b = parse_uuid("178bdc83-d502-41ef-94eb-474a677d498b").unwrap();
        assert_eq!(a, b);
        assert_eq!(uuid_text(&a), "178BDC83D50241EF94EB474A677D498B");
        for bad in [
            "",
            "178BDC83",
            "178BDC83D50241EF94EB474A677D498G",
            "178bdc83-d50241ef-94eb-474a677d498b",
        ] {
            assert!(parse_uuid(bad).is_err(), "{bad}");
        }
        let r = random_uuid().unwrap();
        assert_eq!(r[6] >> 4, 4);
    }

    #[test]
    fn labels() {
        assert!(parse_label("").is_err());
        assert!(parse_label(&"x".repeat(64)).is_err());
        let l = parse_label(&"x".repeat(63)).unwrap();
        assert_eq!(label_text(&l).len(), 63);
        let c = cloned_label(&parse_label("data").unwrap(), None);
        assert_eq!(label_text(&c), "data-cloned");
        assert_eq!(cloned_label(&c, None), c, "not twice");
        let long = cloned_label(&l, None);
        assert_eq!(label_text(&long), format!("{}-cloned", "x".repeat(56)));
        let n = parse_label("new").unwrap();
        assert_eq!(cloned_label(&c, Some(&n)), n);
    }
}

/// A cluster stack as stored in `s_cluster_info` (libocfs2's
/// `ocfs2_set_cluster_desc`): the stack name (o2cb, pcmk, cman), the cluster
/// name, and o2cb's global heartbeat flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub stack: String,
    pub cluster: String,
    pub global_heartbeat: bool,
}

impl Stack {
    /// Check the names as mkfs.ocfs2 and libocfs2 check them.
    pub fn new(stack: &str, cluster: &str, global_heartbeat: bool) -> Result<Stack, String> {
        if !matches!(stack, "o2cb" | "pcmk" | "cman") {
            return Err(format!("cluster stack '{stack}': use o2cb, pcmk or cman"));
        }
        if cluster.is_empty()
            || cluster.len() > 16
            || !cluster.bytes().all(|c| c.is_ascii_graphic())
        {
            return Err(format!(
                "cluster name '{cluster}': 1 to 16 printable characters"
            ));
        }
        if global_heartbeat && stack != "o2cb" {
            return Err("global heartbeat is o2cb's: it needs --cluster-stack=o2cb".into());
        }
        Ok(Stack {
            stack: stack.into(),
            cluster: cluster.into(),
            global_heartbeat,
        })
    }

    /// The stack this host runs: /sys/fs/ocfs2/cluster_stack, and for o2cb
    /// the one cluster configured under /sys/kernel/config/cluster (what
    /// tunefs.ocfs2 --update-cluster-stack asks the o2cb tools for).
    pub fn running() -> Result<Stack, String> {
        let stack = std::fs::read_to_string("/sys/fs/ocfs2/cluster_stack")
            .map_err(|e| format!("no running cluster stack here (/sys/fs/ocfs2/cluster_stack: {e}): give --cluster-stack and --cluster-name"))?;
        let stack = stack.trim();
        let names: Vec<String> = std::fs::read_dir("/sys/kernel/config/cluster")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        match names.as_slice() {
            [one] => Stack::new(stack, one, false),
            [] => Err(format!("stack {stack} runs, but no cluster is configured (/sys/kernel/config/cluster): give --cluster-name")),
            many => Err(format!("several clusters are configured ({}): give --cluster-stack and --cluster-name", many.join(", "))),
        }
    }

    /// Write it into `sb`, with the incompat bits libocfs2 sets: o2cb gets
    /// CLUSTERINFO (and loses USERSPACE_STACK); another stack keeps
    /// CLUSTERINFO when set, else gets USERSPACE_STACK. The extended slot
    /// map it needs is the caller's.
    pub fn apply(&self, sb: &mut SuperBlock) {
        let ci = &mut sb.s_cluster_info;
        ci.ci_stack = [0; 4];
        ci.ci_stack[..self.stack.len().min(4)]
            .copy_from_slice(&self.stack.as_bytes()[..self.stack.len().min(4)]);
        ci.ci_cluster = [0; 16];
        ci.ci_cluster[..self.cluster.len()].copy_from_slice(self.cluster.as_bytes());
        ci.ci_stackflags = u8::from(self.stack == "o2cb" && self.global_heartbeat);
        let f = sb.s_feature_incompat.get();
        sb.s_feature_incompat.set(if self.stack == "o2cb" {
            (f | incompat::CLUSTERINFO) & !incompat::USERSPACE_STACK
        } else if f & incompat::CLUSTERINFO != 0 {
            f & !incompat::USERSPACE_STACK
        } else {
            f | incompat::USERSPACE_STACK
        });
    }

    /// The stack stored in `sb`, if any.
    pub fn of(sb: &SuperBlock) -> Option<Stack> {
        let f = sb.s_feature_incompat.get();
        if f & (incompat::CLUSTERINFO | incompat::USERSPACE_STACK) == 0 {
            return None;
        }
        let text = |b: &[u8]| {
            let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..n]).into_owned()
        };
        let ci = &sb.s_cluster_info;
        Some(Stack {
            stack: text(&ci.ci_stack),
            cluster: text(&ci.ci_cluster),
            global_heartbeat: ci.ci_stackflags & 1 != 0,
        })
    }
}
