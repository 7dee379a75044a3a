//! The hosts a run's workers go to (`-S/--sshlogin`, `--slf/--sshloginfile`), in GNU parallel's
//! syntax, and which worker slot runs on which host.
//!
//! An sshlogin is `[N/][user@]host[:port]`, or `:` for this machine. `N/` sets the number of
//! workers on that host; without it, `-j` applies to every host. Several sshlogins are separated
//! by commas, or given one per line in a file, where blank lines and `#` comments are skipped.

use std::path::Path;

/// Where a worker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// This machine (`:`), with no ssh.
    Local,
    /// Another host, through ssh.
    Ssh {
        /// `user@host` or `host`, as ssh takes it.
        target: String,
        port: Option<u16>,
    },
}

/// One sshlogin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshLogin {
    /// Workers on this host (`N/`), if given.
    pub jobs: Option<usize>,
    pub login: Login,
    /// The sshlogin as given, less `N/`: the job log's Host column.
    pub name: String,
}

impl SshLogin {
    /// Parses one sshlogin.
    pub fn parse(text: &str) -> Result<SshLogin, String> {
        let text = text.trim();
        let bad = |why: &str| format!("sshlogin `{text}`: {why}");
        let (jobs, login) = match text.split_once('/') {
            Some((n, rest)) => match n.parse::<usize>() {
                Ok(n) if n >= 1 => (Some(n), rest),
                _ => return Err(bad("the number of workers before `/` must be at least 1")),
            },
            None => (None, text),
        };
        if login == ":" {
            return Ok(SshLogin {
                jobs,
                login: Login::Local,
                name: ":".into(),
            });
        }
        if login.is_empty() || login.chars().any(char::is_whitespace) {
            return Err(bad("give [N/][user@]host[:port], or `:` for this machine"));
        }
        let (target, port) = match login.rsplit_once(':') {
            Some((target, port)) => match port.parse::<u16>() {
                Ok(p) if p >= 1 => (target, Some(p)),
                _ => return Err(bad("the port after `:` must be a number from 1 to 65535")),
            },
            None => (login, None),
        };
        let host = target.rsplit_once('@').map_or(target, |(_, h)| h);
        if host.is_empty() || target.starts_with('-') {
            return Err(bad("the host name is missing or starts with `-`"));
        }
        Ok(SshLogin {
            jobs,
            login: Login::Ssh {
                target: target.to_string(),
                port,
            },
            name: login.to_string(),
        })
    }

    /// Parses a comma-separated list.
    pub fn parse_list(text: &str) -> Result<Vec<SshLogin>, String> {
        text.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(SshLogin::parse)
            .collect()
    }

    /// Reads an sshlogin file: one per line, with blank lines and `#` comments skipped.
    pub fn read_file(path: &Path) -> Result<Vec<SshLogin>, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--sshloginfile {}: {e}", path.display()))?;
        let mut logins = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let login = SshLogin::parse(line)
                .map_err(|e| format!("--sshloginfile {} line {}: {e}", path.display(), n + 1))?;
            logins.push(login);
        }
        Ok(logins)
    }
}

/// Which host each worker slot runs on: the hosts in order, each taking its number of slots.
/// A slot past the end (the pool grew, a replaced worker) wraps around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    hosts: Vec<SshLogin>,
    /// For each slot, the index of its host.
    slots: Vec<usize>,
}

impl Placement {
    /// Places `jobs` workers on each host that does not say its own number.
    pub fn new(hosts: Vec<SshLogin>, jobs: usize) -> Placement {
        let mut slots = Vec::new();
        for (i, host) in hosts.iter().enumerate() {
            slots.extend(std::iter::repeat_n(i, host.jobs.unwrap_or(jobs).max(1)));
        }
        Placement { hosts, slots }
    }

    /// The number of workers over every host.
    pub fn total(&self) -> usize {
        self.slots.len()
    }

    /// The host of slot `slot`.
    pub fn host(&self, slot: u32) -> &SshLogin {
        let i = self.slots[slot as usize % self.slots.len().max(1)];
        &self.hosts[i]
    }

    /// The index of slot `slot`'s host among the hosts.
    pub fn host_index(&self, slot: u32) -> usize {
        self.slots[slot as usize % self.slots.len().max(1)]
    }

    pub fn hosts(&self) -> &[SshLogin] {
        &self.hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh(target: &str, port: Option<u16>) -> Login {
        Login::Ssh {
            target: target.into(),
            port,
        }
    }

    #[test]
    fn sshlogins_parse_as_gnu_parallel_writes_them() {
        let l = SshLogin::parse("4/alice@h1:2222").unwrap();
        assert_eq!(l.jobs, Some(4));
        assert_eq!(l.login, ssh("alice@h1", Some(2222)));
        assert_eq!(l.name, "alice@h1:2222");
        assert_eq!(SshLogin::parse("h2").unwrap().login, ssh("h2", None));
        assert_eq!(SshLogin::parse(":").unwrap().login, Login::Local);
        assert_eq!(SshLogin::parse("2/:").unwrap().jobs, Some(2));
        let list = SshLogin::parse_list("h1,2/h2,:").unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[1].jobs, Some(2));
    }

    #[test]
    fn bad_sshlogins_say_what_is_wrong() {
        for (bad, why) in [
            ("0/h1", "at least 1"),
            ("x/h1", "at least 1"),
            ("h1:0", "port"),
            ("h1:http", "port"),
            ("-oProxyCommand=x", "starts with `-`"),
            ("user@", "missing"),
            ("two words", "[N/]"),
        ] {
            let e = SshLogin::parse(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn a_login_file_skips_comments_and_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("slf");
        std::fs::write(&path, "# hosts\nh1\n\n  2/h2  \n").unwrap();
        let hosts = SshLogin::read_file(&path).unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[1].jobs, Some(2));
        std::fs::write(&path, "h1\nh2:99999\n").unwrap();
        let e = SshLogin::read_file(&path).unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn slots_go_to_hosts_in_order_with_their_own_numbers() {
        let hosts = SshLogin::parse_list("h1,3/h2,:").unwrap();
        let p = Placement::new(hosts, 2);
        assert_eq!(p.total(), 7);
        let names: Vec<&str> = (0..8).map(|s| p.host(s).name.as_str()).collect();
        assert_eq!(names, ["h1", "h1", "h2", "h2", "h2", ":", ":", "h1"]);
    }
}
