//! Arrays planned by `umd create` are md arrays by someone else's judgement:
//! the host's real `mdadm --examine` and `mdadm -X` read every member as
//! planned, and umd's own probe and assembly find the same shape, for every
//! level, several layouts, every superblock version, with and without a
//! bitmap, clean or needing a resync, complete or with a member missing.
//! The `umd create` verb itself is tested on the same temp files.
//!
//! mdadm is required; set `UMD_SKIP_MDADM=1` to skip only the mdadm checks.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use umd_engine::create::{plan_create, CreatePlan, CreateSpec};
use umd_engine::{assemble, AssembleOptions, Candidate};
use umd_formats::probe::probe;

const MEMBER_BYTES: u64 = 64 * 1024 * 1024;
/// One 4 KiB page holds the bitmap of a 64 MiB member at mdadm's 64 MiB chunk.
const BITMAP_COPY_BYTES: usize = 4096;

/// One array shape to try: level, members, layout name, and what mdadm
/// prints for that layout (if it prints one).
struct Case {
    level: i32,
    members: usize,
    layout: Option<&'static str>,
    mdadm_layout: Option<&'static str>,
}

const fn case(
    level: i32,
    members: usize,
    layout: Option<&'static str>,
    mdadm_layout: Option<&'static str>,
) -> Case {
    Case {
        level,
        members,
        layout,
        mdadm_layout,
    }
}

const CASES: &[Case] = &[
    case(-1, 2, None, None),
    case(0, 3, None, None),
    case(1, 2, None, None),
    case(1, 3, None, None),
    case(4, 3, None, None),
    case(5, 3, None, Some("left-symmetric")),
    case(5, 4, Some("la"), Some("left-asymmetric")),
    case(5, 3, Some("right-symmetric"), Some("right-symmetric")),
    case(5, 3, Some("parity-first"), Some("parity-first")),
    case(6, 4, None, Some("left-symmetric")),
    case(6, 5, Some("ra"), Some("right-asymmetric")),
    case(10, 2, None, Some("near=2")),
    case(10, 4, None, Some("near=2")),
    case(10, 4, Some("f2"), Some("far=2")),
    case(10, 3, Some("o2"), Some("offset=2")),
];

fn mdadm_wanted() -> bool {
    std::env::var_os("UMD_SKIP_MDADM").is_none()
}

fn level_name(level: i32) -> String {
    if level == -1 {
        "linear".into()
    } else {
        format!("raid{level}")
    }
}

fn uuid_text(u: &[u8; 16]) -> String {
    let hex: Vec<String> = u
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .map(|w| format!("{w:08x}"))
        .collect();
    hex.join(":")
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("umd-create-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }

    /// A sparse member of `bytes`, freshly zeroed.
    fn member(&self, i: usize, bytes: u64) -> PathBuf {
        let p = self.0.join(format!("m{i}.img"));
        let f = File::create(&p).expect("create member");
        f.set_len(bytes).expect("size member");
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_plan(plan: &CreatePlan, paths: &[Option<PathBuf>]) {
    for (writes, path) in plan.members.iter().zip(paths) {
        let Some(path) = path else {
            assert!(writes.is_empty());
            continue;
        };
        let f = OpenOptions::new().write(true).open(path).expect("open");
        for w in writes {
            f.write_all_at(&w.bytes, w.offset_bytes).expect("write");
        }
    }
}

/// `mdadm` output as "Key : Value" pairs (first occurrence wins), plus the text.
fn mdadm(args: &[&str], path: &Path) -> (HashMap<String, String>, String) {
    let out = Command::new("mdadm")
        .args(args)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("mdadm is needed to check what umd writes: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mdadm {args:?} refused {}: {text}{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map = HashMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(" : ") {
            map.entry(k.trim().to_string())
                .or_insert_with(|| v.trim().to_string());
        }
    }
    (map, text)
}

struct Variant<'a> {
    metadata: &'a str,
    bitmap: bool,
    assume_clean: bool,
    missing: Option<usize>,
}

fn spec_for(c: &Case, v: &Variant<'_>, seed: u8) -> CreateSpec {
    let mut member_bytes = vec![Some(MEMBER_BYTES); c.members];
    if let Some(m) = v.missing {
        member_bytes[m] = None;
    }
    CreateSpec {
        level: c.level,
        raid_disks: c.members as u32,
        chunk_kib: None,
        layout: c.layout.map(str::to_string),
        metadata: v.metadata.to_string(),
        bitmap: v.bitmap,
        bitmap_chunk_kib: None,
        name: format!("t{seed}"),
        assume_clean: v.assume_clean,
        member_bytes,
        member_names: Vec::new(),
        uuid: [
            seed,
            0x5a,
            0xc3,
            0x01,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            9,
            10,
            11,
            12,
            seed ^ 0xff,
        ],
        device_uuids: (0..c.members).map(|i| [i as u8 + 1; 16]).collect(),
        ctime_seconds: 1_700_000_000,
        ppl: false,
    }
}

fn redundant(level: i32) -> bool {
    !matches!(level, -1 | 0)
}

/// Created clean: assumed, nothing to sync, or a degraded raid4/5/6 (md
/// cannot start those dirty, so they are created clean, as mdadm does).
fn created_clean(c: &Case, v: &Variant<'_>) -> bool {
    v.assume_clean || !redundant(c.level) || (matches!(c.level, 4..=6) && v.missing.is_some())
}

/// Plan, write, and check one array with mdadm and with umd's assembly.
fn check_case(dir: &Dir, c: &Case, v: &Variant<'_>, seed: u8) {
    let spec = spec_for(c, v, seed);
    let what = format!(
        "{} x{} layout {:?} metadata {} bitmap {} clean {} missing {:?}",
        level_name(c.level),
        c.members,
        c.layout,
        v.metadata,
        v.bitmap,
        v.assume_clean,
        v.missing
    );
    let plan = plan_create(&spec).unwrap_or_else(|e| panic!("{what}: {e}"));
    let paths: Vec<Option<PathBuf>> = (0..c.members)
        .map(|i| (v.missing != Some(i)).then(|| dir.member(i, MEMBER_BYTES)))
        .collect();
    write_plan(&plan, &paths);
    if mdadm_wanted() {
        for (role, path) in paths.iter().enumerate() {
            if let Some(path) = path {
                check_examine(c, v, &spec, &plan, role, path, &what);
                if v.bitmap {
                    check_bitmap(v, &spec, &plan, path, &what);
                }
            }
        }
    }
    check_assembly(c, v, &plan, &paths, &what);
}

fn check_examine(
    c: &Case,
    v: &Variant<'_>,
    spec: &CreateSpec,
    plan: &CreatePlan,
    role: usize,
    path: &Path,
    what: &str,
) {
    let (e, text) = mdadm(&["--examine"], path);
    let ctx = format!("{what}: mdadm --examine {}:\n{text}", path.display());
    let get = |k: &str| e.get(k).map_or("", String::as_str);
    let v1 = v.metadata != "0.90";
    let want_version = if v1 { v.metadata } else { "0.90.00" };
    assert_eq!(get("Version"), want_version, "{ctx}");
    assert_eq!(get("Raid Level"), level_name(c.level), "{ctx}");
    assert_eq!(get("Raid Devices"), c.members.to_string(), "{ctx}");
    let uuid_key = if v1 { "Array UUID" } else { "UUID" };
    assert_eq!(get(uuid_key), uuid_text(&spec.uuid), "{ctx}");
    if matches!(c.level, 0 | 4 | 5 | 6 | 10) {
        assert_eq!(get("Chunk Size"), "512K", "{ctx}");
    }
    if let Some(layout) = c.mdadm_layout {
        assert_eq!(get("Layout"), layout, "{ctx}");
    }
    // mdadm prints an array size only where the superblock records one.
    if redundant(c.level) {
        let kib = plan.array_sectors / 2;
        assert!(
            get("Array Size").starts_with(&kib.to_string()),
            "array size {kib} KiB expected; {ctx}"
        );
    }
    let state = get("State");
    let clean = created_clean(c, v);
    let want_state = if clean { "clean" } else { "active" };
    assert!(
        state.starts_with(want_state),
        "state {want_state} expected; {ctx}"
    );
    if v1 && v.metadata != "1.0" {
        let offset = format!("{} sectors", plan.data_offset_sectors[role]);
        assert_eq!(get("Data Offset"), offset, "{ctx}");
    }
    if v1 && v.bitmap {
        let from_sb = if v.metadata == "1.0" { "-16" } else { "8" };
        let want = format!("{from_sb} sectors from superblock");
        assert_eq!(get("Internal Bitmap"), want, "{ctx}");
    }
    if v1 {
        assert_eq!(get("Device Role"), format!("Active device {role}"), "{ctx}");
        let roles: String = (0..c.members)
            .map(|r| if v.missing == Some(r) { '.' } else { 'A' })
            .collect();
        assert!(get("Array State").starts_with(&roles), "{ctx}");
        assert!(get("Checksum").ends_with("correct"), "{ctx}");
    } else {
        let this = text
            .lines()
            .find(|l| l.starts_with("this"))
            .unwrap_or_else(|| panic!("no this-disk line; {ctx}"));
        let fields: Vec<&str> = this.split_whitespace().collect();
        assert_eq!(fields.get(4), Some(&role.to_string().as_str()), "{ctx}");
        assert!(this.contains("active sync"), "{ctx}");
        assert!(get("Checksum").ends_with("correct"), "{ctx}");
        let failed = usize::from(v.missing.is_some()).to_string();
        assert_eq!(get("Failed Devices"), failed, "{ctx}");
    }
}

/// `mdadm -X` reads a regular file as a bitmap file, so the bitmap area is
/// copied out from where umd's own probe says the metadata puts it.
fn check_bitmap(v: &Variant<'_>, spec: &CreateSpec, plan: &CreatePlan, path: &Path, what: &str) {
    let f = File::open(path).expect("open member");
    let len = f.metadata().expect("size").len();
    let mut read = |offset: u64, buf: &mut [u8]| f.read_exact_at(buf, offset);
    let md = probe(len, &mut read).unwrap_or_else(|e| panic!("{what}: probe: {e}"));
    let location = md.infos()[0]
        .array
        .bitmap
        .unwrap_or_else(|| panic!("{what}: no bitmap recorded"));
    let mut area = vec![0u8; BITMAP_COPY_BYTES];
    f.read_exact_at(&mut area, location.sector * 512)
        .expect("read bitmap");
    let copy = path.with_extension("bitmap");
    std::fs::write(&copy, &area).expect("write bitmap copy");
    let (x, text) = mdadm(&["-X"], &copy);
    let ctx = format!("{what}: mdadm -X {}:\n{text}", path.display());
    let get = |k: &str| x.get(k).map_or("", String::as_str);
    assert_eq!(get("Magic"), "6d746962", "{ctx}");
    assert_eq!(get("Version"), "4", "{ctx}");
    // 0.90 keeps the UUID as host-endian words; the bitmap holds their raw
    // bytes (formats.md §1.4), which `mdadm -X` prints in stored order.
    let mut uuid = spec.uuid;
    if v.metadata == "0.90" {
        uuid.chunks_exact_mut(4).for_each(<[u8]>::reverse);
    }
    assert_eq!(get("UUID"), uuid_text(&uuid), "{ctx}");
    assert_eq!(get("Chunksize"), "64 MB", "{ctx}");
    assert_eq!(get("Daemon"), "5s flush period", "{ctx}");
    let sync_sectors = if spec.level == 10 {
        plan.array_sectors
    } else {
        plan.component_sectors
    };
    let bits = sync_sectors.div_ceil(64 * 1024 * 2);
    let clean = v.assume_clean || (matches!(spec.level, 4..=6) && v.missing.is_some());
    let dirty = if clean { 0 } else { bits };
    let want = format!("{bits} bits (chunks), {dirty} dirty");
    assert!(get("Bitmap").starts_with(&want), "want {want}; {ctx}");
    assert!(
        get("Sync Size").starts_with(&(sync_sectors / 2).to_string()),
        "{ctx}"
    );
}

fn check_assembly(
    c: &Case,
    v: &Variant<'_>,
    plan: &CreatePlan,
    paths: &[Option<PathBuf>],
    what: &str,
) {
    let mut candidates = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        let Some(path) = path else { continue };
        let f = File::open(path).expect("open member");
        let len = f.metadata().expect("size").len();
        let mut read = |offset: u64, buf: &mut [u8]| f.read_exact_at(buf, offset);
        let md = probe(len, &mut read).unwrap_or_else(|e| panic!("{what}: probe: {e}"));
        let infos = md.infos();
        assert_eq!(infos.len(), 1, "{what}");
        candidates.push(Candidate {
            index,
            name: path.display().to_string(),
            info: infos[0].clone(),
        });
    }
    let a = assemble(&candidates, &AssembleOptions::default())
        .unwrap_or_else(|e| panic!("{what}: umd assembly refused: {e}"));
    assert_eq!(a.geometry.array_sectors(), plan.array_sectors, "{what}");
    assert_eq!(a.geometry.level().to_md(), c.level, "{what}");
    assert_eq!(a.geometry.layout(), plan.geometry.layout, "{what}");
    assert_eq!(a.geometry.raid_disks(), c.members as u32, "{what}");
    if c.level != 1 {
        assert_eq!(
            a.geometry.chunk_sectors(),
            plan.geometry.chunk_sectors,
            "{what}"
        );
    }
    let missing: Vec<u32> = v.missing.map(|m| m as u32).into_iter().collect();
    assert_eq!(a.missing_roles(), missing, "{what}");
    for (role, m) in a.members.iter().enumerate() {
        if let Some(m) = m {
            assert_eq!(
                m.index, role,
                "{what}: role {role} found on the right member"
            );
            assert_eq!(
                m.data_offset_sectors, plan.data_offset_sectors[role],
                "{what}"
            );
        }
    }
    let clean = created_clean(c, v);
    assert_eq!(a.clean, clean, "{what}");
}

fn run_metadata(metadata: &str) {
    let dir = Dir::new(&metadata.replace('.', "_"));
    let mut seed = 0u8;
    for c in CASES {
        let variants: &[(bool, bool, bool)] = if redundant(c.level) {
            &[
                (false, false, false),
                (true, false, true),
                (true, true, false),
                (false, true, true),
            ]
        } else {
            &[(false, false, false)]
        };
        for &(bitmap, assume_clean, missing) in variants {
            seed = seed.wrapping_add(1);
            let v = Variant {
                metadata,
                bitmap,
                assume_clean,
                missing: missing.then_some(c.members - 1),
            };
            check_case(&dir, c, &v, seed);
        }
    }
}

#[test]
fn metadata_0_90_arrays_read_as_planned() {
    run_metadata("0.90");
}

#[test]
fn metadata_1_0_arrays_read_as_planned() {
    run_metadata("1.0");
}

#[test]
fn metadata_1_1_arrays_read_as_planned() {
    run_metadata("1.1");
}

#[test]
fn metadata_1_2_arrays_read_as_planned() {
    run_metadata("1.2");
}

// ---- the `umd create` verb ----

fn umd(args: &[&str], members: &[&Path]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_umd"))
        .arg("create")
        .args(args)
        .args(members)
        .output()
        .expect("run umd")
}

#[test]
fn cli_creates_an_array_mdadm_reads_and_refuses_to_overwrite_it() {
    let dir = Dir::new("cli");
    let m: Vec<PathBuf> = (0..3).map(|i| dir.member(i, MEMBER_BYTES)).collect();
    let refs: Vec<&Path> = m.iter().map(PathBuf::as_path).collect();
    let args = [
        "--level",
        "raid5",
        "--raid-devices",
        "3",
        "--bitmap",
        "internal",
        "--name",
        "cli",
    ];
    let out = umd(&args, &refs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "umd create failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("array cli created: raid5, 3 devices"),
        "{stdout}"
    );
    if mdadm_wanted() {
        let (e, text) = mdadm(&["--examine"], &m[1]);
        assert_eq!(
            e.get("Raid Level").map(String::as_str),
            Some("raid5"),
            "{text}"
        );
        assert_eq!(e.get("Name").map(String::as_str), Some("cli"), "{text}");
        assert_eq!(
            e.get("Feature Map").map(String::as_str),
            Some("0x1"),
            "{text}"
        );
    }
    // A second create must not silently overwrite the array just made.
    let again = umd(&["--level", "1", "--raid-devices", "3"], &refs);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "overwrote without --force");
    assert!(err.contains(&m[0].display().to_string()), "{err}");
    assert!(err.contains("--force"), "{err}");
    let forced = umd(&["--level", "1", "--raid-devices", "3", "--force"], &refs);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
}

#[test]
fn cli_refusals_name_the_member_and_create_nothing() {
    let dir = Dir::new("cli-refuse");
    let a = dir.member(0, MEMBER_BYTES);
    let small = dir.member(1, 512 * 1024);
    let absent = dir.0.join("absent.img");
    let out = umd(&["--level", "1", "--raid-devices", "2"], &[&a, &absent]);
    assert!(!out.status.success());
    assert!(!absent.exists(), "a missing path must not be created");
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.img"));

    let out = umd(&["--level", "1", "--raid-devices", "2"], &[&a, &small]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("m1.img") && err.contains("too small"), "{err}");
    let untouched = std::fs::read(&a).expect("read");
    assert!(
        untouched.iter().all(|&b| b == 0),
        "a refused create wrote data"
    );

    let out = umd(
        &["--level", "5", "--raid-devices", "2", "--metadata", "ddf"],
        &[&a, &small],
    );
    // DDF is created (tests/ddf_create.rs); a member too small for its
    // 32 MiB metadata region is refused by name, before anything is written.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("m1.img") && err.contains("too small for DDF"),
        "{err}"
    );
    assert!(!out.status.success());
    let untouched = std::fs::read(&a).expect("read");
    assert!(
        untouched.iter().all(|&b| b == 0),
        "a refused DDF create wrote data"
    );

    let missing = Path::new("missing");
    let out = umd(&["--level", "raid1", "--raid-devices", "2"], &[&a, missing]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if mdadm_wanted() {
        let (e, text) = mdadm(&["--examine"], &a);
        assert_eq!(e.get("Array State").map(|s| &s[..2]), Some("A."), "{text}");
    }
}
