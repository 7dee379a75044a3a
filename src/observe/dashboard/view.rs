//! Draws the dashboard: a header of totals, a sparkline of throughput, a row per worker and the
//! last failures.

use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Sparkline};

use super::keys::HELP;
use super::state::Model;
use super::stats::{Stats, Use, bytes};

/// Draws the whole screen; `selected` is the row under the cursor. The areas are cut by hand
/// (no layout solver runs per frame: drawing stays cheap).
pub fn draw(frame: &mut Frame<'_>, model: &Model, stats: &Stats, selected: usize, now: Instant) {
    let area = frame.area();
    let failures = model.failures.len() as u16;
    let fails_height = if failures == 0 { 0 } else { failures + 2 };
    let mut y = area.y;
    let mut take = |h: u16| {
        let h = h.min(area.bottom().saturating_sub(y));
        let r = Rect::new(area.x, y, area.width, h);
        y += h;
        r
    };
    let header = take(3);
    let spark = take(4);
    let table_height = area.height.saturating_sub(3 + 4 + fails_height + 1).max(3);
    let table = take(table_height);
    let fails = take(fails_height);
    let help = take(1);
    frame.render_widget(Paragraph::new(header_lines(model, stats, now)), header);
    let samples: Vec<u64> = model.samples.iter().copied().collect();
    let peak = samples.iter().copied().max().unwrap_or(0);
    let shown = samples
        .len()
        .saturating_sub(spark.width.saturating_sub(2) as usize);
    frame.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(format!("tasks/s (peak {peak})")))
            .data(&samples[shown..]),
        spark,
    );
    let block = Block::bordered().title("workers");
    let inner = block.inner(table);
    frame.render_widget(block, table);
    frame.render_widget(
        Paragraph::new(workers(model, stats, selected, inner.height, now)),
        inner,
    );
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

/// The workers' table as lines: a head, then as many rows as fit, scrolled to keep the
/// selected one in view.
fn workers(
    model: &Model,
    stats: &Stats,
    selected: usize,
    height: u16,
    now: Instant,
) -> Vec<Line<'static>> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Line::from(format!(
            "{:<4} {:<10} {:<8} {:<8} {:<7} {:<8} {:>5} {:>7} {:>8} {:>8} {:>6}  command",
            "slot",
            "host",
            "pid",
            "state",
            "task",
            "elapsed",
            "cpu%",
            "rss",
            "task cpu",
            "task rss",
            "done"
        ))
        .style(bold),
    ];
    let room = (height as usize).saturating_sub(1).max(1);
    let first = (selected + 1).saturating_sub(room);
    for (i, row) in model.rows.iter().enumerate().skip(first).take(room) {
        // A remote worker's pid is another machine's: this one has nothing to say of it.
        let local = row.host.is_none();
        let worker = stats.get(row.pid.filter(|_| local));
        let task = row.task.as_ref();
        let leader = task
            .and_then(|t| t.pgid)
            .and_then(|g| stats.get(Some(g as u32).filter(|_| local)));
        let text = format!(
            "{:<4} {:<10} {:<8} {:<8} {:<7} {:<8} {:>5} {:>7} {:>8} {:>8} {:>6}  {}",
            format!("w{}", i + 1),
            row.host
                .as_deref()
                .map_or(":", |h| h.get(..10).unwrap_or(h)),
            row.pid.map_or("-".into(), |p| p.to_string()),
            row.state.name(),
            task.map_or(String::new(), |t| format!("#{}", t.seq)),
            task.map_or(String::new(), |t| clock(now.duration_since(t.since))),
            cpu(worker),
            worker.map_or("-".into(), |u| bytes(u.rss)),
            cpu(leader),
            leader.map_or(String::new(), |u| bytes(u.rss)),
            row.done,
            task.map_or("", |t| t.command.as_str()),
        );
        let line = Line::from(text);
        lines.push(if i == selected {
            line.style(Style::new().add_modifier(Modifier::REVERSED))
        } else {
            line
        });
    }
    lines
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
            RunEvent::WorkerStarted {
                slot: 0,
                pid: 4242,
                host: ":",
            },
            RunEvent::WorkerStarted {
                slot: 1,
                pid: 4343,
                host: "alice@h1",
            },
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
            text.contains("w1   :          4242") && text.contains("w2   alice@h1   4343"),
            "each row names its host: {text}"
        );
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
