//! A global interpreter lock, as CPython's: for `--mode gil`.
//!
//! Worker threads must hold the lock while a kernel computes. A holder hands the lock over every
//! switch interval when another thread is waiting (a forced switch: it waits until someone else
//! has taken the lock before it queues again, so it cannot simply grab it back), and releases it
//! around blocking waits such as `@sleep` or running a command. So CPU-bound kernels take turns on
//! one core at a time, while waits overlap, exactly the behaviour that keeps Python threads from
//! speeding up CPU-bound work.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::kernel::{CancelHost, Flow, Host};

/// CPython's default switch interval (`sys.getswitchinterval()`).
pub const DEFAULT_SWITCH_INTERVAL: Duration = Duration::from_millis(5);

#[derive(Debug, Default)]
struct State {
    held: bool,
    waiting: usize,
    /// How many times the lock changed hands.
    switches: u64,
}

/// The lock itself, shared by every thread of a gil pool.
#[derive(Debug, Default)]
pub struct Gil {
    state: Mutex<State>,
    cond: Condvar,
}

impl Gil {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take<'a>(&'a self, mut s: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        s.waiting += 1;
        while s.held {
            s = self.cond.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.waiting -= 1;
        s.held = true;
        s.switches += 1;
        // A thread that handed the lock over waits to see it change hands.
        self.cond.notify_all();
        s
    }

    /// Blocks until this thread holds the lock.
    pub fn acquire(&self) {
        drop(self.take(self.lock()));
    }

    /// Lets the lock go.
    pub fn release(&self) {
        let mut s = self.lock();
        s.held = false;
        drop(s);
        self.cond.notify_all();
    }

    /// If another thread waits, hands the lock to it and queues for it again.
    pub fn switch(&self) {
        let mut s = self.lock();
        if s.waiting == 0 {
            return;
        }
        // Queue at once, so the next holder knows someone waits; but take the lock back only
        // after another thread has had it.
        let before = s.switches;
        s.held = false;
        s.waiting += 1;
        self.cond.notify_all();
        while s.switches == before || s.held {
            s = self.cond.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.waiting -= 1;
        s.held = true;
        s.switches += 1;
        drop(s);
        self.cond.notify_all();
    }

    /// How many times the lock changed hands so far.
    pub fn switches(&self) -> u64 {
        self.lock().switches
    }
}

/// The kernel host of a gil-mode worker thread.
#[derive(Debug)]
pub struct GilHost {
    pub gil: Arc<Gil>,
    pub interval: Duration,
    pub cancel: CancelHost,
    since: Instant,
}

impl GilHost {
    pub fn new(gil: Arc<Gil>, interval: Duration, cancel: CancelHost) -> Self {
        GilHost {
            gil,
            interval,
            cancel,
            since: Instant::now(),
        }
    }
}

impl Host for GilHost {
    fn enter(&mut self) {
        self.gil.acquire();
        self.since = Instant::now();
    }

    fn leave(&mut self) {
        self.gil.release();
    }

    fn checkpoint(&mut self) -> Flow {
        if self.since.elapsed() >= self.interval {
            self.gil.switch();
            self.since = Instant::now();
        }
        self.cancel.checkpoint()
    }

    fn sleep(&mut self, duration: Duration) -> Flow {
        self.gil.release();
        let flow = self.cancel.sleep(duration);
        self.gil.acquire();
        self.since = Instant::now();
        flow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::Kernel;

    fn host(gil: &Arc<Gil>) -> GilHost {
        GilHost::new(gil.clone(), Duration::from_millis(1), CancelHost::default())
    }

    #[test]
    fn two_computing_threads_take_turns() {
        let gil = Arc::new(Gil::default());
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let mut h = host(&gil);
                std::thread::spawn(move || {
                    h.enter();
                    let r = Kernel::Spin(60).run(&mut h, &mut Vec::new());
                    h.leave();
                    r
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert!(
            gil.switches() > 10,
            "the lock changed hands only {} times",
            gil.switches()
        );
    }

    #[test]
    fn only_one_thread_computes_at_a_time() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Probe<'a>(GilHost, &'a AtomicUsize, &'a AtomicUsize);
        impl Host for Probe<'_> {
            fn checkpoint(&mut self) -> Flow {
                let now = self.1.fetch_add(1, Ordering::SeqCst) + 1;
                self.2.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(50));
                self.1.fetch_sub(1, Ordering::SeqCst);
                self.0.checkpoint()
            }
        }
        let gil = Arc::new(Gil::default());
        let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..3 {
                let (inside, most) = (&inside, &most);
                let h = host(&gil);
                scope.spawn(move || {
                    let mut p = Probe(h, inside, most);
                    p.0.enter();
                    Kernel::Spin(40).run(&mut p, &mut Vec::new()).unwrap();
                    p.0.leave();
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn sleeping_releases_the_lock() {
        let gil = Arc::new(Gil::default());
        let mut a = host(&gil);
        a.enter();
        let t = std::thread::spawn({
            let gil = gil.clone();
            move || {
                let mut b = host(&gil);
                b.enter();
                b.leave();
            }
        });
        assert_eq!(a.sleep(Duration::from_millis(30)), Flow::Continue);
        t.join().unwrap();
        a.leave();
    }
}
