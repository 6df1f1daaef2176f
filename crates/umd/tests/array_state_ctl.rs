//! The array_state machine through `umd ctl`, against md's table
//! (protocol.md §2.2): every word written in each state a running native
//! array can reach, with md's result or error code.
//!
//! The expectations are md's (the kernel's `array_state_store`), not ours:
//! EINVAL for words that cannot be written, EBUSY while the device is open,
//! ENXIO for `readonly` on a read-only array, EINVAL for `clean` on an
//! inactive array.

mod support;

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{create, require_tool, run_ok, sparse_members, Running, TempDir};

/// Hold an NBD connection open (md's "openers"): qemu-io waits for commands.
fn open_client(run: &Running) -> Child {
    let child = Command::new("qemu-io")
        .args(["-f", "raw", &run.uri()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-io");
    // Wait until the server counts the client.
    std::thread::sleep(Duration::from_millis(700));
    child
}

fn close_client(mut child: Child) {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"quit\n");
    }
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(200));
}

fn expect_err(run: &Running, word: &str, errno: &str) {
    let err = run
        .set("array_state", word)
        .expect_err(&format!("writing {word} must fail with {errno}"));
    assert!(
        err.contains(errno),
        "writing {word}: expected {errno}, got {err:?}"
    );
}

fn wait_state(run: &Running, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = run.get("array_state");
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "array_state is {got:?}, expected {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn nbd_write(run: &Running, ok: bool) {
    let out = Command::new("qemu-io")
        .args(["-f", "raw", &run.uri(), "-c", "write -P 0x11 0 4096"])
        .output()
        .expect("qemu-io");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let failed = !out.status.success() || text.contains("failed");
    assert_eq!(!failed, ok, "write through NBD: expected ok={ok}: {text}");
}

#[test]
fn array_state_rows_through_umd_ctl() {
    require_tool("qemu-io");
    let dir = TempDir::new("array-state");
    let members = sparse_members(dir.path(), 3, 16);
    create(
        &members,
        &[
            "--level",
            "5",
            "--raid-devices",
            "3",
            "--chunk",
            "64",
            "--assume-clean",
        ],
    );
    let run = Running::start(dir.path(), &members);
    wait_state(&run, "clean");

    // Words that can never be written (step A): EINVAL in any state.
    for word in [
        "write-pending",
        "active-idle",
        "broken",
        "suspended",
        "bogus",
    ] {
        expect_err(&run, word, "EINVAL");
    }
    // First write: clean -> active (the native superblock write is ours).
    nbd_write(&run, true);
    let s = run.get("array_state");
    assert!(
        s == "active" || s == "active-idle" || s == "clean",
        "after a write: {s}"
    );
    // Safe mode brings it back to clean by itself (native, 200 ms).
    wait_state(&run, "clean");
    // `active` on a running array: the fast path always succeeds.
    run.set("array_state", "active").expect("active");
    run.set("array_state", "clean")
        .expect("clean with no writes pending");
    wait_state(&run, "clean");

    // readonly / inactive / clear while a client has the device open: EBUSY.
    let client = open_client(&run);
    for word in ["readonly", "inactive", "clear", "read-auto"] {
        expect_err(&run, word, "EBUSY");
    }
    close_client(client);

    // readonly: writes fail, reads work; readonly again: ENXIO.
    run.set("array_state", "readonly")
        .expect("readonly with no openers");
    wait_state(&run, "readonly");
    expect_err(&run, "readonly", "ENXIO");
    nbd_write(&run, false);
    run_ok(Command::new("qemu-io").args(["-f", "raw", &run.uri(), "-c", "read 0 4096"]));
    // read-auto from readonly, then the first write makes it read-write.
    run.set("array_state", "read-auto").expect("read-auto");
    wait_state(&run, "read-auto");
    nbd_write(&run, true);
    let s = run.get("array_state");
    assert!(
        s == "active" || s == "clean" || s == "active-idle",
        "read-auto after a write: {s}"
    );
    wait_state(&run, "clean");

    // inactive: stopped, configuration kept; clean is refused there.
    run.set("array_state", "inactive").expect("inactive");
    wait_state(&run, "inactive");
    expect_err(&run, "clean", "EINVAL");
    run.set("array_state", "inactive")
        .expect("inactive on inactive is a no-op");
    // active on an inactive array runs it again.
    run.set("array_state", "active")
        .expect("active runs the array");
    let s = run.get("array_state");
    assert!(
        s == "active" || s == "clean",
        "after active on inactive: {s}"
    );
    nbd_write(&run, true);
    run.stop();
}

/// Behaviour 29: a clean raid0 that loses a member reports `broken`; writes
/// fail with EIO while reads of the surviving members' chunks still work.
/// (md keeps reading a raid0 member marked failed while it still answers,
/// so only the surviving range is checked.)
#[test]
fn raid0_with_a_failed_member_is_broken() {
    require_tool("qemu-io");
    let dir = TempDir::new("broken");
    let members = sparse_members(dir.path(), 3, 16);
    create(
        &members,
        &["--level", "0", "--raid-devices", "3", "--chunk", "64"],
    );
    let run = Running::start(dir.path(), &members);
    wait_state(&run, "clean");
    // md's state_store: md_error marks raid0 broken, and the store then
    // answers EBUSY because the array is broken.
    let err = run
        .set("dev-m1.img/state", "faulty")
        .expect_err("raid0 cannot lose a member");
    assert!(err.contains("EBUSY"), "faulty on raid0: {err}");
    wait_state(&run, "broken");
    expect_err(&run, "broken", "EINVAL");
    nbd_write(&run, false);
    // Chunk 0 lives on m0 (role 0), which is still there.
    run_ok(Command::new("qemu-io").args(["-f", "raw", &run.uri(), "-c", "read 0 65536"]));
    run.stop();
}

/// The rows of an array with no personality: `clear` wipes it, after which
/// `clean` is EINVAL, `inactive` is a no-op and running needs members.
#[test]
fn cleared_array_rows() {
    require_tool("qemu-io");
    let dir = TempDir::new("clear");
    let members = sparse_members(dir.path(), 2, 16);
    create(
        &members,
        &["--level", "1", "--raid-devices", "2", "--assume-clean"],
    );
    let run = Running::start(dir.path(), &members);
    wait_state(&run, "clean");
    run.set("array_state", "clear")
        .expect("clear with no openers");
    wait_state(&run, "clear");
    expect_err(&run, "clean", "EINVAL");
    run.set("array_state", "inactive")
        .expect("inactive on a cleared array is a no-op");
    let err = run
        .set("array_state", "active")
        .expect_err("nothing to run");
    assert!(
        err.contains("EINVAL") || err.contains("ENXIO"),
        "active on clear: {err}"
    );
    nbd_write(&run, false);
    run.stop();
}
