//! The dashboard's keys: what each one asks of the run. Pure: a key and the model in, an
//! [`Action`] out.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::state::Model;
use crate::observe::Control;

/// What a key asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this to the supervisor.
    Send(Control),
    /// Move the selected row by this much.
    Select(isize),
    /// Ctrl-C: interrupt the run as a real Ctrl-C would.
    Interrupt,
}

/// The keys, as the dashboard's footer and the README list them.
pub const HELP: &str = "q stop  +/- workers  p pause  ↑/↓ select  k kill  ^C interrupt";

/// What `key` asks for, with `selected` the row under the cursor; `None` for a key that means
/// nothing here.
pub fn action(key: &KeyEvent, model: &Model, selected: usize) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(key.code, KeyCode::Char('c' | 'C')).then_some(Action::Interrupt);
    }
    let send = |c| Some(Action::Send(c));
    match key.code {
        KeyCode::Char('q') => send(Control::Stop),
        KeyCode::Char('+' | '=') => send(Control::Workers(model.target + 1)),
        KeyCode::Char('-' | '_') if model.target > 1 => send(Control::Workers(model.target - 1)),
        KeyCode::Char('p') => send(Control::Pause(!model.paused)),
        KeyCode::Char('k') => {
            let task = model.rows.get(selected)?.task.as_ref()?;
            send(Control::Kill(task.seq))
        }
        KeyCode::Up => Some(Action::Select(-1)),
        KeyCode::Down => Some(Action::Select(1)),
        _ => None,
    }
}

/// Records in the model what a sent control changes in it, so the next key builds on it.
pub fn note(model: &mut Model, control: &Control) {
    match *control {
        Control::Workers(n) => model.set_target(n),
        Control::Pause(on) => model.paused = on,
        // Stopping resumes a paused run, so that its running tasks can end.
        Control::Stop => {
            model.stopping = true;
            model.paused = false;
        }
        Control::Kill(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::config::Mode;
    use crate::observe::RunEvent;

    fn model() -> Model {
        let now = Instant::now();
        let mut m = Model::new(now);
        m.apply(
            &RunEvent::RunStarted {
                mode: Mode::Process,
                workers: 2,
                total: None,
            },
            now,
        );
        m.apply(
            &RunEvent::TaskStarted {
                seq: 9,
                slot: 1,
                pid: None,
                attempt: 1,
                command: None,
            },
            now,
        );
        m
    }

    fn press(code: KeyCode, m: &Model, selected: usize) -> Option<Action> {
        action(&KeyEvent::new(code, KeyModifiers::NONE), m, selected)
    }

    #[test]
    fn keys_become_controls() {
        let mut m = model();
        let send = |c| Some(Action::Send(c));
        assert_eq!(press(KeyCode::Char('q'), &m, 0), send(Control::Stop));
        assert_eq!(press(KeyCode::Char('+'), &m, 0), send(Control::Workers(3)));
        assert_eq!(press(KeyCode::Char('-'), &m, 0), send(Control::Workers(1)));
        assert_eq!(press(KeyCode::Char('p'), &m, 0), send(Control::Pause(true)));
        note(&mut m, &Control::Pause(true));
        assert_eq!(
            press(KeyCode::Char('p'), &m, 0),
            send(Control::Pause(false))
        );
        note(&mut m, &Control::Workers(1));
        assert_eq!(
            press(KeyCode::Char('-'), &m, 0),
            None,
            "never below one worker"
        );
        assert_eq!(press(KeyCode::Char('+'), &m, 0), send(Control::Workers(2)));
        assert_eq!(press(KeyCode::Char('x'), &m, 0), None);
        note(&mut m, &Control::Pause(true));
        note(&mut m, &Control::Stop);
        assert!(m.stopping && !m.paused, "a stop resumes");
    }

    #[test]
    fn k_kills_the_selected_rows_task_only() {
        let m = model();
        assert_eq!(press(KeyCode::Char('k'), &m, 0), None, "w1 runs nothing");
        assert_eq!(
            press(KeyCode::Char('k'), &m, 1),
            Some(Action::Send(Control::Kill(9)))
        );
        assert_eq!(press(KeyCode::Char('k'), &m, 5), None);
        assert_eq!(press(KeyCode::Up, &m, 1), Some(Action::Select(-1)));
        assert_eq!(press(KeyCode::Down, &m, 1), Some(Action::Select(1)));
    }

    #[test]
    fn ctrl_c_interrupts_and_key_releases_are_ignored() {
        let m = model();
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(&ctrl_c, &m, 0), Some(Action::Interrupt));
        let ctrl_q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(action(&ctrl_q, &m, 0), None);
        let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(action(&release, &m, 0), None);
    }
}
