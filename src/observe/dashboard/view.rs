//! Draws the dashboard: a header of totals, a sparkline of throughput, a row per worker and the
//! last failures.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, TableState};

use super::keys::HELP;
use super::state::Model;
use super::stats::{Stats, Use, bytes};

/// Draws the whole screen; `selected` is the row under the cursor.
pub fn draw(frame: &mut Frame<'_>, model: &Model, stats: &Stats, selected: usize, now: Instant) {
    let failures = model.failures.len() as u16;
    let [header, spark, table, fails, help] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(4),
        Constraint::Min(3),
        Constraint::Length(if failures == 0 { 0 } else { failures + 2 }),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(model, stats, now)), header);
    let samples: Vec<u64> = model.samples.iter().copied().collect();
    let peak = samples.iter().copied().max().unwrap_or(0);
    frame.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(format!("tasks/s (peak {peak})")))
            .data(&samples[samples.len().saturating_sub(table.width as usize)..]),
        spark,
    );
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(workers(model, stats, now), table, &mut state);
    if failures > 0 {
        let lines: Vec<Line<'_>> = model
            .failures
            .iter()
            .rev()
            .map(|f| {
                Line::from(format!(
                    "#{} w{}  {}  {}",
                    f.seq,
                    f.slot + 1,
                    f.how,
                    f.command
                ))
            })
            .collect();
        frame.render_widget(
            Paragraph::new(lines).block(Block::bordered().title("last failures")),
            fails,
        );
    }
    frame.render_widget(Paragraph::new(HELP), help);
}

fn header_lines(model: &Model, stats: &Stats, now: Instant) -> Vec<Line<'static>> {
    let mode = model.mode.map_or("?", |m| m.name());
    let mut flags = String::new();
    if model.paused {
        flags.push_str("  PAUSED");
    }
    if model.stopping {
        flags.push_str("  STOPPING (no new tasks)");
    }
    if model.finished {
        flags.push_str("  FINISHED");
    }
    let total = model.total.map_or("?".into(), |t| t.to_string());
    let queued = model.queued().map_or("?".into(), |q| q.to_string());
    let eta = model.eta(now).map_or("?".into(), clock);
    let own = stats.get(Some(stats.own)).unwrap_or_default();
    vec![
        Line::from(format!(
            "troop dashboard: {mode} mode, {} workers, up {}{flags}",
            model.target,
            clock(now.duration_since(model.started)),
        ))
        .style(Style::new().add_modifier(Modifier::BOLD)),
        Line::from(format!(
            "done {}/{total}  failed {}  running {}  queued {queued}  {:.1} tasks/s  ETA {eta}",
            model.done,
            model.failed,
            model.running(),
            model.throughput(now),
        )),
        Line::from(format!(
            "troop cpu {:.0}%  rss {}  cores in use {:.1}",
            own.cpu,
            bytes(own.rss),
            stats.cores(),
        )),
    ]
}

fn workers<'a>(model: &'a Model, stats: &Stats, now: Instant) -> Table<'a> {
    let head = [
        "slot", "pid", "state", "task", "elapsed", "cpu%", "rss", "task cpu", "task rss", "done",
        "command",
    ];
    let rows = model.rows.iter().enumerate().map(|(i, row)| {
        let worker = stats.get(row.pid);
        let task = row.task.as_ref();
        let leader = task
            .and_then(|t| t.pgid)
            .and_then(|g| stats.get(Some(g as u32)));
        let cells: [String; 10] = [
            format!("w{}", i + 1),
            row.pid.map_or("-".into(), |p| p.to_string()),
            row.state.name().into(),
            task.map_or(String::new(), |t| format!("#{}", t.seq)),
            task.map_or(String::new(), |t| clock(now.duration_since(t.since))),
            cpu(worker),
            worker.map_or("-".into(), |u| bytes(u.rss)),
            cpu(leader),
            leader.map_or(String::new(), |u| bytes(u.rss)),
            row.done.to_string(),
        ];
        let command = task.map_or("", |t| t.command.as_str());
        Row::new(
            cells
                .into_iter()
                .map(Cell::from)
                .chain([Cell::from(command)]),
        )
    });
    let widths = [
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Min(10),
    ];
    Table::new(rows, widths)
        .header(Row::new(head).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title("workers"))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
}

fn cpu(reading: Option<Use>) -> String {
    reading.map_or(String::new(), |u| format!("{:.0}", u.cpu))
}

/// A duration as `12s`, `3m04s` or `1h02m`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{:.1}s", d.as_secs_f64()),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use troop_worker::protocol::{Outcome, Usage};

    use super::*;
    use crate::config::Mode;
    use crate::observe::RunEvent;

    #[test]
    fn the_screen_shows_totals_a_row_per_worker_and_the_last_failures() {
        let t = Instant::now();
        let mut m = Model::new(t);
        let events = [
            RunEvent::RunStarted {
                mode: Mode::Process,
                workers: 2,
                total: Some(3),
            },
            RunEvent::WorkerStarted { slot: 0, pid: 4242 },
            RunEvent::WorkerStarted { slot: 1, pid: 4343 },
            RunEvent::TaskStarted {
                seq: 1,
                slot: 1,
                pid: Some(4343),
                attempt: 1,
                command: Some(b"false"),
            },
            RunEvent::TaskFinished {
                seq: 1,
                slot: 1,
                pid: Some(4343),
                attempt: 1,
                outcome: &Outcome::Exited(3),
                usage: &Usage::default(),
                retry: false,
            },
            RunEvent::TaskStarted {
                seq: 2,
                slot: 0,
                pid: Some(4242),
                attempt: 1,
                command: Some(b"sleep 9"),
            },
        ];
        events.iter().for_each(|e| m.apply(e, t));
        let mut term = Terminal::new(TestBackend::new(100, 24)).unwrap();
        let stats = Stats::default();
        term.draw(|f| draw(f, &m, &stats, 0, t + Duration::from_secs(2)))
            .unwrap();
        let text: String = term
            .backend()
            .buffer()
            .content()
            .chunks(100)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>() + "\n")
            .collect();
        assert!(text.contains("process mode, 2 workers"), "{text}");
        assert!(
            text.contains("done 1/3  failed 1  running 1  queued 1"),
            "{text}"
        );
        let w1 = text.lines().find(|l| l.contains("│w1")).unwrap();
        for part in ["4242", "running", "#2", "2.0s", "sleep 9"] {
            assert!(w1.contains(part), "{part} not in {w1}");
        }
        let w2 = text.lines().find(|l| l.contains("│w2")).unwrap();
        assert!(w2.contains("4343") && w2.contains("idle"), "{w2}");
        assert!(text.contains("#1 w2  exit 3  false"), "{text}");
    }

    #[test]
    fn durations_read_as_a_clock() {
        assert_eq!(clock(Duration::from_millis(1500)), "1.5s");
        assert_eq!(clock(Duration::from_secs(184)), "3m04s");
        assert_eq!(clock(Duration::from_secs(3720)), "1h02m");
    }
}
