//! The NBD export against real clients (nbdinfo, qemu-io, qemu-img, nbdcopy,
//! fio) and against a raw socket sending bad input.
//!
//! Each test serves in-memory exports from this process on a Unix socket in a
//! fresh temporary directory, drives them with an external client, and checks the
//! bytes that landed in each export, not just the client's exit status. A missing
//! client fails the test unless `UMD_SKIP_NBD_CLIENTS` is set. The multi-export
//! tests serve several named exports on one socket and address them by name
//! (`nbd+unix:///NAME?socket=PATH`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use umd::nbd::mem_export::MemExport;
use umd::nbd::proto::{
    IHAVEOPT, NBDMAGIC, NBD_CMD_DISC, NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_WRITE, NBD_EINVAL,
    NBD_ENOSPC, NBD_EPERM, NBD_FLAG_CAN_MULTI_CONN, NBD_FLAG_C_FIXED_NEWSTYLE,
    NBD_FLAG_C_NO_ZEROES, NBD_FLAG_READ_ONLY, NBD_OPT_EXPORT_NAME, NBD_OPT_GO,
    NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NBD_REP_ERR_UNKNOWN, NBD_REP_ERR_UNSUP, NBD_REP_INFO,
    NBD_REP_MAGIC, NBD_REQUEST_MAGIC, NBD_SIMPLE_REPLY_MAGIC,
};
use umd::nbd::{BlockExport, Listen, NbdServer, ServerConfig, ServerHandle};

const EXPORT_BYTES: u64 = 32 << 20;
const REQUEST_BYTES_MAX: u32 = 1 << 20;
const SKIP_VAR: &str = "UMD_SKIP_NBD_CLIENTS";

/// A served in-memory export; shuts down and removes its directory on drop.
struct Served {
    export: Arc<MemExport>,
    handle: Option<ServerHandle>,
    dir: PathBuf,
    socket: PathBuf,
}

/// A fresh, empty temporary directory for one test.
fn fresh_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "umd-nbd-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

impl Served {
    fn new(export: MemExport) -> Self {
        let dir = fresh_dir();
        let socket = dir.join("nbd.sock");
        let export = Arc::new(export);
        let config = ServerConfig {
            export_name: "umd".to_owned(),
            request_bytes_max: REQUEST_BYTES_MAX,
            ..ServerConfig::default()
        };
        let dyn_export: Arc<dyn BlockExport> = export.clone();
        let server =
            NbdServer::bind(&Listen::Unix(socket.clone()), dyn_export, config).expect("bind");
        Self {
            export,
            handle: Some(server.spawn()),
            dir,
            socket,
        }
    }

    fn uri(&self) -> String {
        format!("nbd+unix:///?socket={}", self.socket.display())
    }

    fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.socket).expect("connect")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True if `client` is installed; false only when skipping is explicitly allowed.
fn have_client(client: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {client}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || std::env::var_os(SKIP_VAR).is_some(),
        "{client} is not installed; install it or set {SKIP_VAR}=1 to skip"
    );
    found
}

fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .expect("spawn client");
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Deterministic bytes that differ block to block (xorshift64).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[test]
fn nbdinfo_reports_size_block_sizes_and_flags() {
    if !have_client("nbdinfo") {
        return;
    }
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let output = run("nbdinfo", &["--json", &served.uri()]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let export = &json["exports"][0];
    assert_eq!(export["export-size"], EXPORT_BYTES);
    assert_eq!(export["block_size_minimum"], 512);
    assert_eq!(export["block_size_preferred"], 4096);
    assert_eq!(export["block_size_maximum"], REQUEST_BYTES_MAX);
    assert_eq!(export["can_multi_conn"], true);
    assert_eq!(export["can_flush"], true);
    assert_eq!(export["can_fua"], true);
    assert_eq!(export["can_trim"], true);
    assert_eq!(export["can_zero"], true);
    assert_eq!(export["is_read_only"], false);
    assert_eq!(
        served.export.opened(),
        served.export.closed(),
        "openers balance"
    );
}

#[test]
fn nbdinfo_sees_read_only_export() {
    if !have_client("nbdinfo") {
        return;
    }
    let served = Served::new(MemExport::with_contents(vec![0; 1 << 20], true));
    let output = run("nbdinfo", &["--json", &served.uri()]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["exports"][0]["is_read_only"], true);
    assert_eq!(json["exports"][0]["export-size"], 1 << 20);
}

#[test]
fn qemu_io_patterns_fua_flush_and_zeroes() {
    if !have_client("qemu-io") {
        return;
    }
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let uri = served.uri();
    let script = [
        "write -P 0xab 0 1M",
        "write -f -P 0xcd 1M 64k",
        "write -P 0x11 2M 1M",
        "write -z 2M 512k",
        "flush",
        "read -P 0xab 0 1M",
        "read -P 0xcd 1M 64k",
        "read -P 0 2M 512k",
        "read -P 0x11 2560k 512k",
    ];
    let mut args = vec!["-f", "raw"];
    for command in &script {
        args.extend(["-c", command]);
    }
    args.push(&uri);
    let output = run("qemu-io", &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("failed"), "qemu-io verification: {stdout}");
    let data = served.export.snapshot().expect("snapshot");
    assert!(data[..1 << 20].iter().all(|&b| b == 0xab));
    assert!(data[1 << 20..(1 << 20) + (64 << 10)]
        .iter()
        .all(|&b| b == 0xcd));
    assert!(data[2 << 20..(2 << 20) + (512 << 10)]
        .iter()
        .all(|&b| b == 0));
    assert!(data[(2 << 20) + (512 << 10)..3 << 20]
        .iter()
        .all(|&b| b == 0x11));
    assert!(served.export.fua_writes() >= 1, "FUA reached the export");
    assert!(served.export.flushes() >= 1, "flush reached the export");
}

#[test]
fn qemu_io_detects_wrong_pattern() {
    // Guards the test above: a mismatching pattern must be reported.
    if !have_client("qemu-io") {
        return;
    }
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let uri = served.uri();
    let output = Command::new("qemu-io")
        .args([
            "-f",
            "raw",
            "-c",
            "write -P 0xab 0 64k",
            "-c",
            "read -P 0xac 0 64k",
            &uri,
        ])
        .output()
        .expect("spawn qemu-io");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("failed"), "mismatch not reported: {text}");
}

#[test]
fn nbdcopy_round_trip_with_multi_conn() {
    if !have_client("nbdcopy") {
        return;
    }
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let input = served.dir.join("in.img");
    let output = served.dir.join("out.img");
    let data = pattern(EXPORT_BYTES as usize, 0x5eed);
    std::fs::write(&input, &data).expect("write input");
    let uri = served.uri();
    run(
        "nbdcopy",
        &["--connections=4", "--flush", path_str(&input), &uri],
    );
    assert!(
        served.export.snapshot().expect("snapshot") == data,
        "export holds the copy"
    );
    run("nbdcopy", &["--connections=4", &uri, path_str(&output)]);
    assert!(
        std::fs::read(&output).expect("read output") == data,
        "copy out matches"
    );
    assert!(
        served.export.opened() >= 2,
        "nbdcopy opened several connections"
    );
}

#[test]
fn qemu_img_convert_round_trip() {
    if !have_client("qemu-img") {
        return;
    }
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let input = served.dir.join("in.img");
    let output = served.dir.join("out.img");
    let data = pattern(EXPORT_BYTES as usize, 0x00c0_ffee);
    std::fs::write(&input, &data).expect("write input");
    let uri = served.uri();
    run(
        "qemu-img",
        &[
            "convert",
            "-n",
            "-f",
            "raw",
            "-O",
            "raw",
            path_str(&input),
            &uri,
        ],
    );
    assert!(
        served.export.snapshot().expect("snapshot") == data,
        "export holds the copy"
    );
    run(
        "qemu-img",
        &["convert", "-f", "raw", "-O", "raw", &uri, path_str(&output)],
    );
    assert!(
        std::fs::read(&output).expect("read output") == data,
        "copy out matches"
    );
}

#[test]
fn fio_randrw_verify_two_jobs() {
    if !have_client("fio") {
        return;
    }
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let uri = format!("--uri={}", served.uri());
    // Each job owns a disjoint 8 MiB region, so verification is meaningful.
    let output = run(
        "fio",
        &[
            "--name=umd-nbd",
            "--ioengine=nbd",
            &uri,
            "--rw=randrw",
            "--bs=4k",
            "--size=8M",
            "--offset_increment=8M",
            "--iodepth=16",
            "--numjobs=2",
            "--verify=crc32c",
            "--verify_state_save=0",
            "--verify_fatal=1",
            "--output-format=json",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    // fio may print notes before its JSON document.
    let json_start = stdout.find('{').unwrap_or(0);
    let json: serde_json::Value = serde_json::from_str(&stdout[json_start..])
        .unwrap_or_else(|e| panic!("fio json: {e}: {stdout}"));
    for job in json["jobs"].as_array().expect("jobs") {
        assert_eq!(job["error"], 0, "fio job error: {job}");
        assert!(
            job["write"]["io_bytes"].as_u64().unwrap_or(0) > 0,
            "job wrote"
        );
    }
    assert!(served.export.opened() >= 2, "one connection per job");
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

// ---- Raw-socket client for bad input ----

fn read_u32(s: &mut impl Read) -> u32 {
    let mut b = [0u8; 4];
    s.read_exact(&mut b).expect("read u32");
    u32::from_be_bytes(b)
}

fn read_u64(s: &mut impl Read) -> u64 {
    let mut b = [0u8; 8];
    s.read_exact(&mut b).expect("read u64");
    u64::from_be_bytes(b)
}

/// Reads the greeting and sends fixed-newstyle client flags.
fn start_handshake(s: &mut (impl Read + Write)) {
    assert_eq!(read_u64(s), NBDMAGIC);
    assert_eq!(read_u64(s), IHAVEOPT);
    let mut flags = [0u8; 2];
    s.read_exact(&mut flags).expect("handshake flags");
    s.write_all(&(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES).to_be_bytes())
        .expect("flags");
}

fn send_option(s: &mut impl Write, option: u32, data: &[u8]) {
    let mut msg = Vec::new();
    msg.extend_from_slice(&IHAVEOPT.to_be_bytes());
    msg.extend_from_slice(&option.to_be_bytes());
    msg.extend_from_slice(&(data.len() as u32).to_be_bytes());
    msg.extend_from_slice(data);
    s.write_all(&msg).expect("send option");
}

/// Reads one option reply: (reply type, data).
fn read_option_reply(s: &mut impl Read, option: u32) -> (u32, Vec<u8>) {
    assert_eq!(read_u64(s), NBD_REP_MAGIC);
    assert_eq!(read_u32(s), option);
    let reply_type = read_u32(s);
    let len = read_u32(s) as usize;
    let mut data = vec![0u8; len];
    s.read_exact(&mut data).expect("reply data");
    (reply_type, data)
}

/// Sends NBD_OPT_GO for `name`; returns the final reply type and the export flags.
fn go(s: &mut (impl Read + Write), name: &str) -> (u32, u16) {
    let mut data = Vec::new();
    data.extend_from_slice(&(name.len() as u32).to_be_bytes());
    data.extend_from_slice(name.as_bytes());
    data.extend_from_slice(&0u16.to_be_bytes());
    send_option(s, NBD_OPT_GO, &data);
    let mut flags = 0;
    loop {
        let (reply_type, data) = read_option_reply(s, NBD_OPT_GO);
        if reply_type == NBD_REP_INFO && data[..2] == [0, 0] {
            flags = u16::from_be_bytes([data[10], data[11]]);
        }
        if reply_type != NBD_REP_INFO {
            return (reply_type, flags);
        }
    }
}

fn transmission_client(served: &Served) -> UnixStream {
    let mut s = served.connect();
    start_handshake(&mut s);
    assert_eq!(go(&mut s, "").0, NBD_REP_ACK);
    s
}

fn send_request(s: &mut impl Write, command: u16, cookie: u64, offset: u64, len: u32) {
    let mut msg = Vec::new();
    msg.extend_from_slice(&NBD_REQUEST_MAGIC.to_be_bytes());
    msg.extend_from_slice(&0u16.to_be_bytes());
    msg.extend_from_slice(&command.to_be_bytes());
    msg.extend_from_slice(&cookie.to_be_bytes());
    msg.extend_from_slice(&offset.to_be_bytes());
    msg.extend_from_slice(&len.to_be_bytes());
    s.write_all(&msg).expect("send request");
}

/// Reads a simple reply for `cookie`; returns its error.
fn read_reply(s: &mut impl Read, cookie: u64) -> u32 {
    assert_eq!(read_u32(s), NBD_SIMPLE_REPLY_MAGIC);
    let error = read_u32(s);
    assert_eq!(read_u64(s), cookie);
    error
}

/// A good request/reply round trip on `s`: write then read back 4 KiB.
fn assert_serves(s: &mut UnixStream) {
    let data = pattern(4096, 7);
    send_request(s, NBD_CMD_WRITE, 100, 8192, 4096);
    s.write_all(&data).expect("payload");
    assert_eq!(read_reply(s, 100), 0);
    send_request(s, NBD_CMD_READ, 101, 8192, 4096);
    assert_eq!(read_reply(s, 101), 0);
    let mut back = vec![0u8; 4096];
    s.read_exact(&mut back).expect("read data");
    assert_eq!(back, data);
}

/// True once the server has closed `s` (EOF or reset).
fn closed_by_server(s: &mut UnixStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(s.read(&mut byte), Ok(0) | Err(_))
}

#[test]
fn out_of_range_requests_get_errors_and_connection_continues() {
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let mut s = transmission_client(&served);
    send_request(&mut s, NBD_CMD_READ, 1, EXPORT_BYTES - 512, 1024);
    assert_eq!(read_reply(&mut s, 1), NBD_EINVAL);
    send_request(&mut s, NBD_CMD_WRITE, 2, EXPORT_BYTES - 2048, 4096);
    s.write_all(&[0x5a; 4096]).expect("payload");
    assert_eq!(read_reply(&mut s, 2), NBD_ENOSPC);
    send_request(&mut s, NBD_CMD_READ, 3, u64::MAX - 10, 512);
    assert_eq!(read_reply(&mut s, 3), NBD_EINVAL);
    send_request(&mut s, 99, 4, 0, 0);
    assert_eq!(read_reply(&mut s, 4), NBD_EINVAL, "unknown command");
    assert_serves(&mut s);
    let data = served.export.snapshot().expect("snapshot");
    let tail = &data[(EXPORT_BYTES - 2048) as usize..];
    assert!(tail.iter().all(|&b| b == 0), "refused write left no trace");
    send_request(&mut s, NBD_CMD_DISC, 5, 0, 0);
    assert!(closed_by_server(&mut s));
}

#[test]
fn oversized_requests_are_refused_or_closed() {
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let mut s = transmission_client(&served);
    send_request(&mut s, NBD_CMD_READ, 1, 0, REQUEST_BYTES_MAX + 512);
    assert_eq!(read_reply(&mut s, 1), NBD_EINVAL);
    // An oversized write within the drain bound: payload skipped, error, stream in sync.
    let len = REQUEST_BYTES_MAX * 2;
    send_request(&mut s, NBD_CMD_WRITE, 2, 0, len);
    s.write_all(&vec![0x77; len as usize]).expect("payload");
    assert_eq!(read_reply(&mut s, 2), NBD_EINVAL);
    assert_serves(&mut s);
    // A 4 GiB write cannot be skipped within bounds: the server hangs up.
    send_request(&mut s, NBD_CMD_WRITE, 3, 0, u32::MAX);
    assert!(closed_by_server(&mut s));
    assert_serves(&mut transmission_client(&served));
}

#[test]
fn bad_request_magic_closes_connection_only() {
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let mut s = transmission_client(&served);
    s.write_all(&[0xde; 28]).expect("garbage request");
    assert!(closed_by_server(&mut s));
    assert_serves(&mut transmission_client(&served));
}

#[test]
fn garbage_negotiation_closes_connection_only() {
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let mut s = served.connect();
    start_handshake(&mut s);
    s.write_all(&pattern(256, 3)).expect("garbage option");
    assert!(closed_by_server(&mut s));
    let mut s = served.connect();
    let mut greeting = [0u8; 18];
    s.read_exact(&mut greeting).expect("greeting");
    s.write_all(&[0xff; 4 + 8]).expect("unknown client flags");
    assert!(closed_by_server(&mut s));
    assert_serves(&mut transmission_client(&served));
}

#[test]
fn negotiation_refuses_unknown_options_and_exports() {
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let mut s = served.connect();
    start_handshake(&mut s);
    send_option(&mut s, NBD_OPT_STRUCTURED_REPLY, &[]);
    assert_eq!(
        read_option_reply(&mut s, NBD_OPT_STRUCTURED_REPLY).0,
        NBD_REP_ERR_UNSUP
    );
    send_option(&mut s, 0x4242, b"whatever");
    assert_eq!(read_option_reply(&mut s, 0x4242).0, NBD_REP_ERR_UNSUP);
    assert_eq!(go(&mut s, "no-such-export").0, NBD_REP_ERR_UNKNOWN);
    let (reply, flags) = go(&mut s, "umd");
    assert_eq!(reply, NBD_REP_ACK);
    assert_ne!(flags & NBD_FLAG_CAN_MULTI_CONN, 0);
    assert_eq!(flags & NBD_FLAG_READ_ONLY, 0);
    assert_serves(&mut s);
}

#[test]
fn read_only_export_refuses_writes() {
    let served = Served::new(MemExport::with_contents(vec![0x33; 1 << 20], true));
    let mut s = transmission_client(&served);
    send_request(&mut s, NBD_CMD_WRITE, 1, 0, 512);
    s.write_all(&[0u8; 512]).expect("payload");
    assert_eq!(read_reply(&mut s, 1), NBD_EPERM);
    send_request(&mut s, NBD_CMD_READ, 2, 0, 512);
    assert_eq!(read_reply(&mut s, 2), 0);
    let mut back = [0u8; 512];
    s.read_exact(&mut back).expect("read data");
    assert!(back.iter().all(|&b| b == 0x33));
}

#[test]
fn client_vanishing_mid_payload_leaves_server_serving() {
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    {
        let mut s = transmission_client(&served);
        send_request(&mut s, NBD_CMD_WRITE, 1, 0, 1 << 20);
        s.write_all(&[0x99; 1000]).expect("partial payload");
    }
    assert_serves(&mut transmission_client(&served));
    let data = served.export.snapshot().expect("snapshot");
    assert!(
        data[..1000].iter().all(|&b| b == 0),
        "partial write never reached the export"
    );
}

#[test]
fn pipelined_requests_all_get_replies() {
    let served = Served::new(MemExport::new(EXPORT_BYTES));
    let mut s = transmission_client(&served);
    let count = 64u64;
    for i in 0..count {
        send_request(&mut s, NBD_CMD_WRITE, i, i * 4096, 4096);
        s.write_all(&pattern(4096, i + 1)).expect("payload");
    }
    send_request(&mut s, NBD_CMD_FLUSH, count, 0, 0);
    let mut seen = vec![false; count as usize + 1];
    for _ in 0..=count {
        assert_eq!(read_u32(&mut s), NBD_SIMPLE_REPLY_MAGIC);
        assert_eq!(read_u32(&mut s), 0);
        let cookie = read_u64(&mut s) as usize;
        assert!(!seen[cookie], "one reply per request");
        seen[cookie] = true;
    }
    let data = served.export.snapshot().expect("snapshot");
    for i in 0..count as usize {
        assert_eq!(
            data[i * 4096..(i + 1) * 4096],
            pattern(4096, i as u64 + 1)[..]
        );
    }
}

#[test]
fn shutdown_returns_with_idle_clients_connected() {
    let mut served = Served::new(MemExport::new(EXPORT_BYTES));
    let mut idle_transmission = transmission_client(&served);
    let mut idle_negotiation = served.connect();
    start_handshake(&mut idle_negotiation);
    served.handle.take().expect("running").shutdown();
    assert!(closed_by_server(&mut idle_transmission));
    assert!(closed_by_server(&mut idle_negotiation));
    assert!(!served.socket.exists(), "socket file removed");
    assert_eq!(served.export.opened(), served.export.closed());
}

#[test]
fn tcp_listener_serves_on_an_ephemeral_port() {
    let export: Arc<dyn BlockExport> = Arc::new(MemExport::new(1 << 20));
    let listen: Listen = "tcp:127.0.0.1:0".parse().expect("parse");
    let server = NbdServer::bind(&listen, export, ServerConfig::default()).expect("bind");
    let handle = server.spawn();
    let Listen::Tcp(addr) = handle.local_addr() else {
        panic!("tcp listener")
    };
    assert_ne!(addr.port(), 0);
    let mut s = TcpStream::connect(addr).expect("connect");
    start_handshake(&mut s);
    assert_eq!(go(&mut s, "").0, NBD_REP_ACK);
    send_request(&mut s, NBD_CMD_READ, 9, 0, 512);
    assert_eq!(read_reply(&mut s, 9), 0);
    let mut back = [0xffu8; 512];
    s.read_exact(&mut back).expect("read data");
    assert_eq!(back, [0u8; 512]);
    handle.shutdown();
}

#[test]
fn listen_parses_documented_forms() {
    let tcp = |s: &str| match s.parse::<Listen>() {
        Ok(Listen::Tcp(addr)) => addr.to_string(),
        other => panic!("{s}: {other:?}"),
    };
    assert_eq!(tcp("tcp:10809"), "127.0.0.1:10809");
    assert_eq!(tcp("tcp::10809"), "127.0.0.1:10809");
    assert_eq!(tcp("tcp:0.0.0.0:10809"), "0.0.0.0:10809");
    assert_eq!(tcp("tcp:[::1]:10809"), "[::1]:10809");
    assert_eq!(
        "unix:/run/umd/md0.sock".parse::<Listen>(),
        Ok(Listen::Unix("/run/umd/md0.sock".into()))
    );
    for bad in [
        "unix:",
        "tcp:",
        "tcp:99999",
        "tcp:host",
        "udp:1",
        "",
        "/path",
    ] {
        assert!(bad.parse::<Listen>().is_err(), "{bad} must not parse");
    }
}

// ---- Several named exports on one listener ----

/// Sizes of the three named exports: different, so a client reaching the wrong
/// one sees the wrong size.
const MANY_SIZES: [(&str, u64); 3] = [("md0", 4 << 20), ("md1", 6 << 20), ("md2", 8 << 20)];

/// Several in-memory exports served by name on one socket; `md0` is the default.
struct ServedMany {
    exports: Vec<(String, Arc<MemExport>)>,
    handle: Option<ServerHandle>,
    dir: PathBuf,
    socket: PathBuf,
}

impl ServedMany {
    fn new() -> Self {
        let dir = fresh_dir();
        let socket = dir.join("nbd.sock");
        let exports: Vec<(String, Arc<MemExport>)> = MANY_SIZES
            .iter()
            .map(|&(name, bytes)| {
                let export = MemExport::new(bytes).described(format!("test array {name}"));
                (name.to_owned(), Arc::new(export))
            })
            .collect();
        let named = exports
            .iter()
            .map(|(name, export)| {
                let export: Arc<dyn BlockExport> = export.clone();
                (name.clone(), export)
            })
            .collect();
        let config = ServerConfig {
            request_bytes_max: REQUEST_BYTES_MAX,
            ..ServerConfig::default()
        };
        let server =
            NbdServer::bind_exports(&Listen::Unix(socket.clone()), named, config).expect("bind");
        Self {
            exports,
            handle: Some(server.spawn()),
            dir,
            socket,
        }
    }

    fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("running")
    }

    fn export(&self, name: &str) -> &MemExport {
        let (_, export) = self
            .exports
            .iter()
            .find(|(n, _)| n == name)
            .expect("a test export");
        export
    }

    /// The URI of export `name`; the empty name is the default export.
    fn uri(&self, name: &str) -> String {
        format!("nbd+unix:///{name}?socket={}", self.socket.display())
    }

    /// A raw connection in transmission on export `name`.
    fn transmission(&self, name: &str) -> UnixStream {
        let mut s = UnixStream::connect(&self.socket).expect("connect");
        start_handshake(&mut s);
        assert_eq!(go(&mut s, name).0, NBD_REP_ACK, "GO {name}");
        s
    }

    /// The export names and sizes `nbdinfo --list` reports, in its order.
    fn listed(&self) -> Vec<(String, u64)> {
        let output = run("nbdinfo", &["--list", "--json", &self.uri("")]);
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        json["exports"]
            .as_array()
            .expect("exports")
            .iter()
            .map(|e| {
                let name = e["export-name"].as_str().expect("name").to_owned();
                (name, e["export-size"].as_u64().expect("size"))
            })
            .collect()
    }
}

impl Drop for ServedMany {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sizes_of(names: &[&str]) -> Vec<(String, u64)> {
    names
        .iter()
        .map(|&name| {
            let (_, bytes) = MANY_SIZES.iter().find(|(n, _)| *n == name).expect("known");
            (name.to_owned(), *bytes)
        })
        .collect()
}

/// True if `program args` exits with failure (the client refused or was refused).
fn fails(program: &str, args: &[&str]) -> bool {
    let output = Command::new(program)
        .args(args)
        .output()
        .expect("spawn client");
    !output.status.success()
}

#[test]
fn nbdinfo_list_sees_every_export_with_its_own_size_and_flags() {
    if !have_client("nbdinfo") {
        return;
    }
    let served = ServedMany::new();
    assert_eq!(served.listed(), sizes_of(&["md0", "md1", "md2"]));
    let output = run("nbdinfo", &["--list", "--json", &served.uri("")]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    for export in json["exports"].as_array().expect("exports") {
        let name = export["export-name"].as_str().expect("name");
        assert_eq!(
            export["description"],
            format!("test array {name}"),
            "{export}"
        );
        assert_eq!(export["can_multi_conn"], true, "multi-conn per export");
        assert_eq!(export["block_size_maximum"], REQUEST_BYTES_MAX);
    }
    // The empty name is the default export, md0.
    let output = run("nbdinfo", &["--json", &served.uri("")]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["exports"][0]["export-size"], MANY_SIZES[0].1);
}

#[test]
fn nbdcopy_writes_and_reads_each_export_by_name() {
    if !have_client("nbdcopy") {
        return;
    }
    let served = ServedMany::new();
    for (seed, &(name, bytes)) in MANY_SIZES.iter().enumerate() {
        let input = served.dir.join(format!("{name}.in"));
        std::fs::write(&input, pattern(bytes as usize, seed as u64 + 11)).expect("input");
        run(
            "nbdcopy",
            &["--connections=2", path_str(&input), &served.uri(name)],
        );
    }
    for (seed, &(name, bytes)) in MANY_SIZES.iter().enumerate() {
        let expected = pattern(bytes as usize, seed as u64 + 11);
        let landed = served.export(name).snapshot().expect("snapshot");
        assert!(landed == expected, "{name} holds its own copy");
        let output = served.dir.join(format!("{name}.out"));
        run("nbdcopy", &[&served.uri(name), path_str(&output)]);
        let back = std::fs::read(&output).expect("read output");
        assert!(back == expected, "{name} reads back its own copy");
    }
}

#[test]
fn qemu_io_writes_and_verifies_each_export_by_name() {
    if !have_client("qemu-io") {
        return;
    }
    let served = ServedMany::new();
    let patterns = [("md0", 0x10u8), ("md1", 0x21), ("md2", 0x32)];
    for (name, byte) in patterns {
        let uri = served.uri(name);
        let write = format!("write -P {byte:#x} 1M 256k");
        let read = format!("read -P {byte:#x} 1M 256k");
        let output = run("qemu-io", &["-f", "raw", "-c", &write, "-c", &read, &uri]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("failed"), "{name}: {stdout}");
    }
    for (name, byte) in patterns {
        let data = served.export(name).snapshot().expect("snapshot");
        let region = &data[1 << 20..(1 << 20) + (256 << 10)];
        assert!(region.iter().all(|&b| b == byte), "{name} got its pattern");
        assert!(
            data[..1 << 20].iter().all(|&b| b == 0),
            "{name}: rest untouched"
        );
    }
}

#[test]
fn unknown_export_names_are_refused() {
    let served = ServedMany::new();
    if have_client("nbdinfo") {
        assert!(fails("nbdinfo", &[&served.uri("md9")]), "nbdinfo md9");
    }
    if have_client("qemu-io") {
        let uri = served.uri("md9");
        assert!(fails("qemu-io", &["-f", "raw", "-c", "read 0 4k", &uri]));
    }
    let mut s = UnixStream::connect(&served.socket).expect("connect");
    start_handshake(&mut s);
    assert_eq!(go(&mut s, "md9").0, NBD_REP_ERR_UNKNOWN);
    assert_eq!(go(&mut s, "md1").0, NBD_REP_ACK, "still negotiating");
    assert_serves(&mut s);
    // EXPORT_NAME has no error reply: an unknown name closes the connection.
    let mut s = UnixStream::connect(&served.socket).expect("connect");
    start_handshake(&mut s);
    send_option(&mut s, NBD_OPT_EXPORT_NAME, b"md9");
    assert!(closed_by_server(&mut s));
    for (name, export) in &served.exports {
        let touched = name == "md1";
        let data = export.snapshot().expect("snapshot");
        assert_eq!(
            data[8192..12288] == pattern(4096, 7)[..],
            touched,
            "{name}: only md1 was written"
        );
    }
}

#[test]
fn export_name_option_picks_by_name() {
    let served = ServedMany::new();
    let mut s = UnixStream::connect(&served.socket).expect("connect");
    start_handshake(&mut s);
    send_option(&mut s, NBD_OPT_EXPORT_NAME, b"md2");
    assert_eq!(read_u64(&mut s), MANY_SIZES[2].1, "md2's size");
    let mut flags = [0u8; 2];
    s.read_exact(&mut flags).expect("flags");
    assert_serves(&mut s);
    let data = served.export("md2").snapshot().expect("snapshot");
    assert_eq!(data[8192..12288], pattern(4096, 7)[..]);
}

#[test]
fn withdrawn_export_disappears_while_its_clients_and_other_exports_keep_serving() {
    if !have_client("nbdinfo") || !have_client("qemu-io") {
        return;
    }
    let served = ServedMany::new();
    let mut using_md1 = served.transmission("md1");
    let withdrawn = served.handle().withdraw("md1").expect("md1 was served");
    assert!(served.handle().withdraw("md1").is_none(), "only once");
    assert_eq!(served.handle().export_names(), ["md0", "md2"]);
    assert_eq!(served.listed(), sizes_of(&["md0", "md2"]));
    assert!(fails("nbdinfo", &[&served.uri("md1")]), "md1 refused");
    let mut s = UnixStream::connect(&served.socket).expect("connect");
    start_handshake(&mut s);
    assert_eq!(go(&mut s, "md1").0, NBD_REP_ERR_UNKNOWN);
    // The connection that chose md1 before the withdrawal still reaches it.
    assert_serves(&mut using_md1);
    let md1 = served.export("md1").snapshot().expect("snapshot");
    assert_eq!(md1[8192..12288], pattern(4096, 7)[..]);
    drop(using_md1);
    // Another export keeps serving.
    let uri = served.uri("md2");
    let script = ["write -P 0x5c 0 64k", "read -P 0x5c 0 64k"];
    let output = run(
        "qemu-io",
        &["-f", "raw", "-c", script[0], "-c", script[1], &uri],
    );
    assert!(!String::from_utf8_lossy(&output.stdout).contains("failed"));
    let md2 = served.export("md2").snapshot().expect("snapshot");
    assert!(md2[..64 << 10].iter().all(|&b| b == 0x5c));
    // Offered again, it is listed and served again.
    served.handle().add("md1", withdrawn).expect("add back");
    assert_eq!(served.listed(), sizes_of(&["md0", "md2", "md1"]));
    let mut again = served.transmission("md1");
    assert_serves(&mut again);
}

#[test]
fn withdrawn_default_export_leaves_the_empty_name_unknown() {
    if !have_client("nbdinfo") {
        return;
    }
    let served = ServedMany::new();
    run("nbdinfo", &[&served.uri("")]);
    served.handle().withdraw("md0").expect("md0 was served");
    assert!(
        fails("nbdinfo", &[&served.uri("")]),
        "the default must not silently become md1"
    );
    let mut s = UnixStream::connect(&served.socket).expect("connect");
    start_handshake(&mut s);
    assert_eq!(go(&mut s, "").0, NBD_REP_ERR_UNKNOWN);
    assert_eq!(served.listed(), sizes_of(&["md1", "md2"]));
}

#[test]
fn bind_exports_refuses_duplicate_names() {
    let dir = fresh_dir();
    let a: Arc<dyn BlockExport> = Arc::new(MemExport::new(1 << 20));
    let b: Arc<dyn BlockExport> = Arc::new(MemExport::new(1 << 20));
    let listen = Listen::Unix(dir.join("nbd.sock"));
    let result = NbdServer::bind_exports(
        &listen,
        vec![("md0".to_owned(), a), ("md0".to_owned(), b)],
        ServerConfig::default(),
    );
    let error = result.expect_err("duplicate names");
    assert!(error.to_string().contains("md0"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}
