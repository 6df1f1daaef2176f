//! Kernel cross-check for DDF: containers `umd create` makes are run by Linux,
//! mdadm and mdmon; metadata umd's DDF handler writes is obeyed by them.
//!
//! Boot 1: six containers umd made on sparse images (a raid1 and a raid5 in
//! one container, then raid6, raid10 as spanned mirrors, raid0, RAID1E, and a
//! raid1 with a global spare) are assembled with `mdadm --assemble --scan`,
//! which must start every member array and mdmon. The kernel resyncs the ones
//! umd created "not initialised" (and only those), the guest writes data into
//! each, hashes each whole array and stops everything cleanly. On the host,
//! `umd cat --subarray` must reproduce every hash and the data written, and
//! `mdadm --examine` must show every virtual disk optimal, consistent and fully
//! initialised, as mdmon recorded it.
//!
//! Between the boots the handler edits the metadata as the monitor would:
//! the raid5 marked dirty (a crash while writing), a raid6 member failed, and
//! in the spare container the second raid1 member failed, the spare activated
//! into its slot and recorded in sync after its data was copied (a finished
//! rebuild), and a blank disk was added to that container as a running
//! manager takes one (`umd manage CONTAINER --add`). Boot 2: mdadm must resync the raid5 (and nothing else), run the
//! raid6 degraded without the failed disk, and run the raid1 on its first disk
//! and the former spare, with the added disk in its container; every hash
//! must be unchanged.
//!
//! The kernel, mdadm and mdmon are the reference. Without the harness this test
//! fails, naming what is missing; it skips only when `UMD_SKIP_ORACLE=1` is set.
//! Environment: `UMD_ORACLE`, `UMD_SKIP_ORACLE`, `UMD_ORACLE_ACCEL` (default
//! `tcg`), `UMD_ORACLE_KEEP` (keep images and VM output).

#[path = "oracle/locate.rs"]
mod locate;
mod support;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use support::{pseudo_random, umd_ok, TempDir};
use umd::mon::ddf::DdfHandler;
use umd::mon::handler::{Consistency, DiskState, MetadataHandler, RESYNC_NONE};

/// Member size: mdadm refuses DDF members of 32 MiB, 64 MiB works.
const MEMBER_MIB: u64 = 64;
/// Bytes the guest writes into each array (from the data disk).
const WRITE_BYTES: usize = 4 << 20;
/// Array number k (the guest numbers them) gets the data disk's bytes from
/// k * this.
const DATA_STRIDE_BYTES: usize = 4096;
/// Seed of the data disk.
const DATA_SEED: u64 = 0x6464_665f_6f72_6163;
/// Size of the data disk.
const DATA_BYTES: usize = 64 << 20;
/// Kill a VM that runs longer than this.
const VM_TIMEOUT_SECS: u32 = 600;
/// md-vm's statuses for "the VM, not the script, failed".
const VM_FAILED: [i32; 2] = [124, 125];
/// Sectors of a raid1 component on a 64 MiB member (the 32 MiB before the
/// DDF region).
const RAID1_COMPONENT_BYTES: u64 = 32 << 20;

/// One container: its name, member count, and the `umd create` options of
/// each virtual disk (over its first `n` members).
struct Spec {
    name: &'static str,
    disks: usize,
    vds: &'static [(usize, &'static [&'static str])],
}

const CONTAINERS: &[Spec] = &[
    Spec {
        name: "a",
        disks: 3,
        vds: &[
            (2, &["-l", "1", "-z", "8192", "--name", "r1"]),
            (3, &["-l", "5", "--name", "r5"]),
        ],
    },
    Spec {
        name: "b",
        disks: 4,
        vds: &[(4, &["-l", "6", "--chunk", "64", "--name", "r6"])],
    },
    Spec {
        name: "c",
        disks: 4,
        vds: &[(4, &["-l", "10", "--assume-clean", "--name", "r10"])],
    },
    Spec {
        name: "d",
        disks: 2,
        vds: &[(2, &["-l", "0", "--chunk", "128", "--name", "r0"])],
    },
    Spec {
        name: "e",
        disks: 3,
        vds: &[(3, &["-l", "10", "--name", "r1e"])],
    },
    Spec {
        name: "f",
        disks: 3,
        vds: &[(2, &["-l", "1", "--assume-clean", "--name", "rs"])],
    },
];

/// Expected md level and whether the kernel must resync it in boot 1.
const ARRAYS: &[(&str, &str, bool)] = &[
    ("r0", "raid0", false),
    ("r1", "raid1", true),
    ("r10", "raid10", false),
    ("r1e", "raid10", true),
    ("r5", "raid5", true),
    ("r6", "raid6", true),
    ("rs", "raid1", false),
];

/// What the guest said about one array.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// Which data slice the guest wrote into it.
    k: usize,
    md: String,
    level: String,
    size: u64,
    degraded: u32,
    devs: Vec<String>,
    sha: String,
}

/// Everything one boot reported.
#[derive(Debug, Default)]
struct Boot {
    arrays: BTreeMap<String, Seen>,
    /// Each container md device's disks (guest names).
    containers: Vec<Vec<String>>,
    resynced: Vec<String>,
    mdmon: bool,
    mdmon_exit: bool,
}

fn parse_boot(out: &str) -> Boot {
    let mut boot = Boot::default();
    for line in out.lines().map(|l| l.trim_end_matches('\r')) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("@@array") => {
                let name = words.next().expect("name").to_string();
                let mut seen = Seen::default();
                for kv in words {
                    let (k, v) = kv.split_once('=').expect("key=value");
                    match k {
                        "k" => seen.k = v.parse().expect("k"),
                        "md" => seen.md = v.to_string(),
                        "level" => seen.level = v.to_string(),
                        "size" => seen.size = v.parse().expect("size"),
                        "degraded" => seen.degraded = v.parse().expect("degraded"),
                        "devs" => seen.devs = v.split(',').map(str::to_string).collect(),
                        "sha" => seen.sha = v.to_string(),
                        _ => {}
                    }
                }
                boot.arrays.insert(name, seen);
            }
            Some("@@container") => {
                let devs = words
                    .nth(1)
                    .and_then(|kv| kv.strip_prefix("devs="))
                    .expect("devs=");
                boot.containers
                    .push(devs.split(',').map(str::to_string).collect());
            }
            Some("@@resynced") => boot.resynced.push(words.next().expect("md").to_string()),
            Some("@@mdmon") => boot.mdmon = words.next() == Some("yes"),
            Some("@@mdmon-exit") => boot.mdmon_exit = words.next() == Some("yes"),
            _ => {}
        }
    }
    boot
}

/// The images, named `<container><i>.img`, and the guest's device names.
struct Disks {
    dir: PathBuf,
    by_container: BTreeMap<&'static str, Vec<PathBuf>>,
    /// Every image in md-vm order (the data disk last).
    order: Vec<PathBuf>,
    /// A blank image, given to the spare container between the boots as a
    /// running manager takes a disk (`umd manage --add`).
    added: PathBuf,
}

impl Disks {
    fn members(&self, container: &str) -> &[PathBuf] {
        &self.by_container[container]
    }
    /// The guest's name (vda, vdb, ...) of `path`.
    fn guest_name(&self, path: &Path) -> String {
        let i = self.order.iter().position(|p| p == path).expect("attached");
        let letter = char::from(b'a' + u8::try_from(i).expect("few disks"));
        format!("vd{letter}")
    }
}

fn make_disks(dir: &Path) -> Disks {
    let mut by_container = BTreeMap::new();
    let mut order = Vec::new();
    for spec in CONTAINERS {
        let paths: Vec<PathBuf> = (0..spec.disks)
            .map(|i| dir.join(format!("{}{i}.img", spec.name)))
            .collect();
        for p in &paths {
            File::create(p)
                .and_then(|f| f.set_len(MEMBER_MIB << 20))
                .expect("member image");
        }
        let s: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let n = spec.disks.to_string();
        let mut args = vec!["create", "-e", "ddf", "-l", "container", "-n", &n];
        args.extend(s.iter().map(String::as_str));
        umd_ok(&args);
        for (used, opts) in spec.vds {
            let n = used.to_string();
            let mut args = vec!["create", "-e", "ddf", "-n", &n];
            args.extend(*opts);
            args.extend(s[..*used].iter().map(String::as_str));
            umd_ok(&args);
        }
        order.extend(paths.iter().cloned());
        by_container.insert(spec.name, paths);
    }
    let added = dir.join("added.img");
    File::create(&added)
        .and_then(|f| f.set_len(MEMBER_MIB << 20))
        .expect("blank image");
    order.push(added.clone());
    let data = dir.join("data.img");
    fs::write(&data, pseudo_random(DATA_BYTES, DATA_SEED)).expect("data disk");
    order.push(data);
    Disks {
        dir: dir.to_path_buf(),
        by_container,
        order,
        added,
    }
}

/// One md-vm boot of the guest script; retried once when the VM itself failed.
fn boot(md_vm: &Path, disks: &Disks, write: bool, tag: &str) -> Boot {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle_ddf/guest.sh");
    let accel = std::env::var("UMD_ORACLE_ACCEL").unwrap_or_else(|_| "tcg".to_string());
    for attempt in 1..=2 {
        let out = Command::new(md_vm)
            .args(["--quiet", "--accel", &accel])
            .args(["--timeout", &VM_TIMEOUT_SECS.to_string()])
            .args(["--env", &format!("WRITE={}", u8::from(write))])
            .arg("--script")
            .arg(&script)
            .arg("--console")
            .arg(disks.dir.join(format!("console-{tag}.log")))
            .arg("--")
            .args(&disks.order)
            .output()
            .expect("run md-vm");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        fs::write(disks.dir.join(format!("vm-{tag}.txt")), &stdout).expect("save output");
        match out.status.code() {
            Some(0) => return parse_boot(&stdout),
            Some(c) if VM_FAILED.contains(&c) && attempt == 1 => {
                eprintln!("{tag}: md-vm failed ({c}), retrying");
            }
            _ => panic!(
                "{tag}: md-vm exited with {}:\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    unreachable!("the loop returns or panics")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The container holding VD `name`, and the members of that VD.
fn vd_members<'a>(disks: &'a Disks, name: &str) -> &'a [PathBuf] {
    for spec in CONTAINERS {
        for (used, opts) in spec.vds {
            if opts.windows(2).any(|w| w == ["--name", name]) {
                return &disks.members(spec.name)[..*used];
            }
        }
    }
    panic!("no VD {name}")
}

fn umd_cat(disks: &Disks, name: &str) -> Vec<u8> {
    umd_cat_of(name, vd_members(disks, name))
}

fn umd_cat_of(name: &str, members: &[PathBuf]) -> Vec<u8> {
    let mut args = vec!["cat".to_string(), "--subarray".into(), name.into()];
    args.extend(members.iter().map(|p| p.display().to_string()));
    umd_ok(&args.iter().map(String::as_str).collect::<Vec<_>>()).stdout
}

fn mdadm_examine(path: &Path) -> String {
    let out = Command::new("mdadm")
        .arg("--examine")
        .arg(path)
        .output()
        .expect("mdadm is required by this test");
    assert!(out.status.success(), "mdadm --examine {}", path.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(" : ")?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// The handler over a container's image files (read through the file).
fn handler_for(paths: &[PathBuf]) -> DdfHandler {
    let files: Vec<File> = paths.iter().map(|p| File::open(p).expect("open")).collect();
    let sources = files.iter().map(|f| {
        let len = f.metadata().expect("stat").len();
        (len, move |offset: u64, buf: &mut [u8]| {
            f.read_exact_at(buf, offset)
        })
    });
    DdfHandler::load(sources).expect("one container")
}

/// Write what the handler has recorded to the image files.
fn sync_to(h: &mut DdfHandler, paths: &[PathBuf]) {
    let mut writes = Vec::new();
    h.sync_metadata(&mut writes);
    assert!(!writes.is_empty(), "something was recorded");
    for w in writes {
        let f = OpenOptions::new()
            .write(true)
            .open(&paths[w.member])
            .expect("open");
        f.write_all_at(&w.bytes, w.offset_bytes).expect("write");
    }
}

fn vd_index(h: &DdfHandler, name: &str) -> u32 {
    h.subarrays()
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.index)
        .expect("VD by name")
}

fn check_boot1(disks: &Disks, b: &Boot) {
    assert!(b.mdmon, "mdmon must run for DDF arrays");
    assert!(b.mdmon_exit, "mdmon must exit after a clean stop");
    let data = pseudo_random(DATA_BYTES, DATA_SEED);
    for (name, level, resync) in ARRAYS {
        let seen = b
            .arrays
            .get(*name)
            .unwrap_or_else(|| panic!("{name} not assembled: {b:?}"));
        assert_eq!(seen.level, *level, "{name}");
        assert_eq!(seen.degraded, 0, "{name}");
        assert_eq!(
            b.resynced.contains(&seen.md),
            *resync,
            "{name}: resync {:?}",
            b.resynced
        );
        let ours = umd_cat(disks, name);
        assert_eq!(ours.len() as u64, seen.size, "{name}: size");
        assert_eq!(sha256_hex(&ours), seen.sha, "{name}: umd cat vs the kernel");
        let from = seen.k * DATA_STRIDE_BYTES;
        assert!(
            ours[..WRITE_BYTES] == data[from..from + WRITE_BYTES],
            "{name}: data written"
        );
    }
    for spec in CONTAINERS {
        for m in disks.members(spec.name) {
            let text = mdadm_examine(m);
            for i in 0..spec.vds.len() {
                let state = field(&text, &format!("state[{i}]"));
                let init = field(&text, &format!("init state[{i}]"));
                assert_eq!(
                    state.as_deref(),
                    Some("Optimal, Consistent"),
                    "{}",
                    m.display()
                );
                assert_eq!(
                    init.as_deref(),
                    Some("Fully Initialised"),
                    "{}",
                    m.display()
                );
            }
        }
        let h = handler_for(disks.members(spec.name));
        assert!(h
            .subarrays()
            .iter()
            .all(|s| s.consistent && s.slot_disks.iter().all(Option::is_some)));
    }
}

const FAULTY: DiskState = DiskState {
    faulty: true,
    in_sync: false,
    write_mostly: false,
    spare: false,
    blocked: false,
    external_bbl: false,
};
const IN_SYNC: DiskState = DiskState {
    faulty: false,
    in_sync: true,
    write_mostly: false,
    spare: false,
    blocked: false,
    external_bbl: false,
};

/// The handler's edits between the boots; returns the guest names of the
/// failed raid6 member and of the raid1 members after the spare took over.
fn edit_between_boots(disks: &Disks) -> (String, Vec<String>) {
    let a = disks.members("a");
    let mut h = handler_for(a);
    let r5 = vd_index(&h, "r5");
    assert!(!h.set_array_state(r5, Consistency::Dirty, RESYNC_NONE));
    sync_to(&mut h, a);

    let b = disks.members("b");
    let mut h = handler_for(b);
    let r6 = vd_index(&h, "r6");
    let failed = h.subarrays()[0].slot_disks[0].expect("slot 0 present");
    h.set_disk(r6, 0, FAULTY);
    sync_to(&mut h, b);

    let f = disks.members("f");
    let mut h = handler_for(f);
    let rs = vd_index(&h, "rs");
    h.set_disk(rs, 1, FAULTY);
    let got = h.activate_spare(rs, &[1]);
    assert_eq!(got.len(), 1, "the global spare is chosen");
    assert_eq!((got[0].disk, got[0].data_offset_sectors), (2, 0));
    assert_eq!(got[0].size_sectors * 512, RAID1_COMPONENT_BYTES);
    // The rebuild: the surviving half's data onto the spare.
    let mut buf = vec![0u8; RAID1_COMPONENT_BYTES as usize];
    File::open(&f[0])
        .expect("open")
        .read_exact_at(&mut buf, 0)
        .expect("read");
    OpenOptions::new()
        .write(true)
        .open(&f[2])
        .expect("open")
        .write_all_at(&buf, 0)
        .expect("write");
    h.set_disk(rs, 1, IN_SYNC);
    // And a blank disk joins the container, as a running manager takes one.
    let blank = File::open(&disks.added).expect("open");
    let mut read = |offset: u64, buf: &mut [u8]| blank.read_exact_at(buf, offset);
    let at = h
        .add_disk("added", MEMBER_MIB << 20, &mut read, 0x00dd_5eed)
        .expect("a blank disk is taken");
    assert_eq!(at, f.len());
    let mut paths = f.to_vec();
    paths.push(disks.added.clone());
    sync_to(&mut h, &paths);
    let mut rs_devs = vec![disks.guest_name(&f[0]), disks.guest_name(&f[2])];
    rs_devs.sort();
    (disks.guest_name(&b[failed]), rs_devs)
}

fn check_boot2(disks: &Disks, first: &Boot, b: &Boot, failed_r6: &str, rs_devs: &[String]) {
    assert!(b.mdmon && b.mdmon_exit, "mdmon ran and exited");
    for (name, level, _) in ARRAYS {
        let seen = b
            .arrays
            .get(*name)
            .unwrap_or_else(|| panic!("{name} not assembled: {b:?}"));
        assert_eq!(seen.level, *level, "{name}");
        assert_eq!(seen.sha, first.arrays[*name].sha, "{name}: data unchanged");
        let resync = b.resynced.contains(&seen.md);
        assert_eq!(
            resync,
            *name == "r5",
            "{name}: only the dirty raid5 resyncs"
        );
        let degraded = u32::from(*name == "r6");
        assert_eq!(seen.degraded, degraded, "{name}");
    }
    assert!(
        !b.arrays["r6"].devs.contains(&failed_r6.to_string()),
        "{:?}",
        b.arrays["r6"]
    );
    assert_eq!(b.arrays["r6"].devs.len(), 3);
    assert_eq!(
        b.arrays["rs"].devs, rs_devs,
        "raid1 on its first disk and the spare"
    );
    let text = mdadm_examine(&disks.members("a")[0]);
    assert_eq!(
        field(&text, "state[1]").as_deref(),
        Some("Optimal, Consistent"),
        "r5 clean again"
    );
    // raid6 missing one member is still redundant: mdadm's "partially optimal".
    let text = mdadm_examine(&disks.members("b")[1]);
    assert_eq!(
        field(&text, "state[0]").as_deref(),
        Some("Partially Optimal, Consistent")
    );
    // Linux takes the disk umd added into the container, beside the rebuilt
    // raid1's disks.
    let f = disks.members("f");
    let (added, first_f) = (disks.guest_name(&disks.added), disks.guest_name(&f[0]));
    assert!(
        b.containers
            .iter()
            .any(|devs| devs.contains(&added) && devs.contains(&first_f)),
        "the added disk is in the spare container: {:?}",
        b.containers
    );
    let text = mdadm_examine(&disks.added);
    assert!(text.contains("Global-Spare"), "{text}");
    let ours = umd_cat_of("rs", &[f[0].clone(), f[2].clone()]);
    assert_eq!(
        sha256_hex(&ours),
        b.arrays["rs"].sha,
        "umd reads the rebuilt raid1"
    );
}

#[test]
fn linux_runs_umd_made_ddf_and_obeys_the_handler() {
    let Some(md_vm) = locate::oracle_or_skip("oracle_ddf") else {
        return;
    };
    let dir = TempDir::new("oracle-ddf");
    let disks = make_disks(dir.path());
    let first = boot(&md_vm, &disks, true, "boot1");
    check_boot1(&disks, &first);
    let (failed_r6, rs_devs) = edit_between_boots(&disks);
    let second = boot(&md_vm, &disks, false, "boot2");
    check_boot2(&disks, &first, &second, &failed_r6, &rs_devs);
    if std::env::var_os("UMD_ORACLE_KEEP").is_some() {
        eprintln!("images and VM output in {}", dir.path().display());
        std::mem::forget(dir);
    }
}
