//! Shared storage stand-ins: a loop device over an image file (what our
//! tools open, like a shared block device), and "the other host", which
//! writes the image file with `O_DIRECT`, below the loop device's page
//! cache, as a second host writes the shared disk below ours. A third
//! process can hold the loop device open with cached pages.

use ocfs2_format::{BlockIo, FileDevice, OpenMode};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A loop device, detached on drop. Never skipped: without one the test
/// fails (CI runs as root, where `losetup` works).
pub struct Loop {
    pub dev: String,
}

impl Loop {
    pub fn attach(img: &Path, sector: u32) -> Loop {
        let losetup = super::find_tool("losetup", "mount");
        let out = Command::new(losetup)
            .args(["-f", "--show", "--sector-size", &sector.to_string()])
            .arg(img)
            .output()
            .expect("run losetup");
        assert!(
            out.status.success(),
            "losetup -f --show {}: {} (the MMP tests need loop devices: run them as root)",
            img.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Loop {
            dev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// A process that read the first 64 MiB of a block device through its
/// page cache and keeps it open, so those pages stay cached (stale once
/// the other host writes). Killed on drop.
pub struct CacheHolder(Child);

impl CacheHolder {
    pub fn start(dev: &str) -> CacheHolder {
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 3<"$0"; dd if="$0" of=/dev/null bs=1M count=64 2>/dev/null; echo ready; exec sleep 3600"#)
            .arg(dev)
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut h = CacheHolder(child);
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(h.0.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("holder ready");
        assert_eq!(line.trim(), "ready");
        h
    }
}

impl Drop for CacheHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The other host: `O_DIRECT` reads and writes of the image file.
#[derive(Clone)]
pub struct Host {
    dev: Arc<FileDevice>,
    pub path: PathBuf,
}

impl Host {
    pub fn open(img: &Path) -> Host {
        let dev = FileDevice::open(
            img,
            OpenMode {
                write: true,
                exclusive: false,
            },
        )
        .expect("open the image for the other host");
        assert!(
            dev.direct_warning().is_none(),
            "the file system under {} refuses O_DIRECT: the other host must write below every cache",
            img.display()
        );
        Host {
            dev: Arc::new(dev),
            path: img.into(),
        }
    }
    pub fn read(&self, off: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.dev.read_direct(off, &mut b).expect("direct read");
        b
    }
    pub fn write(&self, off: u64, bytes: &[u8]) {
        self.dev.write_direct(off, bytes).expect("direct write");
    }
    pub fn u32_at(&self, off: u64) -> u32 {
        u32::from_le_bytes(self.read(off, 4).try_into().expect("4 bytes"))
    }
    pub fn u16_at(&self, off: u64) -> u16 {
        u16::from_le_bytes(self.read(off, 2).try_into().expect("2 bytes"))
    }
    /// Slot `i` of an extended slot map at `map`: (value, node).
    pub fn slot(&self, map: u64, i: u16) -> (u32, u32) {
        let b = self.read(map + 8 * u64::from(i), 8);
        (
            u32::from_le_bytes(b[..4].try_into().expect("4")),
            u32::from_le_bytes(b[4..].try_into().expect("4")),
        )
    }
    pub fn set_slot(&self, map: u64, i: u16, raw: u32, node: u32) {
        let mut e = raw.to_le_bytes().to_vec();
        e.extend_from_slice(&node.to_le_bytes());
        self.write(map + 8 * u64::from(i), &e);
    }
}

/// A background writer of the other host, stopped on drop; it records
/// every time it found its own last write overwritten.
pub struct Writer {
    stop: Arc<AtomicBool>,
    pub overwritten: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// kmmpd: a sequence in slot 0, one more every `interval`; before each
    /// write it re-reads, as a writer that wants to know would.
    pub fn kmmpd(host: &Host, map: u64, interval: Duration) -> Writer {
        let h = host.clone();
        let mut seq = 0x0100_0000u32 + std::process::id() % 0x00FF_0000;
        h.set_slot(map, 0, seq, 0);
        Self::spawn(interval, move |over| {
            let (now, _) = h.slot(map, 0);
            if now != seq {
                over.push(format!("slot 0: wrote {seq:#010x}, found {now:#010x}"));
                return false;
            }
            seq += 1;
            h.set_slot(map, 0, seq, 0);
            true
        })
    }

    /// o2hb of `node`: its heartbeat block rewritten every 2 s.
    pub fn o2hb(host: &Host, area: u64, node: u8) -> Writer {
        let h = host.clone();
        let off = area + 512 * u64::from(node);
        let mut seq = 0x6b00_0000u64;
        let mut write = move || {
            let b =
                ocfs2_format::heartbeat::encode(512, seq, node, 0x1000 + u64::from(node), 62_000);
            h.write(off, &b);
            seq += 1;
        };
        write();
        Self::spawn(Duration::from_secs(2), move |_| {
            write();
            true
        })
    }

    fn spawn(
        every: Duration,
        mut step: impl FnMut(&mut Vec<String>) -> bool + Send + 'static,
    ) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let overwritten = Arc::new(Mutex::new(Vec::new()));
        let (s, o) = (stop.clone(), overwritten.clone());
        let thread = std::thread::spawn(move || {
            let mut slept = Duration::ZERO;
            while !s.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                slept += Duration::from_millis(50);
                if slept >= every {
                    slept = Duration::ZERO;
                    let mut over = o.lock().expect("lock");
                    if !step(&mut over) {
                        return;
                    }
                }
            }
        });
        Writer {
            stop,
            overwritten,
            thread: Some(thread),
        }
    }

    /// Stop, and fail if any of its writes was overwritten.
    #[track_caller]
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let over = self.overwritten.lock().expect("lock");
        assert!(
            over.is_empty(),
            "the other host's value was overwritten: {over:?}"
        );
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
