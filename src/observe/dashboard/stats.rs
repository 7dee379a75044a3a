//! CPU and memory of troop's own processes for the dashboard: the supervisor, its workers and
//! the process group leaders of running tasks, read with sysinfo refreshing only those pids; and
//! what the drawing thread itself costs.

use std::collections::HashMap;
use std::time::Instant;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::state::Model;

/// CPU (% of one core) and resident memory (bytes) of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Use {
    pub cpu: f32,
    pub rss: u64,
}

/// The latest readings, by pid.
#[derive(Debug)]
pub struct Stats {
    /// None where sysinfo cannot read processes here.
    system: Option<System>,
    pids: Vec<Pid>,
    pub own: u32,
    pub by_pid: HashMap<u32, Use>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            system: System::new().ok(),
            pids: Vec::new(),
            own: std::process::id(),
            by_pid: HashMap::new(),
        }
    }
}

impl Stats {
    /// Reads again every pid the model names (and our own): only their CPU and memory.
    pub fn refresh(&mut self, model: &Model) {
        self.pids.clear();
        self.pids.push(Pid::from_u32(self.own));
        for row in &model.rows {
            if let Some(pid) = row.pid {
                self.pids.push(Pid::from_u32(pid));
            }
            if let Some(g) = row.task.as_ref().and_then(|t| t.pgid) {
                self.pids.push(Pid::from_u32(g as u32));
            }
        }
        self.by_pid.clear();
        let Some(system) = self.system.as_mut() else {
            return;
        };
        // Ended tasks' leaders stay in sysinfo's table: start it afresh once they pile up.
        if system.processes().len() > 4 * self.pids.len() + 64 {
            *system = match System::new() {
                Ok(fresh) => fresh,
                Err(_) => return,
            };
        }
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&self.pids),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        for pid in &self.pids {
            if let Some(p) = system.process(*pid) {
                let reading = Use {
                    cpu: p.cpu_usage(),
                    rss: p.memory(),
                };
                self.by_pid.insert(pid.as_u32(), reading);
            }
        }
    }

    /// The reading of `pid`, if it was read.
    pub fn get(&self, pid: Option<u32>) -> Option<Use> {
        self.by_pid.get(&pid?).copied()
    }

    /// Cores busy with troop's processes: the sum of their CPU over 100.
    pub fn cores(&self) -> f32 {
        self.by_pid.values().map(|u| u.cpu).sum::<f32>() / 100.0
    }
}

/// CPU time (user + system) of the calling thread, in microseconds.
pub fn thread_cpu_us() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_THREAD, &mut usage) != 0 {
            return 0;
        }
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// What the drawing thread spent, for `TROOP_DASHBOARD_STATS=1`.
#[derive(Debug)]
pub struct Cost {
    start: (u64, Instant),
    /// CPU and time at the end of the first frame: the steady cost is measured from there.
    steady: Option<(u64, Instant)>,
    frames: u64,
    reading_us: u64,
    drawing_us: u64,
}

impl Cost {
    /// Starts counting now.
    pub fn start() -> Cost {
        Cost {
            start: (thread_cpu_us(), Instant::now()),
            steady: None,
            frames: 0,
            reading_us: 0,
            drawing_us: 0,
        }
    }

    /// A frame read processes from CPU time `a` to `b` and drew until `c`.
    pub fn frame(&mut self, a: u64, b: u64, c: u64) {
        self.frames += 1;
        self.reading_us += b - a;
        self.drawing_us += c - b;
        self.steady.get_or_insert((c, Instant::now()));
    }

    pub fn report(&self) -> String {
        let now = (thread_cpu_us(), Instant::now());
        let share = |(cpu, at): (u64, Instant)| {
            let secs = now.1.duration_since(at).as_secs_f64().max(1e-9);
            (now.0 - cpu) as f64 / 1e4 / secs
        };
        let ms = |us: u64| us as f64 / 1000.0;
        format!(
            "troop: dashboard: {} frames in {:.2}s, {:.1} ms CPU ({:.3}% of one core; \
             reading processes {:.1} ms, drawing {:.1} ms; after the first frame {:.3}% of one core)",
            self.frames,
            now.1.duration_since(self.start.1).as_secs_f64(),
            ms(now.0 - self.start.0),
            share(self.start),
            ms(self.reading_us),
            ms(self.drawing_us),
            self.steady.map_or(0.0, share),
        )
    }
}

/// Bytes as a short human figure: `812K`, `12.3M`, `1.5G`.
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let n = n as f64;
    if n < K * K {
        format!("{:.0}K", n / K)
    } else if n < K * K * K {
        format!("{:.1}M", n / K / K)
    } else {
        format!("{:.1}G", n / K / K / K)
    }
}
