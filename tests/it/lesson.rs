//! The concurrency lesson: gil and async modes give the same results as the others, and `troop
//! demo` and `troop bench` write well-formed JSON and charts that carry their figures.

use std::time::Duration;

use crate::util::{temp_dir, troop, troop_in, troop_within};

/// A quick demo on a busy machine measures disturbed runs twice.
const DEMO_TIMEOUT: Duration = Duration::from_secs(240);

const MODES: [&str; 4] = ["process", "thread", "gil", "async"];

/// Text of every `<text>` element of an SVG file.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| t.split('>').nth(1))
        .map(|t| t.split('<').next().unwrap_or("").trim().to_string())
        .collect()
}

#[test]
fn every_mode_gives_the_same_output_and_exit_code() {
    let args = |mode: &'static str| {
        vec![
            "run", "-j3", "-k", "--mode", mode, "--tag", "@primes", "{}", ":::", "1000", "20000",
            "7", "@x",
        ]
    };
    let reference = troop(&args("process"), "");
    assert_eq!(
        reference.code,
        Some(1),
        "one bad kernel argument: {}",
        reference.stderr
    );
    assert!(
        reference.stdout.contains("20000\t2262\n"),
        "{}",
        reference.stdout
    );
    for mode in MODES {
        let ran = troop(&args(mode), "");
        assert_eq!(ran.stdout, reference.stdout, "{mode}");
        assert_eq!(ran.code, reference.code, "{mode}");
    }
    let commands = [
        "run",
        "-j2",
        "-k",
        "--mode",
        "MODE",
        "sh -c 'echo {}; echo err{} >&2; exit {}'",
        ":::",
        "0",
        "3",
        "0",
    ];
    let reference = troop(
        &commands.map(|a| if a == "MODE" { "process" } else { a }),
        "",
    );
    assert_eq!(reference.code, Some(1));
    for mode in MODES {
        let ran = troop(&commands.map(|a| if a == "MODE" { mode } else { a }), "");
        assert_eq!(
            (ran.stdout.as_str(), ran.code),
            (reference.stdout.as_str(), reference.code),
            "{mode}"
        );
        assert_eq!(ran.stderr, reference.stderr, "{mode}");
    }
}

#[test]
fn async_mode_overlaps_sleep_commands_on_one_thread() {
    // Each task records when it started and ended; overlapping intervals prove concurrency
    // without asserting any duration.
    let dir = temp_dir();
    let script = "date +%s%N > {}.start; sleep 0.3; date +%s%N > {}.end";
    let ran = troop_in(
        Some(dir.path()),
        &[
            "run", "--mode", "async", "-j4", script, ":::", "a", "b", "c", "d",
        ],
        "",
    );
    ran.assert_code(0);
    let read = |name: String| -> u128 {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let starts: Vec<u128> = ["a", "b", "c", "d"]
        .iter()
        .map(|t| read(format!("{t}.start")))
        .collect();
    let ends: Vec<u128> = ["a", "b", "c", "d"]
        .iter()
        .map(|t| read(format!("{t}.end")))
        .collect();
    assert!(
        starts.iter().max() < ends.iter().min(),
        "the commands did not overlap: {starts:?} {ends:?}"
    );
}

#[test]
fn demo_json_has_every_field_and_the_chart_carries_the_speedups() {
    let dir = temp_dir();
    let svg = dir.path().join("demo.svg");
    let ran = troop_within(
        None,
        &[
            "demo",
            "--quick",
            "--json",
            "--cores",
            "2",
            "--svg",
            svg.to_str().unwrap(),
        ],
        DEMO_TIMEOUT,
    );
    ran.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&ran.stdout).expect("stdout is JSON");
    assert_eq!(v["cores"], 2);
    assert!(v["usable_cores"].as_u64().is_some_and(|n| n >= 1), "{v}");
    let batches = v["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 2);
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    for (batch, work) in batches.iter().zip(["cpu", "io"]) {
        // Each batch is one object with named fields, its runs inside.
        assert!(batch.is_object(), "{batch}");
        assert!(batch["name"].is_string() && batch["kernel"].as_str().unwrap().starts_with('@'));
        assert!(batch["tasks"].as_u64().unwrap() > 0);
        assert_eq!(batch["work"], work);
        let runs = batch["runs"].as_array().unwrap();
        let modes: Vec<&str> = runs.iter().map(|r| r["mode"].as_str().unwrap()).collect();
        assert_eq!(modes, ["serial", "thread", "gil", "async", "process"]);
        for r in runs {
            for field in [
                "workers",
                "wall_s",
                "speedup",
                "cpu_percent",
                "cpu_cores",
                "expected_cores",
                "measurements",
            ] {
                assert!(
                    r[field].as_f64().is_some_and(|x| x >= 0.0),
                    "{field} in {r}"
                );
            }
            assert!(r["disturbed"].is_boolean(), "{r}");
            let label = format!("{:.2}×", r["speedup"].as_f64().unwrap());
            assert!(texts.contains(&label), "the chart lacks {label}: {texts:?}");
        }
    }
    let reading = v["reading"].as_array().unwrap();
    assert_eq!(reading.len(), 2, "{v}");
    assert!(
        reading[0]
            .as_str()
            .unwrap()
            .starts_with("On the CPU-bound batch")
    );
    assert!(
        ran.stderr.contains("top -p "),
        "the process pool's pids are shown: {}",
        ran.stderr
    );
}

#[test]
fn demo_table_and_reading_with_one_worker_quote_the_measured_figures() {
    let dir = temp_dir();
    let ran = troop_within(
        Some(dir.path()),
        &["demo", "--quick", "--cores", "1"],
        DEMO_TIMEOUT,
    );
    ran.assert_code(0);
    for header in ["mode", "workers", "wall s", "speedup", "CPU use"] {
        assert!(ran.stdout.contains(header), "{header}: {}", ran.stdout);
    }
    assert!(dir.path().join("troop-demo.svg").exists());
    let reading: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with("On the "))
        .collect();
    assert_eq!(reading.len(), 2, "{}", ran.stdout);
    // With one worker no mode can beat serial, and the reading says so, whatever the load.
    assert!(
        reading[0].starts_with("On the CPU-bound batch, no mode can beat serial with 1 worker")
            || reading[0].contains("disturbed the serial run"),
        "{reading:?}"
    );
    assert!(
        !ran.stdout.contains("used the 1 workers") && !ran.stdout.contains("computed on 1"),
        "{}",
        ran.stdout
    );
    // Every figure quoted in the reading is one of the table's speedups.
    let table: Vec<String> = ran
        .stdout
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.ends_with('×'))
                .map(str::to_string)
        })
        .collect();
    for figure in reading
        .iter()
        .flat_map(|l| l.split(['(', ')', ' ']))
        .filter(|w| w.ends_with('×'))
    {
        assert!(
            table.iter().any(|t| t == figure),
            "{figure} is not in the table {table:?}"
        );
    }
}

#[test]
fn demo_refuses_an_unwritable_chart_before_running_a_batch() {
    let dir = temp_dir();
    let file = crate::util::write_file(dir.path(), "file", "");
    let svg = file.join("demo.svg");
    let ran = troop(&["demo", "--quick", "--svg", svg.to_str().unwrap()], "");
    assert_eq!(ran.code, Some(255), "{}", ran.stderr);
    assert_eq!(ran.stdout, "", "nothing ran");
    assert_eq!(
        ran.stderr,
        format!(
            "troop: cannot write the chart `{}`: Not a directory (os error 20)\n",
            svg.display()
        )
    );
    // A writable path that did not exist is not left behind by the check.
    let ran = troop(&["demo", "--cores", "0", "--svg", "fresh.svg"], "");
    assert_eq!(ran.code, Some(255));
    assert!(!dir.path().join("fresh.svg").exists());
}

#[test]
fn bench_json_csv_and_svg_are_well_formed() {
    let dir = temp_dir();
    let svg = dir.path().join("bench.svg");
    let common = [
        "bench",
        "--kernel",
        "sleep",
        "--arg",
        "20",
        "--modes",
        "thread,async",
        "--workers",
        "1,2",
        "--tasks",
        "4",
        "--repeat",
        "1",
    ];
    let mut json_args = common.to_vec();
    json_args.extend(["--json", "--svg", svg.to_str().unwrap()]);
    let ran = troop(&json_args, "");
    ran.assert_code(0);
    let cells: Vec<serde_json::Value> = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(cells.len(), 4);
    for c in &cells {
        for field in [
            "median_s",
            "min_s",
            "max_s",
            "speedup",
            "efficiency",
            "tasks_per_s",
            "us_per_task",
        ] {
            assert!(c[field].as_f64().is_some_and(|x| x > 0.0), "{field} in {c}");
        }
        assert!(
            c["min_s"].as_f64() <= c["median_s"].as_f64()
                && c["median_s"].as_f64() <= c["max_s"].as_f64()
        );
    }
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg") && svg_text.trim_end().ends_with("</svg>"));
    let texts = svg_texts(&svg_text);
    for c in &cells {
        let label = format!("{:.2}", c["speedup"].as_f64().unwrap());
        assert!(texts.contains(&label), "{label} not in {texts:?}");
    }
    let mut csv_args = common.to_vec();
    csv_args.push("--csv");
    let csv = troop(&csv_args, "");
    csv.assert_code(0);
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert!(lines[0].starts_with("mode,workers,chunksize,tasks,median_s"));
    assert_eq!(lines.len(), 5);
    assert!(
        lines[1..].iter().all(|l| l.split(',').count() == 11),
        "{lines:?}"
    );
}

#[test]
fn bench_dispatch_compares_chunk_sizes_in_each_mode() {
    let ran = troop(
        &[
            "bench",
            "--dispatch",
            "--tasks",
            "2000",
            "--repeat",
            "1",
            "--json",
        ],
        "",
    );
    ran.assert_code(0);
    let cells: Vec<serde_json::Value> = serde_json::from_str(&ran.stdout).unwrap();
    let cells: Vec<(String, String)> = cells
        .iter()
        .map(|c| {
            (
                c["mode"].as_str().unwrap().to_string(),
                c["chunksize"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for mode in ["process", "thread"] {
        for chunk in ["1", "auto"] {
            assert!(
                cells.contains(&(mode.to_string(), chunk.to_string())),
                "{cells:?}"
            );
        }
    }
}

#[test]
fn bad_bench_and_demo_options_are_clear_errors() {
    for (args, needle) in [
        (vec!["bench", "--workers", "0"], "--workers `0`"),
        (vec!["bench", "--modes", "fiber"], "`fiber`"),
        (vec!["demo", "--cores", "0"], "--cores"),
        (
            vec!["run", "--switch-interval", "fast", "@noop", ":::", "1"],
            "--switch-interval",
        ),
    ] {
        let ran = troop(&args, "");
        assert_eq!(ran.code, Some(255), "{args:?}");
        assert!(ran.stderr.contains(needle), "{args:?}: {}", ran.stderr);
        assert!(ran.stdout.is_empty());
    }
}
