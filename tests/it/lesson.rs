//! The concurrency lesson: gil and async modes give the same results as the others, and `troop
//! demo` and `troop bench` write well-formed JSON and charts that carry their figures.

use crate::util::{temp_dir, troop, troop_in};

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
    let ran = troop(
        &[
            "demo",
            "--quick",
            "--json",
            "--cores",
            "2",
            "--svg",
            svg.to_str().unwrap(),
        ],
        "",
    );
    ran.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&ran.stdout).expect("stdout is JSON");
    assert_eq!(v["cores"], 2);
    let batches = v["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 2);
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    for batch in batches {
        let (info, rows) = (&batch[0], batch[1].as_array().unwrap());
        assert!(info["name"].is_string() && info["kernel"].as_str().unwrap().starts_with('@'));
        assert!(info["tasks"].as_u64().unwrap() > 0);
        let modes: Vec<&str> = rows.iter().map(|r| r["mode"].as_str().unwrap()).collect();
        assert_eq!(modes, ["serial", "thread", "gil", "async", "process"]);
        for r in rows {
            for field in ["workers", "wall_s", "speedup", "cpu_percent"] {
                assert!(
                    r[field].as_f64().is_some_and(|x| x >= 0.0),
                    "{field} in {r}"
                );
            }
            let label = format!("{:.2}×", r["speedup"].as_f64().unwrap());
            assert!(texts.contains(&label), "the chart lacks {label}: {texts:?}");
        }
    }
    assert!(
        ran.stderr.contains("top -p "),
        "the process pool's pids are shown: {}",
        ran.stderr
    );
}

#[test]
fn demo_table_and_reading_quote_the_measured_figures() {
    let dir = temp_dir();
    let ran = troop_in(Some(dir.path()), &["demo", "--quick", "--cores", "2"], "");
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
