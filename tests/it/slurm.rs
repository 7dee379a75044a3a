//! Workers as Slurm job steps (`--launcher slurm`), against the real single-node Slurm that
//! `scripts/testenv/slurm.sh` starts: the same batch as a local run, workers that connect back
//! with the run's secret, and connections without it refused.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::testenv::{TestEnv, slurm_env};
use crate::util::{Ran, TROOP, run_command, troop, wait_until};

fn slurm_run(env: &TestEnv, args: &[&str]) -> Command {
    let mut command = Command::new(TROOP);
    command
        .args(["run", "--launcher", "slurm", "--remote-worker", TROOP])
        .args(args)
        .env(
            "SLURM_CONF",
            env.var("SLURM_CONF").expect("the Slurm node runs"),
        );
    command
}

#[test]
fn a_batch_through_slurm_matches_a_local_run() {
    let Some(env) = slurm_env("a batch through Slurm") else {
        return;
    };
    let dir = crate::util::temp_dir();
    let log = dir.path().join("log");
    let log_s = log.to_string_lossy().into_owned();
    let inputs: Vec<String> = (1..=12).map(|i| i.to_string()).collect();
    let script = "echo {} $(({} * 7)) ${SLURM_JOB_ID:+in-slurm}";
    let mut args = vec!["-k", "-j", "2", "--joblog", &log_s, script, ":::"];
    args.extend(inputs.iter().map(String::as_str));
    let ran: Ran = run_command(slurm_run(&env, &args), "");
    ran.assert_code(0);
    let expected: String = (1..=12)
        .map(|i| format!("{i} {} in-slurm\n", i * 7))
        .collect();
    assert_eq!(
        ran.stdout, expected,
        "every task ran in a job step, in order"
    );
    // The same batch here, less the job id.
    let mut local = vec!["run", "-k", "-j", "2", script, ":::"];
    local.extend(inputs.iter().map(String::as_str));
    let here = troop(&local, "");
    assert_eq!(ran.stdout.replace(" in-slurm", ""), here.stdout);
    let rows = std::fs::read_to_string(&log).unwrap();
    assert_eq!(rows.lines().count(), 13, "a row per task: {rows}");
    assert!(
        rows.lines()
            .skip(1)
            .all(|l| l.split('\t').nth(1) != Some(":")),
        "the Host column names the node: {rows}"
    );
}

#[test]
fn a_worker_without_the_runs_secret_is_refused_and_the_run_goes_on() {
    let Some(env) = slurm_env("a worker connection with a wrong secret") else {
        return;
    };
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut run = slurm_run(
        &env,
        &[
            "--listen",
            &listen,
            "-j",
            "1",
            "sleep 1; echo {}",
            ":::",
            "a",
            "b",
        ],
    );
    let dir = crate::util::temp_dir();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    run.stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = run.spawn().unwrap();
    // An impostor who knows the address but not the secret, claiming a slot.
    assert!(
        wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(
            &listen
        )
        .is_ok()),
        "the run listens on {listen}"
    );
    let impostor = Command::new(TROOP)
        .args(["--worker-connect", &listen, "[w1]"])
        .env("TROOP_WORKER_SECRET", "00".repeat(32))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ne!(
        impostor.status.code(),
        Some(0),
        "the impostor was turned away"
    );
    let mut status = None;
    wait_until(Duration::from_secs(60), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
    }
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "a\nb\n");
    assert!(
        stderr.contains("refused a worker connection"),
        "the refusal is reported: {stderr}"
    );
}

#[test]
fn a_slurm_worker_that_cannot_be_placed_is_a_clear_error() {
    let Some(env) = slurm_env("srun refusing the job") else {
        return;
    };
    let ran = run_command(
        slurm_run(
            &env,
            &["--slurm-args", "-p no-such-partition", "echo", ":::", "1"],
        ),
        "",
    );
    assert_eq!(ran.code, Some(255), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("no-such-partition") && ran.stderr.contains("srun"),
        "srun's reason and troop's: {}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "");
}

#[test]
fn slurm_options_outside_slurm_are_refused() {
    crate::util::check_refused(
        &["--slurm-args", "-p x", "echo", ":::", "1"],
        "--slurm-args",
    );
    crate::util::check_refused(&["--launcher", "ssh", "echo", ":::", "1"], "--launcher ssh");
    crate::util::check_refused(
        &[
            "--launcher",
            "slurm",
            "--mode",
            "thread",
            "echo",
            ":::",
            "1",
        ],
        "--mode thread",
    );
    crate::util::check_refused(
        &["--cpus-per-task", "0", "echo", ":::", "1"],
        "--cpus-per-task",
    );
}

#[test]
fn cpus_per_task_sizes_the_local_pool_and_mem_limits_each_command() {
    // As many workers as the cores hold at N cores each: with N at least the cores, one.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = cores.to_string();
    let ran = troop(
        &[
            "run",
            "--cpus-per-task",
            &n,
            "-k",
            "echo {%}",
            ":::",
            "a",
            "b",
            "c",
        ],
        "",
    );
    ran.assert_ok_with("1\n1\n1\n");
    // --mem here limits each command's address space, as --memory-limit does.
    let ran = troop(
        &[
            "run",
            "--mem",
            "64M",
            "python3 -c 'x = bytearray(200 << 20)' || echo refused",
            ":::",
            "1",
        ],
        "",
    );
    ran.assert_ok_with("refused 1\n");
}
