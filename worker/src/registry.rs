//! Named task functions a program registers, so that its workers can run [`Job::Call`](crate::protocol::Job::Call).
//!
//! A Rust program that uses troop as a library registers its task functions by name, with serde
//! arguments and results, before it calls `troop::worker_main()`. Its worker processes are the
//! same program started again, so they register the same functions and find them by name here;
//! thread workers share the process's one registry.
//!
//! A call runs inside `catch_unwind`: a function that panics fails that call alone (its result is
//! `Err` with the panic's message and place), and the worker goes on. While a call runs, the
//! panic hook records the panic instead of printing it; any other panic is printed as before.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Once, PoisonError, RwLock};
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::protocol::{Captured, Outcome, TaskReport, Usage};

/// A registered function, type-erased: reads one argument from the front of `args`, calls the
/// function, and appends its postcard-encoded `Result<R, String>` to `out`. `Err` when the
/// argument does not decode.
pub type Entry = Arc<dyn Fn(&mut &[u8], &mut Vec<u8>) -> Result<(), String> + Send + Sync>;

static REGISTRY: RwLock<Option<HashMap<String, Entry>>> = RwLock::new(None);

thread_local! {
    /// True while a registered function runs on this thread.
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
    /// What the last panic inside a call said, and where.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Registers `f` under `name`, replacing a function registered under that name before.
pub fn register<A, R, F>(name: &str, f: F)
where
    A: DeserializeOwned,
    R: Serialize,
    F: Fn(A) -> R + Send + Sync + 'static,
{
    let entry: Entry = Arc::new(move |args: &mut &[u8], out: &mut Vec<u8>| {
        let (arg, rest) = postcard::take_from_bytes::<A>(args)
            .map_err(|e| format!("cannot decode an argument: {e}"))?;
        *args = rest;
        let result = guarded(|| f(arg));
        write(out, &result).map_err(|e| format!("cannot encode a result: {e}"))
    });
    register_entry(name, entry);
}

/// Registers a type-erased function under `name`.
pub fn register_entry(name: &str, entry: Entry) {
    quiet_panics_in_calls();
    let mut map = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    map.get_or_insert_with(HashMap::new)
        .insert(name.to_string(), entry);
}

/// The function registered under `name`.
pub fn lookup(name: &str) -> Option<Entry> {
    let map = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    map.as_ref()?.get(name).cloned()
}

/// Appends `value`, postcard-encoded, to `out`.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), postcard::Error> {
    postcard::to_io(value, out).map(|_| ())
}

/// Reads one postcard-encoded value from the front of `bytes`; returns it and the rest.
pub fn take<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, &[u8]), postcard::Error> {
    postcard::take_from_bytes(bytes)
}

/// Runs `f`; a panic becomes `Err` with its message and place.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    IN_CALL.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_CALL.with(|c| c.set(false));
    result.map_err(|payload| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| panic_text(payload.as_ref()))
    })
}

/// The message a panic payload carries.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".into()
    }
}

/// Installs (once) a panic hook that records panics inside calls instead of printing them.
fn quiet_panics_in_calls() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CALL.with(Cell::get) {
                let place = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let text = format!("{}{place}", panic_text(info.payload()));
                CAUGHT.with(|c| *c.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// Calls the function registered under `name` on each of the `count` arguments in `args`, and
/// returns their encoded results back to back.
pub fn call(name: &str, args: &[u8], count: u32) -> Result<Vec<u8>, String> {
    let entry = lookup(name).ok_or_else(|| {
        format!("no task function named `{name}` is registered in this program (register it before troop::worker_main)")
    })?;
    let mut rest = args;
    let mut out = Vec::with_capacity(args.len() + count as usize);
    for _ in 0..count {
        entry(&mut rest, &mut out)?;
    }
    Ok(out)
}

/// Runs task `id`, a [`crate::protocol::Job::Call`], and reports how it went.
pub fn execute(id: u64, name: &str, args: &[u8], count: u32) -> TaskReport {
    let started = Instant::now();
    let (outcome, results) = match call(name, args, count) {
        Ok(results) => (Outcome::Exited(0), results),
        Err(message) => (Outcome::BadKernelArgs(message), Vec::new()),
    };
    TaskReport {
        id,
        outcome,
        stdout: Captured::Bytes(results),
        stderr: Captured::EMPTY,
        usage: Usage {
            wall_us: started.elapsed().as_micros() as u64,
            ..Usage::default()
        },
        returned: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(values: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values {
            write(&mut out, v).unwrap();
        }
        out
    }

    fn results(mut bytes: &[u8]) -> Vec<Result<u64, String>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let (r, rest) = postcard::take_from_bytes(bytes).unwrap();
            out.push(r);
            bytes = rest;
        }
        out
    }

    #[test]
    fn a_chunk_of_calls_comes_back_in_order() {
        register("registry_test_square", |x: u64| x * x);
        let bytes = call("registry_test_square", &args(&[2, 3, 300]), 3).unwrap();
        assert_eq!(results(&bytes), vec![Ok(4), Ok(9), Ok(90_000)]);
    }

    #[test]
    fn a_panic_fails_its_call_alone() {
        register("registry_test_picky", |x: u64| {
            assert!(x != 2, "two is refused");
            x
        });
        let got = results(&call("registry_test_picky", &args(&[1, 2, 3]), 3).unwrap());
        assert_eq!(got[0], Ok(1));
        let err = got[1].as_ref().unwrap_err();
        assert!(
            err.contains("two is refused") && err.contains("registry.rs"),
            "{err}"
        );
        assert_eq!(got[2], Ok(3));
    }

    #[test]
    fn unknown_names_and_bad_arguments_fail_the_task() {
        let report = execute(7, "registry_test_nobody", &[], 1);
        assert!(
            matches!(report.outcome, Outcome::BadKernelArgs(ref m) if m.contains("registry_test_nobody"))
        );
        register("registry_test_string", |s: String| s.len());
        let err = call("registry_test_string", &[5, b'a'], 1).unwrap_err();
        assert!(err.contains("decode"), "{err}");
    }
}
