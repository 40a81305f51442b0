//! Device names: a path, or `LABEL=...` / `UUID=...` found by scanning the
//! block devices for OCFS2 superblocks, as blkid would.

use crate::error::{Error, Result};
use crate::fs::Volume;
use crate::io::{FileDevice, OpenMode};
use std::path::{Path, PathBuf};

/// What a device argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    Path(PathBuf),
    Label(String),
    Uuid(String),
}

impl DeviceSpec {
    pub fn parse(s: &str) -> DeviceSpec {
        if let Some(l) = s.strip_prefix("LABEL=") {
            DeviceSpec::Label(l.to_string())
        } else if let Some(u) = s.strip_prefix("UUID=") {
            DeviceSpec::Uuid(u.to_string())
        } else {
            DeviceSpec::Path(PathBuf::from(s))
        }
    }
}

/// Normalise a UUID for comparison: hex digits only, upper case.
fn norm_uuid(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Candidate block devices: every entry of /proc/partitions.
pub fn candidates() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/partitions") else {
        return Vec::new();
    };
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(|name| Path::new("/dev").join(name))
        .filter(|p| p.exists())
        .collect()
}

/// Resolve a device argument to a path.
pub fn resolve(spec: &str) -> Result<PathBuf> {
    let matcher: Box<dyn Fn(&Volume) -> bool> = match DeviceSpec::parse(spec) {
        DeviceSpec::Path(p) => return Ok(p),
        DeviceSpec::Label(l) => Box::new(move |v: &Volume| v.label() == l.as_bytes()),
        DeviceSpec::Uuid(u) => {
            let want = norm_uuid(&u);
            if want.len() != 32 {
                return Err(Error::Invalid(format!("{spec}: a UUID has 32 hex digits")));
            }
            Box::new(move |v: &Volume| v.uuid_hex() == want)
        }
    };
    let mut found = Vec::new();
    for path in candidates() {
        let Ok(dev) = FileDevice::open(&path, OpenMode::default()) else {
            continue;
        };
        if let Ok(vol) = Volume::open(Box::new(dev)) {
            if matcher(&vol) {
                found.push(path);
            }
        }
    }
    match found.len() {
        0 => Err(Error::NotFound(format!(
            "{spec}: no block device holds an OCFS2 volume with this"
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(Error::Invalid(format!(
            "{spec}: several devices match ({}); name one by path",
            found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parse_specs() {
        assert_eq!(DeviceSpec::parse("LABEL=x"), DeviceSpec::Label("x".into()));
        assert_eq!(DeviceSpec::parse("UUID=ab"), DeviceSpec::Uuid("ab".into()));
        assert_eq!(
            DeviceSpec::parse("/dev/sda"),
            DeviceSpec::Path("/dev/sda".into())
        );
        assert_eq!(
            norm_uuid("92638021-bca1-4602-a2fa-0bd3cdf048ff"),
            "92638021BCA14602A2FA0BD3CDF048FF"
        );
    }
}
