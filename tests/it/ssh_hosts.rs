//! Remote workers through real ssh, to the two network-namespace hosts `scripts/testenv`
//! starts: a batch over both hosts and this machine, and a host taken off the network in the
//! middle of a batch.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::remote::log_rows;
use crate::testenv::{TestEnv, ssh_env, ssh_env_alone};
use crate::util::{Ran, TROOP, run_command, troop};

/// `troop run` over the test hosts, with the test's ssh configuration.
fn over_ssh(env: &TestEnv, log: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(TROOP);
    command.args([
        "run",
        "--ssh",
        &format!("ssh -F {}", env.ssh_config()),
        "--remote-worker",
        TROOP,
        "--joblog",
        &log.to_string_lossy(),
    ]);
    command.args(args);
    command
}

#[test]
fn a_batch_over_two_ssh_hosts_and_this_machine_matches_a_local_run() {
    let Some(env) = ssh_env("a batch over the ssh hosts") else {
        return;
    };
    let dir = crate::util::temp_dir();
    let log = dir.path().join("log");
    let inputs: Vec<String> = (1..=24).map(|i| i.to_string()).collect();
    let script = "sleep 0.4; echo {} $(({} * {}))";
    let mut args = vec!["-k", "-S", "2/h1,2/h2,1/:", script, ":::"];
    args.extend(inputs.iter().map(String::as_str));
    let remote: Ran = run_command(over_ssh(&env, &log, &args), "");
    remote.assert_code(0);
    let mut local = vec!["run", "-k", "-j", "5", script, ":::"];
    local.extend(inputs.iter().map(String::as_str));
    let here = troop(&local, "");
    assert_eq!(remote.stdout, here.stdout, "the output of a local -k run");
    let rows = log_rows(&log);
    assert_eq!(rows.len(), 24);
    for host in ["h1", "h2", ":"] {
        assert!(
            rows.iter().any(|(_, h, code)| h == host && *code == 0),
            "{host} ran tasks: {rows:?}"
        );
    }
}

#[test]
fn the_tasks_of_a_host_taken_off_the_network_run_elsewhere() {
    let Some(env) = ssh_env_alone("a host taken off the network") else {
        return;
    };
    let link = env
        .var("TROOP_TEST_SSH_H1_LINK")
        .expect("h1's link")
        .to_string();
    // Whatever happens, h1 comes back for the other tests, its old connection closed, and
    // answering again before they run.
    struct Up<'a>(String, &'a TestEnv);
    impl Drop for Up<'_> {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["link", "set", &self.0, "up"])
                .status();
            let ssh = |args: &[&str]| {
                Command::new("ssh")
                    .args(["-F", self.1.ssh_config()])
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            let _ = ssh(&["-O", "exit", "h1"]);
            crate::util::wait_until(Duration::from_secs(30), || ssh(&["h1", "true"]));
        }
    }
    let _up = Up(link.clone(), &env);
    let dir = crate::util::temp_dir();
    let log = dir.path().join("log");
    let inputs: Vec<String> = (1..=30).map(|i| i.to_string()).collect();
    let mut args = vec![
        "-S",
        "2/h1,2/h2",
        "--heartbeat",
        "500ms/5s",
        "--retries",
        "1",
        "sleep 0.5; echo {} $(hostname)",
        ":::",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let mut command = over_ssh(&env, &log, &args);
    let out = dir.path().join("out");
    let err = dir.path().join("err");
    command
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = command.spawn().expect("start troop");
    // Once h1 has run something, take it off the network.
    let started = Instant::now();
    let mut h1_ran = false;
    while started.elapsed() < Duration::from_secs(30) {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.lines().any(|l| l.ends_with(" h1")) {
            h1_ran = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(h1_ran, "h1 ran a task first");
    let down = Command::new("ip")
        .args(["link", "set", &link, "down"])
        .status();
    assert!(down.is_ok_and(|s| s.success()), "took h1 down");
    let mut status = None;
    crate::util::wait_until(Duration::from_secs(60), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
    }
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "every task succeeded: {stderr}"
    );
    let mut seqs: Vec<u32> = stdout
        .lines()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=30).collect::<Vec<_>>(),
        "each task once: {stderr}"
    );
    assert!(stderr.contains("h1"), "the lost host is named: {stderr}");
    let rows = log_rows(&log);
    assert_eq!(rows.len(), 30);
    assert!(rows.iter().all(|r| r.2 == 0), "{rows:?}");
    // The tasks that ran after h1 went down ran on h2.
    let lost: Vec<u64> = stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("troop: task ")?
                .split_once(" lost")?
                .0
                .parse()
                .ok()
        })
        .collect();
    assert!(!lost.is_empty(), "h1 held tasks when it went: {stderr}");
    for seq in lost {
        let row = rows.iter().find(|r| r.0 == seq).unwrap();
        assert_eq!(row.1, "h2", "lost task {seq} ran again on h2: {rows:?}");
    }
}
