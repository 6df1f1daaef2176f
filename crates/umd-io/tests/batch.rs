//! The batch executor against an in-memory model, through both back ends.
//!
//! Every test runs on temporary files once with io_uring and once with positional
//! system calls, and checks file contents and read buffers byte for byte against a
//! `Vec<u8>` per member, or checks each error's member, op and offset.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use umd_io::batch::{BackendKind, Batch, Op};
use umd_io::uring::QUEUE_DEPTH;
use umd_io::{IoError, MemberFile};

const BACKENDS: [BackendKind; 2] = [BackendKind::IoUring, BackendKind::Sync];

/// A directory removed on drop; named by process and counter so tests run in parallel.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("umd-io-{tag}-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Create member `index` holding `content` and return its path.
    fn member(&self, index: usize, content: &[u8]) -> PathBuf {
        let path = self.0.join(format!("member{index}"));
        fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Content no two members or offsets share, so a misplaced transfer shows.
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed.wrapping_mul(131) ^ i.wrapping_mul(7) ^ (i >> 8)) as u8)
        .collect()
}

fn ok_slots(n: usize) -> Vec<Result<(), IoError>> {
    (0..n).map(|_| Ok(())).collect()
}

fn open_all(paths: &[PathBuf]) -> Vec<MemberFile> {
    paths
        .iter()
        .map(|p| MemberFile::open_read_write(p).unwrap())
        .collect()
}

#[derive(Clone, Debug)]
enum ModelOp {
    Read {
        member: usize,
        offset: usize,
        len: usize,
    },
    Write {
        member: usize,
        offset: usize,
        data: Vec<u8>,
    },
    Sync {
        member: usize,
    },
}

impl ModelOp {
    /// (member, start, end, is_write) of a transfer; None for a sync.
    fn extent(&self) -> Option<(usize, usize, usize, bool)> {
        match self {
            ModelOp::Read {
                member,
                offset,
                len,
            } => Some((*member, *offset, offset + len, false)),
            ModelOp::Write {
                member,
                offset,
                data,
            } => Some((*member, *offset, offset + data.len(), true)),
            ModelOp::Sync { .. } => None,
        }
    }
}

/// Turn raw proptest draws into a batch that keeps the caller's contract: in bounds, and
/// no write overlapping another op on its member.
fn normalise(raw: &[(u8, usize, usize, usize, u8)], sizes: &[usize]) -> Vec<ModelOp> {
    let mut batch: Vec<ModelOp> = Vec::new();
    for &(kind, member, offset, len, seed) in raw {
        let member = member % sizes.len();
        let len = len.min(sizes[member]);
        let offset = offset % (sizes[member] - len + 1);
        let op = match kind % 3 {
            0 => ModelOp::Read {
                member,
                offset,
                len,
            },
            1 => ModelOp::Write {
                member,
                offset,
                data: pattern(usize::from(seed) + offset, len),
            },
            _ => ModelOp::Sync { member },
        };
        let conflicts = op.extent().is_some_and(|(m, start, end, write)| {
            batch
                .iter()
                .filter_map(ModelOp::extent)
                .any(|(m2, start2, end2, write2)| {
                    m == m2 && (write || write2) && start < end2 && start2 < end
                })
        });
        if !conflicts {
            batch.push(op);
        }
    }
    batch
}

/// Run one model batch through `batch`, check reads against `model`, then apply writes.
fn run_model_batch(
    batch: &mut Batch,
    files: &[MemberFile],
    model: &mut [Vec<u8>],
    model_ops: &[ModelOp],
) {
    let mut read_bufs: Vec<Vec<u8>> = model_ops
        .iter()
        .filter_map(|op| match op {
            ModelOp::Read { len, .. } => Some(vec![0xa5; *len]),
            _ => None,
        })
        .collect();
    let file_refs: Vec<Option<&MemberFile>> = files.iter().map(Some).collect();
    let mut bufs = read_bufs.iter_mut();
    let mut ops: Vec<Op<'_>> = model_ops
        .iter()
        .map(|op| match op {
            ModelOp::Read { member, offset, .. } => Op::Read {
                member: *member,
                offset_bytes: *offset as u64,
                buf: bufs.next().unwrap(),
            },
            ModelOp::Write {
                member,
                offset,
                data,
            } => Op::Write {
                member: *member,
                offset_bytes: *offset as u64,
                buf: data,
            },
            ModelOp::Sync { member } => Op::SyncData { member: *member },
        })
        .collect();
    let mut results = ok_slots(ops.len());
    batch.run(&file_refs, &mut ops, &mut results);
    drop(ops);
    for (i, result) in results.iter().enumerate() {
        assert!(
            result.is_ok(),
            "op {i} ({:?}) failed: {:?}",
            model_ops[i],
            result
        );
    }
    // Reads overlap no write of their batch, so they saw the pre-batch bytes.
    let mut bufs = read_bufs.iter();
    for op in model_ops {
        if let ModelOp::Read {
            member,
            offset,
            len,
        } = op
        {
            let got = bufs.next().unwrap();
            assert!(
                got[..] == model[*member][*offset..offset + len],
                "read {op:?} differs"
            );
        }
    }
    for op in model_ops {
        if let ModelOp::Write {
            member,
            offset,
            data,
        } = op
        {
            model[*member][*offset..offset + data.len()].copy_from_slice(data);
        }
    }
}

fn assert_files_match(paths: &[PathBuf], model: &[Vec<u8>]) {
    for (member, (path, expected)) in paths.iter().zip(model).enumerate() {
        let on_disk = fs::read(path).unwrap();
        assert_eq!(on_disk.len(), expected.len(), "member {member} length");
        let first_diff = on_disk.iter().zip(expected).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "member {member} differs from the model");
    }
}

/// Members with the given sizes and patterned content, opened read-write, plus the model.
fn setup(dir: &TempDir, sizes: &[usize]) -> (Vec<PathBuf>, Vec<Vec<u8>>) {
    let model: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(m, &s)| pattern(m, s))
        .collect();
    let paths = model
        .iter()
        .enumerate()
        .map(|(m, c)| dir.member(m, c))
        .collect();
    (paths, model)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_batches_match_the_model(
        members in 1..=6_usize,
        sizes in prop::collection::vec(4096..=65536_usize, 6),
        raw_batches in prop::collection::vec(
            prop::collection::vec(
                (any::<u8>(), any::<usize>(), any::<usize>(), 1..=8192_usize, any::<u8>()),
                0..48,
            ),
            1..4,
        ),
    ) {
        let sizes = &sizes[..members];
        let batches: Vec<Vec<ModelOp>> =
            raw_batches.iter().map(|raw| normalise(raw, sizes)).collect();
        for kind in BACKENDS {
            let dir = TempDir::new("model");
            let (paths, mut model) = setup(&dir, sizes);
            let files = open_all(&paths);
            let mut batch = Batch::with_backend(kind);
            for model_ops in &batches {
                run_model_batch(&mut batch, &files, &mut model, model_ops);
            }
            drop(files);
            assert_files_match(&paths, &model);
        }
    }
}

#[test]
fn io_uring_is_used_on_this_machine() {
    let batch = Batch::with_backend(BackendKind::IoUring);
    assert_eq!(
        batch.backend_name(),
        "io_uring",
        "io_uring is unavailable here"
    );
    assert_eq!(
        Batch::with_backend(BackendKind::Sync).backend_name(),
        "sync"
    );
}

#[test]
fn batches_larger_than_the_queue_depth_complete() {
    const OPS: usize = 1000;
    const BLOCK: usize = 4096;
    assert!(OPS > QUEUE_DEPTH as usize * 3);
    let sizes = [BLOCK * OPS / 3 + BLOCK; 3];
    for kind in BACKENDS {
        let dir = TempDir::new("deep");
        let (paths, mut model) = setup(&dir, &sizes);
        let files = open_all(&paths);
        let mut batch = Batch::with_backend(kind);
        let writes: Vec<ModelOp> = (0..OPS)
            .map(|i| ModelOp::Write {
                member: i % 3,
                offset: (i / 3) * BLOCK,
                data: pattern(i + 1000, BLOCK),
            })
            .chain((0..3).map(|member| ModelOp::Sync { member }))
            .collect();
        run_model_batch(&mut batch, &files, &mut model, &writes);
        let reads: Vec<ModelOp> = (0..OPS)
            .map(|i| ModelOp::Read {
                member: i % 3,
                offset: (i / 3) * BLOCK + 17,
                len: BLOCK,
            })
            .filter(|op| op.extent().is_some_and(|(m, _, end, _)| end <= sizes[m]))
            .collect();
        assert!(reads.len() > QUEUE_DEPTH as usize);
        run_model_batch(&mut batch, &files, &mut model, &reads);
        drop(files);
        assert_files_match(&paths, &model);
    }
}

#[test]
fn large_buffers_round_trip() {
    const LEN: usize = 4 << 20;
    let sizes = [LEN + 4096; 4];
    for kind in BACKENDS {
        let dir = TempDir::new("large");
        let (paths, mut model) = setup(&dir, &sizes);
        let files = open_all(&paths);
        let mut batch = Batch::with_backend(kind);
        let mixed = vec![
            ModelOp::Write {
                member: 0,
                offset: 4096,
                data: pattern(7, LEN),
            },
            ModelOp::Write {
                member: 1,
                offset: 0,
                data: pattern(8, LEN),
            },
            ModelOp::Read {
                member: 2,
                offset: 4096,
                len: LEN,
            },
            ModelOp::Read {
                member: 3,
                offset: 1,
                len: LEN,
            },
            ModelOp::Sync { member: 0 },
        ];
        run_model_batch(&mut batch, &files, &mut model, &mixed);
        let back: Vec<ModelOp> = (0..4)
            .map(|member| ModelOp::Read {
                member,
                offset: 0,
                len: LEN + 4096,
            })
            .collect();
        run_model_batch(&mut batch, &files, &mut model, &back);
        drop(files);
        assert_files_match(&paths, &model);
    }
}

fn assert_error(
    result: &Result<(), IoError>,
    path: &Path,
    op: &str,
    offset: Option<u64>,
    kind: Option<io::ErrorKind>,
) {
    let Err(error) = result else {
        panic!("expected {op} on {} to fail, it succeeded", path.display());
    };
    assert_eq!(error.path, path, "{error}");
    assert_eq!(error.op, op, "{error}");
    assert_eq!(error.offset, offset, "{error}");
    if let Some(kind) = kind {
        assert_eq!(error.source.kind(), kind, "{error}");
    }
    if let Some(offset) = offset {
        assert!(
            error.to_string().contains(&format!("at byte {offset}")),
            "{error}"
        );
    }
}

#[test]
fn errors_name_member_op_and_offset_and_spare_other_ops() {
    const SIZE: usize = 8192;
    for kind in BACKENDS {
        let dir = TempDir::new("errors");
        let (paths, mut model) = setup(&dir, &[SIZE, SIZE, SIZE]);
        let rw = MemberFile::open_read_write(&paths[0]).unwrap();
        let ro = MemberFile::open_read_only(&paths[2]).unwrap();
        let files = [Some(&rw), None, Some(&ro)];
        let new_bytes = pattern(99, 1024);
        let mut good_read = vec![0; 4096];
        let mut straddling_read = vec![0; 4096];
        let mut past_end_read = vec![0; 10];
        let mut out_of_range_read = vec![0; 10];
        let mut empty_read = [0_u8; 0];
        let mut ops = [
            Op::Read {
                member: 0,
                offset_bytes: 0,
                buf: &mut good_read,
            },
            Op::Write {
                member: 1,
                offset_bytes: 100,
                buf: &new_bytes,
            },
            Op::Read {
                member: 0,
                offset_bytes: SIZE as u64 - 100,
                buf: &mut straddling_read,
            },
            Op::Write {
                member: 2,
                offset_bytes: 512,
                buf: &new_bytes[..512],
            },
            Op::Read {
                member: 9,
                offset_bytes: 0,
                buf: &mut out_of_range_read,
            },
            Op::Write {
                member: 0,
                offset_bytes: 4096,
                buf: &new_bytes,
            },
            Op::SyncData { member: 0 },
            Op::Read {
                member: 0,
                offset_bytes: 20000,
                buf: &mut past_end_read,
            },
            Op::Read {
                member: 2,
                offset_bytes: 100_000,
                buf: &mut empty_read,
            },
            Op::SyncData { member: 1 },
        ];
        let mut results = ok_slots(ops.len());
        let mut batch = Batch::with_backend(kind);
        batch.run(&files, &mut ops, &mut results);

        let missing = |m: usize| PathBuf::from(format!("member {m} (missing)"));
        let not_found = Some(io::ErrorKind::NotFound);
        let eof = Some(io::ErrorKind::UnexpectedEof);
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert_error(&results[1], &missing(1), "write", Some(100), not_found);
        assert_error(&results[2], &paths[0], "read", Some(SIZE as u64), eof);
        assert_error(&results[3], &paths[2], "write", Some(512), None);
        assert_error(&results[4], &missing(9), "read", Some(0), not_found);
        assert!(results[5].is_ok(), "{:?}", results[5]);
        assert!(results[6].is_ok(), "{:?}", results[6]);
        assert_error(&results[7], &paths[0], "read", Some(20000), eof);
        assert!(results[8].is_ok(), "{:?}", results[8]);
        assert_error(&results[9], &missing(1), "sync_data", None, not_found);

        assert_eq!(good_read[..], model[0][..4096]);
        assert_eq!(straddling_read[..100], model[0][SIZE - 100..]);
        model[0][4096..4096 + 1024].copy_from_slice(&new_bytes);
        drop((rw, ro));
        assert_files_match(&paths, &model);
    }
}

#[test]
fn member_file_writes_and_syncs_directly() {
    let dir = TempDir::new("direct");
    let (paths, mut model) = setup(&dir, &[4096]);
    let file = MemberFile::open_read_write(&paths[0]).unwrap();
    file.write_all_at(1000, b"umd").unwrap();
    file.sync_data().unwrap();
    model[0][1000..1003].copy_from_slice(b"umd");
    let mut back = [0; 3];
    file.read_exact_at(1000, &mut back).unwrap();
    assert_eq!(&back, b"umd");
    let ro = MemberFile::open_read_only(&paths[0]).unwrap();
    let error = ro.write_all_at(2000, b"x").unwrap_err();
    assert_eq!((error.op, error.offset), ("write", Some(2000)));
    assert!(MemberFile::open_read_write(&dir.0.join("absent")).is_err());
    drop((file, ro));
    assert_files_match(&paths, &model);
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "overlap a write on member 0")]
fn overlapping_write_breaks_the_contract() {
    let dir = TempDir::new("overlap");
    let (paths, _) = setup(&dir, &[4096]);
    let file = MemberFile::open_read_write(&paths[0]).unwrap();
    let data = [1_u8; 100];
    let mut buf = [0_u8; 100];
    let mut ops = [
        Op::Write {
            member: 0,
            offset_bytes: 0,
            buf: &data,
        },
        Op::Read {
            member: 0,
            offset_bytes: 99,
            buf: &mut buf,
        },
    ];
    let mut results = ok_slots(2);
    Batch::with_backend(BackendKind::Sync).run(&[Some(&file)], &mut ops, &mut results);
}

#[test]
fn batch_can_move_to_its_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Batch>();
}

/// `Batch::new` reads `UMD_IO` from the environment; a child process of this test binary
/// checks it, so no test here changes the shared environment.
#[test]
fn umd_io_env_selects_the_backend() {
    const EXPECT: &str = "UMD_IO_TEST_EXPECT_BACKEND";
    if let Some(expected) = std::env::var_os(EXPECT) {
        assert_eq!(Batch::new().backend_name(), expected);
        return;
    }
    for (value, expected) in [(Some("sync"), "sync"), (None, "io_uring")] {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child.args([
            "umd_io_env_selects_the_backend",
            "--exact",
            "--test-threads=1",
        ]);
        child.env(EXPECT, expected);
        match value {
            Some(value) => child.env(umd_io::batch::BACKEND_ENV, value),
            None => child.env_remove(umd_io::batch::BACKEND_ENV),
        };
        let output = child.output().unwrap();
        assert!(output.status.success(), "UMD_IO={value:?}: {output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("1 passed"), "child ran no test: {stdout}");
    }
}
