//! Remote workers through ssh (`-S`), with a stand-in for ssh that runs the command on this
//! machine: the launcher, the job log's Host column, hosts that cannot be reached, workers
//! that die or go silent. The same batches against real sshd hosts are in `ssh_hosts.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{TROOP, check_refused, temp_dir, troop};

/// Writes the stand-in for ssh: it drops ssh's options and the host, and runs the command
/// here in a fresh environment with `FAKESSH_HOST` set (and `HOME` under `FAKE_HOMES`, when
/// set, one per host). Host `down` cannot be reached (exit 255, as ssh's own);
/// host `frozen` stops the worker after `FROZEN_AFTER` seconds, as a host that vanished.
fn fake_ssh(dir: &Path) -> PathBuf {
    let path = dir.join("fakessh");
    std::fs::write(
        &path,
        r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case $1 in
    -o|-p|-l) shift 2 ;;
    --) shift; break ;;
    -*) shift ;;
    *) host=$1; shift; [ "$1" = -- ] && shift; break ;;
  esac
done
echo "$host" >> "$FAKESSH_LOG"
if [ -n "$FAKE_HOMES" ]; then HOME=$FAKE_HOMES/$host; mkdir -p "$HOME"; fi
# Like sshd, the command gets a fresh environment, not this one.
run() { cd "$HOME" && env -i PATH="$PATH" HOME="$HOME" FAKESSH_HOST="$host" sh -c "$*"; }
case $host in
  down) echo "ssh: connect to host down port 22: No route to host" >&2; exit 255 ;;
  frozen) exec 3<&0
    (exec env -i PATH="$PATH" HOME="$HOME" FAKESSH_HOST="$host" sh -c "$*") <&3 & pid=$!
    sleep "${FROZEN_AFTER:-1}"; kill -STOP $pid; wait; exit 0 ;;
esac
run "$@"
"#,
    )
    .expect("write fakessh");
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    path
}

/// The `Host` and `Exitval` of each row of a GNU parallel job log, by sequence number.
pub fn log_rows(path: &Path) -> Vec<(u64, String, i32)> {
    let text = std::fs::read_to_string(path).expect("job log");
    let mut rows: Vec<(u64, String, i32)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].parse().unwrap(),
                f[1].to_string(),
                f[6].parse().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

struct Remote {
    dir: tempfile::TempDir,
    ssh: String,
}

impl Remote {
    fn new() -> Remote {
        let dir = temp_dir();
        let ssh = fake_ssh(dir.path()).to_string_lossy().into_owned();
        Remote { dir, ssh }
    }

    fn log(&self) -> String {
        self.dir.path().join("log").to_string_lossy().into_owned()
    }

    /// `troop run` with the stand-in ssh and the remote worker program.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> crate::util::Ran {
        let mut command = Command::new(TROOP);
        command
            .arg("run")
            .args([
                "--ssh",
                &self.ssh,
                "--remote-worker",
                TROOP,
                "--joblog",
                &self.log(),
            ])
            .args(args)
            .env("FAKESSH_LOG", self.dir.path().join("logins"))
            .envs(env.iter().copied());
        crate::util::run_command(command, "")
    }
}

#[test]
fn a_batch_over_hosts_and_this_machine_gives_the_output_of_a_local_run() {
    let r = Remote::new();
    let inputs: Vec<String> = (1..=24).map(|i| i.to_string()).collect();
    let mut args = vec![
        "-k",
        "-S",
        "2/h1,2/h2,:",
        "-j",
        "1",
        "sleep 0.05; echo {} x{}",
    ];
    args.push(":::");
    args.extend(inputs.iter().map(String::as_str));
    let remote = r.run(&args, &[]);
    remote.assert_code(0);
    let mut local = vec!["run", "-k", "-j", "3", "sleep 0.05; echo {} x{}", ":::"];
    local.extend(inputs.iter().map(String::as_str));
    let here = troop(&local, "");
    here.assert_code(0);
    assert_eq!(remote.stdout, here.stdout, "the output of a local -k run");
    let rows = log_rows(Path::new(&r.log()));
    assert_eq!(rows.len(), 24);
    for host in ["h1", "h2", ":"] {
        assert!(
            rows.iter().any(|(_, h, _)| h == host),
            "{host} ran tasks: {rows:?}"
        );
    }
}

#[test]
fn the_job_log_names_the_host_that_ran_each_task() {
    let r = Remote::new();
    let ran = r.run(&["-S", "1/h1", "echo $FAKESSH_HOST", ":::", "a", "b"], &[]);
    ran.assert_ok_with("h1 a\nh1 b\n");
    let rows = log_rows(Path::new(&r.log()));
    assert_eq!(
        rows,
        vec![(1, "h1".to_string(), 0), (2, "h1".to_string(), 0)]
    );
}

#[test]
fn a_host_that_cannot_be_reached_is_reported_and_the_others_carry_on() {
    let r = Remote::new();
    let ran = r.run(&["-S", "1/down,1/h1", "echo {}", ":::", "1", "2", "3"], &[]);
    ran.assert_code(0);
    let mut lines = ran.lines();
    lines.sort();
    assert_eq!(lines, ["1", "2", "3"]);
    assert!(
        ran.stderr.contains("down") && ran.stderr.contains("going on with"),
        "the unreachable host is named: {}",
        ran.stderr
    );
    let rows = log_rows(Path::new(&r.log()));
    assert!(rows.iter().all(|(_, h, _)| h == "h1"), "{rows:?}");
}

#[test]
fn no_reachable_host_fails_the_run_naming_the_host() {
    let r = Remote::new();
    let ran = r.run(&["-S", "down", "echo {}", ":::", "1"], &[]);
    assert_eq!(ran.code, Some(255), "{}", ran.stderr);
    assert!(ran.stderr.contains("down"), "{}", ran.stderr);
}

#[test]
fn a_silent_host_is_taken_for_lost_and_its_tasks_run_elsewhere() {
    let r = Remote::new();
    let inputs: Vec<String> = (1..=16).map(|i| i.to_string()).collect();
    let mut args = vec![
        "-S",
        "1/frozen,1/h1",
        "--heartbeat",
        "100ms/1s",
        "--retries",
        "1",
        "sleep 0.3; echo {}",
        ":::",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let ran = r.run(&args, &[("FROZEN_AFTER", "1.2")]);
    ran.assert_code(0);
    let mut lines: Vec<u32> = ran.lines().iter().map(|l| l.parse().unwrap()).collect();
    lines.sort();
    assert_eq!(lines, (1..=16).collect::<Vec<_>>(), "every task ran once");
    assert!(
        ran.stderr.contains("frozen") && ran.stderr.contains("said nothing"),
        "the silence is reported: {}",
        ran.stderr
    );
    // The tasks the frozen host held were lost, and ran again to success.
    let lost: Vec<u64> = ran
        .stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("troop: task ")?
                .split_once(" lost")?
                .0
                .parse()
                .ok()
        })
        .collect();
    assert!(!lost.is_empty(), "a task was lost: {}", ran.stderr);
    let rows = log_rows(Path::new(&r.log()));
    assert_eq!(rows.len(), 16, "one row per task: {rows:?}");
    for seq in lost {
        let row = rows.iter().find(|r| r.0 == seq).unwrap();
        assert_eq!(
            row.2, 0,
            "lost task {seq} succeeded when it ran again: {rows:?}"
        );
    }
}

#[test]
fn bad_remote_options_are_refused_naming_the_option() {
    check_refused(&["-S", "0/h1", "echo", ":::", "1"], "-S");
    check_refused(&["-S", "h1:http", "echo", ":::", "1"], "port");
    check_refused(
        &["-S", "h1", "--mode", "thread", "echo", ":::", "1"],
        "--mode thread",
    );
    check_refused(&["-S", "h1", "--pipe", "cat"], "--pipe");
    check_refused(
        &["-S", "h1", "--heartbeat", "1s/1s", "echo", ":::", "1"],
        "--heartbeat",
    );
    check_refused(
        &["--slf", "/nonexistent/troop-hosts", "echo", ":::", "1"],
        "--sshloginfile",
    );
}

#[test]
fn an_sshlogin_file_gives_the_hosts() {
    let r = Remote::new();
    let file = r.dir.path().join("hosts");
    std::fs::write(&file, "# the hosts\n1/h1\n1/h2\n").unwrap();
    let file = file.to_string_lossy().into_owned();
    let ran = r.run(
        &["--slf", &file, "-k", "echo {}", ":::", "1", "2", "3", "4"],
        &[],
    );
    ran.assert_ok_with("1\n2\n3\n4\n");
    let logins = std::fs::read_to_string(r.dir.path().join("logins")).unwrap();
    assert!(logins.contains("h1") && logins.contains("h2"), "{logins}");
}

#[test]
fn output_larger_than_a_frame_comes_back_whole() {
    let r = Remote::new();
    // 20 MB of numbered lines: more than one frame (16 MiB).
    let ran = r.run(
        &["-S", "1/h1", "seq {} | head -c 20000000", ":::", "3000000"],
        &[],
    );
    ran.assert_code(0);
    let expected = Command::new("sh")
        .args(["-c", "seq 3000000 | head -c 20000000"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(ran.stdout.len(), 20_000_000);
    assert!(
        ran.stdout.as_bytes() == expected,
        "the output is whole and in order"
    );
}

#[test]
fn env_passes_named_variables_to_remote_commands() {
    let r = Remote::new();
    let args = ["-S", "1/h1", "echo [$TROOP_TEST_VAR] {}", ":::", "x"];
    let ran = r.run(&args, &[("TROOP_TEST_VAR", "it's here")]);
    ran.assert_ok_with("[] x\n");
    let mut with_env = vec!["--env", "TROOP_TEST_VAR"];
    with_env.extend(args);
    let ran = r.run(&with_env, &[("TROOP_TEST_VAR", "it's here")]);
    ran.assert_ok_with("[it's here] x\n");
}

#[test]
fn transfer_worker_copies_this_build_once_and_runs_it() {
    let r = Remote::new();
    let homes = r.dir.path().join("homes");
    let homes_s = homes.to_string_lossy().into_owned();
    let args = [
        "-S",
        "1/h1,1/h2",
        "--transfer-worker",
        "--remote-worker",
        "/nonexistent/troop",
        "-k",
        "echo {}",
        ":::",
        "1",
        "2",
        "3",
    ];
    r.run(&args, &[("FAKE_HOMES", &homes_s)])
        .assert_ok_with("1\n2\n3\n");
    let ours = std::fs::read(TROOP).unwrap();
    let mut stamps = Vec::new();
    for host in ["h1", "h2"] {
        let cache = homes.join(host).join(".cache/troop");
        let builds: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
        assert_eq!(builds.len(), 1, "{host}: one build");
        let copy = builds[0].path().join("troop");
        assert!(
            std::fs::read(&copy).unwrap() == ours,
            "{host}: the copy is this build"
        );
        stamps.push(std::fs::metadata(&copy).unwrap().modified().unwrap());
    }
    // A second run finds the build there and copies nothing.
    r.run(&args, &[("FAKE_HOMES", &homes_s)])
        .assert_ok_with("1\n2\n3\n");
    for (host, stamp) in ["h1", "h2"].iter().zip(stamps) {
        let cache = homes.join(host).join(".cache/troop");
        let build = std::fs::read_dir(&cache).unwrap().flatten().next().unwrap();
        let now = std::fs::metadata(build.path().join("troop"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(now, stamp, "{host}: not copied again");
    }
}

#[test]
fn the_event_stream_names_the_host_of_each_worker() {
    let r = Remote::new();
    let events = r.dir.path().join("events.jsonl");
    let events_s = events.to_string_lossy().into_owned();
    let ran = r.run(
        &[
            "-S", "1/h1,1/:", "--events", &events_s, "echo", ":::", "a", "b",
        ],
        &[],
    );
    ran.assert_code(0);
    let text = std::fs::read_to_string(&events).unwrap();
    let mut hosts: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "worker_started")
        .map(|v| v["host"].as_str().unwrap().to_string())
        .collect();
    hosts.sort();
    assert_eq!(hosts, [":", "h1"], "{text}");
}

#[test]
fn files_go_to_the_host_and_come_back_and_are_cleaned_up() {
    let r = Remote::new();
    let homes = r.dir.path().join("homes");
    let homes_s = homes.to_string_lossy().into_owned();
    let work = r.dir.path().join("work");
    std::fs::create_dir_all(work.join("in")).unwrap();
    for n in 1..=4 {
        std::fs::write(work.join(format!("in/{n}.txt")), "x".repeat(n * 10)).unwrap();
    }
    std::fs::write(work.join("base.sh"), "echo base\n").unwrap();
    // Each task runs in its host's home, where only the transferred files are.
    let mut command = Command::new(TROOP);
    command
        .current_dir(&work)
        .args(["run", "--ssh", &r.ssh, "--remote-worker", TROOP])
        .args([
            "-S",
            "1/h1,1/h2",
            "--basefile",
            "base.sh",
            "--trc",
            "{}.count",
        ])
        .args(["sh base.sh > {}.base; wc -c < {} > {}.count; echo $FAKESSH_HOST"])
        .args([":::", "in/1.txt", "in/2.txt", "in/3.txt", "in/4.txt"])
        .env("FAKESSH_LOG", r.dir.path().join("logins"))
        .env("FAKE_HOMES", &homes_s);
    let ran = crate::util::run_command(command, "");
    ran.assert_code(0);
    for n in 1..=4 {
        let count = std::fs::read_to_string(work.join(format!("in/{n}.txt.count"))).unwrap();
        assert_eq!(
            count.trim(),
            (n * 10).to_string(),
            "task {n}'s result came back"
        );
    }
    for host in ["h1", "h2"] {
        let home = homes.join(host);
        assert!(home.join("base.sh").exists(), "{host} got the base file");
        let left: Vec<_> = std::fs::read_dir(home.join("in"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        // --cleanup removed what was sent and brought back; the .base files were neither.
        assert!(
            left.iter().all(|f| f.to_string_lossy().ends_with(".base")),
            "{host}: {left:?}"
        );
    }
    assert!(
        ran.stdout.contains("h1") && ran.stdout.contains("h2"),
        "both hosts ran tasks: {}",
        ran.stdout
    );
}

#[test]
fn a_file_to_transfer_that_is_missing_fails_only_its_task() {
    let r = Remote::new();
    let work = r.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("here.txt"), "1\n").unwrap();
    let mut command = Command::new(TROOP);
    command
        .current_dir(&work)
        .args(["run", "--ssh", &r.ssh, "--remote-worker", TROOP, "-k"])
        .args([
            "-S",
            "1/h1",
            "--transfer",
            "cat {}",
            ":::",
            "here.txt",
            "gone.txt",
        ])
        .env("FAKESSH_LOG", r.dir.path().join("logins"))
        .env("FAKE_HOMES", r.dir.path().join("homes"));
    let ran = crate::util::run_command(command, "");
    assert_eq!(ran.code, Some(1), "one task failed: {}", ran.stderr);
    assert_eq!(ran.stdout, "1\n");
    assert!(
        ran.stderr.contains("gone.txt"),
        "the missing file is named: {}",
        ran.stderr
    );
}
