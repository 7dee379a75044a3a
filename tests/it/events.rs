//! The event stream (`--events FILE|-`): every line follows docs/events.schema.json, every task
//! ends with exactly one `task_finished` (retries and `--resume` included), pids agree with
//! `worker_started`, a follower sees events while the run goes, and a stream that cannot be
//! created or written is handled.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::util::{Background, temp_dir, troop, troop_in, wait_until, write_file};

const MODES: [&str; 2] = ["process", "thread"];

/// The schema of the stream, checked against its own meta-schema.
fn validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.schema.json");
    let text = std::fs::read_to_string(&path).expect("read docs/events.schema.json");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft202012::meta::validate(&schema).expect("a valid 2020-12 schema");
    jsonschema::validator_for(&schema).expect("compile the schema")
}

/// Parses a stream, checking each line against the schema and the rules every stream keeps:
/// `run_started` first, `run_finished` last, one `task_finished` per task, and each task's
/// worker pid the one its worker said it had.
fn check_stream(text: &str) -> Vec<Value> {
    let validator = validator();
    let events: Vec<Value> = text
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if let Err(e) = validator.validate(&v) {
                panic!("{line}\ndoes not follow the schema: {e}");
            }
            v
        })
        .collect();
    assert_eq!(
        events.first().map(|e| &e["event"]),
        Some(&"run_started".into())
    );
    assert_eq!(
        events.last().map(|e| &e["event"]),
        Some(&"run_finished".into())
    );
    let mut finished: BTreeMap<u64, usize> = BTreeMap::new();
    let mut pids: HashMap<u64, Vec<u64>> = HashMap::new();
    for e in &events {
        match e["event"].as_str().unwrap() {
            "worker_started" => pids
                .entry(e["worker"].as_u64().unwrap())
                .or_default()
                .push(e["pid"].as_u64().unwrap()),
            "task_finished" => *finished.entry(e["seq"].as_u64().unwrap()).or_default() += 1,
            _ => {}
        }
    }
    for e in &events {
        let name = e["event"].as_str().unwrap();
        if name.starts_with("task_") && e["status"] != "skipped" {
            let worker = e["worker"].as_u64().unwrap();
            let known = pids.get(&worker).cloned().unwrap_or_default();
            assert!(
                known.contains(&e["pid"].as_u64().unwrap()),
                "{e}: pid not among worker {worker}'s {known:?}"
            );
        }
    }
    assert!(
        finished.values().all(|&n| n == 1),
        "a task with more than one task_finished: {finished:?}"
    );
    events
}

fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// Fails the first time it runs with `b`, and always with `x`.
const FLAKY: &str = "if [ \"$1\" = x ]; then exit 5; fi\n\
                     if [ \"$1\" = b ] && [ ! -e marker ]; then touch marker; exit 3; fi\n\
                     echo \"$1\"\n";

#[test]
fn every_line_of_a_run_with_retries_follows_the_schema() {
    for mode in MODES {
        let dir = temp_dir();
        write_file(dir.path(), "flaky.sh", FLAKY);
        let ran = troop_in(
            Some(dir.path()),
            &[
                "run",
                "--mode",
                mode,
                "-j2",
                "--retries",
                "2",
                "--events",
                "ev.jsonl",
                "sh",
                "flaky.sh",
                ":::",
                "a",
                "b",
                "c",
                "x",
            ],
            "",
        );
        ran.assert_code(1);
        let text = std::fs::read_to_string(dir.path().join("ev.jsonl")).expect("the events");
        let events = check_stream(&text);
        let started = &named(&events, "run_started")[0];
        assert_eq!(
            (started["mode"].as_str(), started["workers"].as_u64()),
            (Some(mode), Some(2))
        );
        assert!(
            started["options"]
                .as_array()
                .unwrap()
                .contains(&"--retries".into())
        );
        let finished = named(&events, "task_finished");
        let seqs: Vec<u64> = {
            let mut s: Vec<u64> = finished
                .iter()
                .map(|e| e["seq"].as_u64().unwrap())
                .collect();
            s.sort();
            s
        };
        assert_eq!(seqs, [1, 2, 3, 4], "{mode}: {text}");
        let end = |seq: u64| *finished.iter().find(|e| e["seq"] == seq).unwrap();
        assert_eq!(
            (end(2)["status"].as_str(), end(2)["attempt"].as_u64()),
            (Some("ok"), Some(2))
        );
        assert_eq!(
            (end(4)["status"].as_str(), end(4)["exit"].as_i64()),
            (Some("failed"), Some(5))
        );
        assert_eq!(end(4)["attempt"], 3);
        let retried = named(&events, "task_retried");
        let retried_of = |seq: u64| -> Vec<(u64, i64)> {
            retried
                .iter()
                .filter(|e| e["seq"] == seq)
                .map(|e| (e["attempt"].as_u64().unwrap(), e["exit"].as_i64().unwrap()))
                .collect()
        };
        assert_eq!(retried_of(2), [(1, 3)], "{mode}: {text}");
        assert_eq!(retried_of(4), [(1, 5), (2, 5)], "{mode}: {text}");
        let attempts_of_2: Vec<u64> = named(&events, "task_started")
            .iter()
            .filter(|e| e["seq"] == 2)
            .map(|e| e["attempt"].as_u64().unwrap())
            .collect();
        assert_eq!(attempts_of_2, [1, 2]);
        assert!(
            named(&events, "task_started")
                .iter()
                .all(|e| e["command"].as_str().unwrap().starts_with("sh flaky.sh "))
        );
        let last = events.last().unwrap();
        assert_eq!(
            [
                &last["tasks"],
                &last["failed"],
                &last["retries"],
                &last["exit"]
            ],
            [4, 1, 3, 1],
            "{mode}: {last}"
        );
        let exited = named(&events, "worker_exited");
        assert_eq!(exited.len(), 2, "{mode}: {text}");
        assert!(exited.iter().all(|e| e["lost"] == false));
    }
}

#[test]
fn a_resumed_run_finishes_every_task_once_skipped_ones_included() {
    for mode in MODES {
        let dir = temp_dir();
        troop_in(
            Some(dir.path()),
            &[
                "run", "--mode", mode, "--joblog", "log", "echo", ":::", "1", "2", "3",
            ],
            "",
        )
        .assert_code(0);
        let ran = troop_in(
            Some(dir.path()),
            &[
                "run", "--mode", mode, "--resume", "--joblog", "log", "--events", "ev.jsonl",
                "echo", ":::", "1", "2", "3", "4", "5",
            ],
            "",
        );
        ran.assert_code(0);
        let text = std::fs::read_to_string(dir.path().join("ev.jsonl")).expect("the events");
        let events = check_stream(&text);
        let mut status: Vec<(u64, &str)> = named(&events, "task_finished")
            .iter()
            .map(|e| (e["seq"].as_u64().unwrap(), e["status"].as_str().unwrap()))
            .collect();
        status.sort();
        assert_eq!(
            status,
            [
                (1, "skipped"),
                (2, "skipped"),
                (3, "skipped"),
                (4, "ok"),
                (5, "ok")
            ],
            "{mode}: {text}"
        );
        let last = events.last().unwrap();
        assert_eq!([&last["tasks"], &last["skipped"]], [2, 3], "{mode}: {last}");
    }
}

#[test]
fn events_on_stdout_share_it_with_task_output_in_whole_lines() {
    let args: Vec<String> = (1..=200).map(|n| format!("line{n}")).collect();
    let mut argv = vec!["run", "-j4", "--events", "-", "echo", ":::"];
    argv.extend(args.iter().map(String::as_str));
    let ran = troop(&argv, "");
    ran.assert_code(0);
    let (json, output): (Vec<&str>, Vec<&str>) =
        ran.stdout.lines().partition(|l| l.starts_with('{'));
    let mut output = output;
    output.sort_by_key(|l| l[4..].parse::<u32>().unwrap_or(0));
    assert_eq!(output, args, "task output lines are whole");
    let events = check_stream(&json.join("\n"));
    assert_eq!(named(&events, "task_finished").len(), 200);
}

#[test]
fn an_events_file_that_cannot_be_created_is_refused_before_any_task() {
    let dir = temp_dir();
    let ran = troop_in(
        Some(dir.path()),
        &[
            "run",
            "--events",
            "no/such/dir/ev.jsonl",
            "touch",
            ":::",
            "ran",
        ],
        "",
    );
    ran.assert_code(255);
    assert!(
        ran.stderr.contains("--events no/such/dir/ev.jsonl"),
        "{}",
        ran.stderr
    );
    assert!(!dir.path().join("ran").exists(), "a task ran");
}

#[test]
fn a_stream_that_cannot_be_written_is_said_once_and_the_run_goes_on() {
    for mode in MODES {
        let values: Vec<String> = (1..=50).map(|n| n.to_string()).collect();
        let mut argv = vec![
            "run",
            "--mode",
            mode,
            "-j2",
            "--events",
            "/dev/full",
            "echo",
            ":::",
        ];
        argv.extend(values.iter().map(String::as_str));
        let ran = troop(&argv, "");
        ran.assert_code(0);
        assert_eq!(ran.stdout.lines().count(), 50);
        assert_eq!(
            ran.stderr.matches("--events /dev/full").count(),
            1,
            "{mode}: {}",
            ran.stderr
        );
        assert!(ran.stderr.contains("No space left"), "{}", ran.stderr);
    }
}

#[test]
fn a_follower_sees_a_task_start_while_the_run_goes() {
    for mode in MODES {
        let dir = temp_dir();
        write_file(
            dir.path(),
            "wait.sh",
            "while [ ! -e go ]; do sleep 0.02; done\necho \"$1\"\n",
        );
        let mut run = Background::start_in(
            &[
                "run", "--mode", mode, "--events", "ev.jsonl", "sh", "wait.sh", ":::", "one",
            ],
            dir.path(),
        );
        let events = dir.path().join("ev.jsonl");
        let seen = wait_until(Duration::from_secs(20), || {
            std::fs::read_to_string(&events).is_ok_and(|t| t.contains("\"task_started\""))
        });
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        assert!(
            !run.exited(),
            "{mode}: the run ended before the task was let go"
        );
        assert!(
            seen,
            "{mode}: no task_started while the task runs: {text:?}"
        );
        assert!(!text.contains("run_finished"));
        std::fs::write(dir.path().join("go"), "").unwrap();
        let status = run.wait_for(Duration::from_secs(20)).expect("troop ends");
        assert_eq!(status.code(), Some(0), "{}", run.stderr());
        check_stream(&std::fs::read_to_string(&events).unwrap());
    }
}

/// Batched tasks (many per message to a worker) each have one start and one end, in both
/// modes, and the start names the command.
#[test]
fn every_batched_task_has_one_start_and_one_end() {
    for mode in ["process", "thread"] {
        let dir = crate::util::temp_dir();
        let path = dir.path().join("events.jsonl");
        let mut argv = vec![
            "run",
            "--mode",
            mode,
            "-j2",
            "--chunksize",
            "50",
            "--events",
            path.to_str().unwrap(),
            "@noop",
            ":::",
        ];
        let inputs: Vec<String> = (1..=1000).map(|n| n.to_string()).collect();
        argv.extend(inputs.iter().map(String::as_str));
        troop(&argv, "").assert_code(0);
        let events = check_stream(&std::fs::read_to_string(&path).unwrap());
        for name in ["task_started", "task_finished"] {
            let mut seqs: Vec<u64> = named(&events, name)
                .iter()
                .map(|e| e["seq"].as_u64().unwrap())
                .collect();
            seqs.sort_unstable();
            assert_eq!(seqs, (1..=1000).collect::<Vec<u64>>(), "{mode}: {name}");
        }
        let first = named(&events, "task_started")[0];
        assert!(
            first["command"]
                .as_str()
                .is_some_and(|c| c.starts_with("@noop")),
            "{mode}: {first}"
        );
    }
}
