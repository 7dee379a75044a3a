//! The test environment for remote workers (`scripts/testenv`): the two ssh hosts and the Slurm
//! node that `scripts/test.sh` starts, loaded from the env file the scripts write and checked the
//! way troop's remote-worker tests use them.
//!
//! [`ssh_env`] and [`slurm_env`] give a test the environment, or skip it (see
//! [`skip`](crate::util::skip)) when the scripts did not run (not root, or no namespaces).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::util::{COMMAND_TIMEOUT, Ran, TROOP, require_root, skip};

/// The variables of `${TROOP_TESTENV:-/tmp/troop-testenv}/env`, or of the process environment
/// when that file is missing (scripts/test.sh exports them too).
#[derive(Debug)]
pub struct TestEnv {
    vars: BTreeMap<String, String>,
    /// Held while a test uses the ssh hosts: shared, or alone for a test that takes a host off
    /// the network.
    _hosts: Option<HostsGuard>,
}

/// A hold on the ssh hosts.
#[derive(Debug)]
#[allow(dead_code)]
enum HostsGuard {
    Shared(std::sync::RwLockReadGuard<'static, ()>),
    Alone(std::sync::RwLockWriteGuard<'static, ()>),
}

/// Tests that share the ssh hosts, against the one that takes a host down.
static HOSTS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Where the scripts keep their state.
pub fn state_dir() -> PathBuf {
    std::env::var_os("TROOP_TESTENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/troop-testenv"))
}

/// Reads `export KEY='value'` lines (what the scripts write) into a map.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            if key.starts_with('#') || key.is_empty() {
                return None;
            }
            let value = value
                .strip_prefix('\'')
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or(value);
            Some((key.to_string(), value.to_string()))
        })
        .collect()
}

impl TestEnv {
    /// The environment as the scripts left it.
    pub fn load() -> TestEnv {
        let vars = match std::fs::read_to_string(state_dir().join("env")) {
            Ok(text) => parse_env(&text),
            Err(_) => std::env::vars()
                .filter(|(k, _)| k.starts_with("TROOP_TEST_") || k == "SLURM_CONF")
                .collect(),
        };
        TestEnv { vars, _hosts: None }
    }

    /// One variable, such as `TROOP_TEST_SSH_H1_ADDR`.
    pub fn var(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// The ssh client configuration (`ssh -F` it).
    pub fn ssh_config(&self) -> &str {
        self.var("TROOP_TEST_SSH_CONFIG")
            .expect("the ssh hosts run")
    }

    /// The host names, `h1 h2`.
    pub fn ssh_hosts(&self) -> Vec<String> {
        self.var("TROOP_TEST_SSH_HOSTS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// A host's address inside its namespace.
    pub fn ssh_addr(&self, host: &str) -> &str {
        let key = format!("TROOP_TEST_SSH_{}_ADDR", host.to_uppercase());
        self.var(&key).expect("each host has an address")
    }

    /// `ssh -F CONFIG HOST COMMAND` (COMMAND is a shell command line run on the host).
    pub fn ssh(&self, host: &str, command: &str) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.args(["-F", self.ssh_config(), host, command]);
        ssh
    }

    /// `srun ARGS…` with `SLURM_CONF` pointing at the test cluster.
    pub fn srun(&self, args: &[&str]) -> Command {
        let mut srun = Command::new("srun");
        srun.args(args).env(
            "SLURM_CONF",
            self.var("SLURM_CONF").expect("the Slurm node runs"),
        );
        srun
    }
}

/// The environment when its ssh hosts run and the tests run as root; otherwise [`skip`]s `what` and returns `None`.
#[track_caller]
pub fn ssh_env(what: &str) -> Option<TestEnv> {
    ssh_env_held(what, || {
        HostsGuard::Shared(HOSTS.read().unwrap_or_else(|e| e.into_inner()))
    })
}

/// As [`ssh_env`], for a test that takes a host off the network: no other test uses the hosts
/// meanwhile.
#[track_caller]
pub fn ssh_env_alone(what: &str) -> Option<TestEnv> {
    ssh_env_held(what, || {
        HostsGuard::Alone(HOSTS.write().unwrap_or_else(|e| e.into_inner()))
    })
}

/// The ssh environment, holding the hosts as `hold` takes them; or [`skip`]s `what`.
#[track_caller]
fn ssh_env_held(what: &str, hold: impl FnOnce() -> HostsGuard) -> Option<TestEnv> {
    let env = TestEnv::load();
    if env.var("TROOP_TEST_SSH_CONFIG").is_some() && !env.ssh_hosts().is_empty() {
        let hold = hold();
        // The client key belongs to root, who logs in.
        return require_root(what).then_some(TestEnv {
            _hosts: Some(hold),
            ..env
        });
    }
    skip(
        what,
        "the ssh test hosts do not run (scripts/testenv/ssh-hosts.sh start, as root)",
    );
    None
}

/// The environment when its Slurm node runs; otherwise [`skip`]s `what` and returns `None`.
#[track_caller]
pub fn slurm_env(what: &str) -> Option<TestEnv> {
    let env = TestEnv::load();
    if env.var("SLURM_CONF").is_some() {
        return Some(env);
    }
    skip(
        what,
        "the Slurm test node does not run (scripts/testenv/slurm.sh start, as root)",
    );
    None
}

/// Runs `command` with no input, killing it after [`COMMAND_TIMEOUT`].
pub fn run(command: Command) -> Ran {
    assert_cmd::Command::from_std(command)
        .timeout(COMMAND_TIMEOUT)
        .output()
        .expect("run the command")
        .into()
}

#[test]
fn every_host_answers_ssh_in_batch_mode_with_its_own_name() {
    let Some(env) = ssh_env("logging in to the test hosts") else {
        return;
    };
    assert_eq!(env.ssh_hosts(), ["h1", "h2"]);
    for host in env.ssh_hosts() {
        run(env.ssh(&host, "true")).assert_code(0);
        // Each sshd has its own UTS namespace: `hostname` says where the command ran.
        run(env.ssh(&host, "hostname")).assert_ok_with(&format!("{host}\n"));
    }
}

#[test]
fn a_command_on_a_host_sees_that_hosts_address_only() {
    let Some(env) = ssh_env("the network namespace of each host") else {
        return;
    };
    for host in env.ssh_hosts() {
        let ran = run(env.ssh(&host, "ip -4 -o addr show"));
        ran.assert_code(0);
        for other in env.ssh_hosts() {
            let addr = format!("inet {}/24", env.ssh_addr(&other));
            assert_eq!(
                ran.stdout.contains(&addr),
                other == host,
                "{host} and {addr}: {}",
                ran.stdout
            );
        }
    }
}

#[test]
fn the_troop_binary_runs_through_ssh_on_every_host() {
    let Some(env) = ssh_env("troop on the test hosts") else {
        return;
    };
    for host in env.ssh_hosts() {
        run(env.ssh(&host, &format!("{TROOP} --version")))
            .assert_code(0)
            .stdout
            .starts_with("troop ")
            .then_some(())
            .expect("troop --version names troop");
        run(env.ssh(&host, &format!("{TROOP} run -k echo {{}} ::: a b"))).assert_ok_with("a\nb\n");
    }
}

#[test]
fn ssh_refuses_a_host_whose_key_it_does_not_know() {
    let Some(env) = ssh_env("host key checking") else {
        return;
    };
    // No ControlMaster (one would skip the check), and no known host keys: BatchMode and
    // StrictHostKeyChecking make ssh fail at once instead of asking.
    let mut ssh = Command::new("ssh");
    ssh.args(["-F", env.ssh_config(), "-S", "none", "-o"])
        .args(["UserKnownHostsFile=/dev/null", "h1", "true"]);
    let ran = run(ssh);
    ran.assert_code(255);
    assert!(
        ran.stderr.contains("Host key verification failed"),
        "{}",
        ran.stderr
    );
}

#[test]
fn srun_runs_a_step_on_the_node() {
    let Some(env) = slurm_env("srun on the test node") else {
        return;
    };
    run(env.srun(&["-N1", "-n1", "echo", "hi"])).assert_ok_with("hi\n");
    let ran = run(env.srun(&["-N1", "-n1", TROOP, "--version"]));
    ran.assert_code(0);
    assert!(ran.stdout.starts_with("troop "), "{}", ran.stdout);
}

#[test]
fn the_env_file_is_read_as_the_scripts_write_it() {
    let vars = parse_env(
        "# comment\nexport TROOP_TEST_SSH_HOSTS='h1 h2'\nexport SLURM_CONF='/x/slurm.conf'\n",
    );
    assert_eq!(vars.len(), 2);
    assert_eq!(vars["TROOP_TEST_SSH_HOSTS"], "h1 h2");
    assert_eq!(vars["SLURM_CONF"], "/x/slurm.conf");
}
