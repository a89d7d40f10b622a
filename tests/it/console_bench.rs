//! Console cost figures (ignored by default; run with
//! `cargo test --release --test it console_bench:: -- --ignored --nocapture`):
//! - render time per frame of the Sync jobs and Dead letters views with 100,000 rows
//!   (target < 1 ms: only the visible window is formatted);
//! - bytes written to the terminal per second during a live sync at 80×24, through the
//!   runtime's own backend (crossterm wrapped in `QuietBackend`) and its frame cap (target
//!   < 20 KB/s);
//! - frames and bytes while idle (through the same backend, so a frame that changed no cell
//!   counts 0 bytes), and the CPU the real binary uses idle in a pty.
//!
//! They print figures rather than assert timings (no timing assertions in tests); the README
//! carries the numbers.

use crate::console_fixtures;

use console_fixtures::*;
use ratatui::Terminal;
use ratatui::backend::{CrosstermBackend, TestBackend};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use syncdeck::console::app::{Action, AppState, update};
use syncdeck::console::effect::Effect;
use syncdeck::console::runtime::QuietBackend;
use syncdeck::console::ui;
use syncdeck::engine::progress::{DocOutcome, Outcome, RateSample};
use syncdeck::model::{DeadLetter, SyncJob, Timestamp};

const ROWS: usize = 100_000;

fn many_jobs() -> Vec<SyncJob> {
    let base = jobs();
    (0..ROWS)
        .map(|i| {
            let mut j = base[i % base.len()].clone();
            j.id = format!("job-{i:06}");
            j.indexed_document_count = i as u64;
            j
        })
        .collect()
}

fn many_dead_letters() -> Vec<DeadLetter> {
    let base = dead_letters();
    (0..ROWS)
        .map(|i| {
            let mut d = base[i % base.len()].clone();
            d.id = i as i64 + 1;
            d.doc_id = format!("doc-{i:06}");
            d
        })
        .collect()
}

fn frame_time(state: &mut AppState, size: (u16, u16), frames: u32) -> Duration {
    let theme = theme("default");
    let mut terminal = Terminal::new(TestBackend::new(size.0, size.1)).unwrap();
    state.size = size;
    let start = Instant::now();
    for i in 0..frames {
        // Move the selection so every frame differs.
        let _ = update(
            state,
            if i % 2 == 0 {
                ch('j')
            } else {
                key(crossterm::event::KeyCode::PageDown)
            },
        );
        terminal.draw(|f| ui::draw(f, state, &theme)).unwrap();
    }
    start.elapsed() / frames
}

#[test]
#[ignore]
fn render_cost_with_100k_rows() {
    let mut s = loaded_state(false, (160, 48));
    let t = Instant::now();
    let _ = update(&mut s, Action::JobsLoaded(Ok(many_jobs())));
    let load_jobs = t.elapsed();
    let t = Instant::now();
    let _ = update(
        &mut s,
        Action::DeadLettersLoaded(Ok((many_dead_letters(), ROWS as u64))),
    );
    let load_dlq = t.elapsed();
    let _ = apply(&mut s, [ch('2')]);
    let jobs_80 = frame_time(&mut s, (80, 24), 300);
    let jobs_160 = frame_time(&mut s, (160, 48), 300);
    let _ = apply(&mut s, [ch('5')]);
    let dlq_80 = frame_time(&mut s, (80, 24), 300);
    let dlq_160 = frame_time(&mut s, (160, 48), 300);
    let t = Instant::now();
    let _ = apply(&mut s, [ch('/'), ch('9'), ch('9')]);
    let filter = t.elapsed() / 2;
    println!("console render cost, {ROWS} rows:");
    println!(
        "  sync jobs     80x24: {:>8.3} ms/frame   160x48: {:>8.3} ms/frame",
        ms(jobs_80),
        ms(jobs_160)
    );
    println!(
        "  dead letters  80x24: {:>8.3} ms/frame   160x48: {:>8.3} ms/frame",
        ms(dlq_80),
        ms(dlq_160)
    );
    println!(
        "  loading the rows (once per refresh): jobs {:.1} ms, dead letters {:.1} ms",
        ms(load_jobs),
        ms(load_dlq)
    );
    println!(
        "  filter keystroke over {ROWS} dead letters: {:.1} ms",
        ms(filter)
    );
    assert_eq!(s.dead_letters.table.all().len(), ROWS);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A writer that counts bytes.
#[derive(Clone, Default)]
struct Counter(Arc<Mutex<usize>>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        *self.0.lock().unwrap() += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Answers the refreshes a tick asked for as a healthy cluster would (the same data again),
/// so the data never turns stale and no "stale 12s" badge counts up during the measure.
fn answer_refreshes(state: &mut AppState, fx: &[Effect]) {
    for effect in fx {
        let action = match effect {
            Effect::LoadConnectors => {
                Action::ConnectorsLoaded(Ok(state.connectors.table.all().to_vec()))
            }
            Effect::LoadActiveJobs => {
                Action::ActiveJobsLoaded(Ok(state.live.active.value.clone().unwrap_or_default()))
            }
            Effect::LoadCluster => match state.cluster.value.clone() {
                Some(c) => Action::ClusterLoaded(Ok(c)),
                None => continue,
            },
            Effect::LoadKibanaStatus => match state.kibana.status.value.clone() {
                Some(k) => Action::KibanaStatusLoaded(Ok(k)),
                None => continue,
            },
            _ => continue,
        };
        let _ = update(state, action);
    }
}

/// Simulates `secs` seconds of the runtime: ticks every 250 ms, live polls as `update` asks,
/// frames only when dirty and at most every 100 ms. `live` makes the sync progress. The
/// terminal is the runtime's (crossterm behind `QuietBackend`), with a viewport of the
/// state's size rather than the size of whatever terminal runs the test.
fn simulate(state: &mut AppState, secs: u64, live: bool) -> (usize, u32) {
    let counter = Counter::default();
    let (w, h) = state.size;
    let mut terminal = Terminal::with_options(
        QuietBackend::new(CrosstermBackend::new(counter.clone())),
        ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, w, h)),
        },
    )
    .unwrap();
    let theme = theme("default");
    terminal.draw(|f| ui::draw(f, state, &theme)).unwrap();
    *counter.0.lock().unwrap() = 0;
    state.dirty = false;
    let mut snap = snapshot("job-live-0001", 4200);
    let mut last_draw = 0u64;
    let mut frames = 0;
    for step in 0..(secs * 1000 / 50) {
        let ms = step * 50;
        let now = Timestamp(now().0 + chrono::Duration::milliseconds(ms as i64));
        if ms % 250 == 0 {
            let fx = update(state, Action::Tick(now));
            answer_refreshes(state, &fx);
            if live && fx.contains(&Effect::PollLive) {
                // 400 docs/s: 200 documents per half second, a rate sample a second.
                let handled = snap.counters.indexed + 200;
                snap.counters.indexed = handled;
                snap.elapsed_ms += 500;
                for i in 0..200 {
                    snap.recent.remove(0);
                    snap.recent.push(DocOutcome {
                        id: format!("doc-{}", handled + i),
                        outcome: Outcome::Indexed,
                        bytes: 1100,
                        latency_ms: 14,
                        reason: None,
                    });
                }
                if ms % 1000 == 0 {
                    snap.rates.remove(0);
                    snap.rates.push(RateSample {
                        docs_per_sec: 400.0 + (ms % 7000) as f64 / 100.0,
                        bytes_per_sec: 440_000.0,
                    });
                }
                let _ = update(state, Action::LiveLoaded(vec![snap.clone()]));
            } else if !live && fx.contains(&Effect::PollLive) {
                let _ = update(state, Action::LiveLoaded(state.live.local.clone()));
            }
        }
        if state.dirty && ms >= last_draw + 100 {
            terminal.draw(|f| ui::draw(f, state, &theme)).unwrap();
            state.dirty = false;
            last_draw = ms;
            frames += 1;
        }
    }
    let bytes = *counter.0.lock().unwrap();
    (bytes, frames)
}

#[test]
#[ignore]
fn terminal_bytes_during_a_live_sync_at_80x24() {
    let mut s = loaded_state(false, (80, 24));
    let _ = apply(&mut s, [ch('3')]);
    let secs = 30;
    let (bytes, frames) = simulate(&mut s, secs, true);
    println!(
        "live sync at 80x24 over {secs} s: {frames} frames, {} bytes, {:.1} KB/s",
        bytes,
        bytes as f64 / secs as f64 / 1000.0
    );
    let mut idle = loaded_state(false, (80, 24));
    idle.live.local.clear();
    let (bytes, frames) = simulate(&mut idle, 60, false);
    println!(
        "idle on Connectors over 60 s: {frames} frames drawn, {bytes} bytes ({:.0} B/s; a frame writes only the cells that changed)",
        bytes as f64 / 60.0
    );
}

/// CPU seconds (user + system) of a process, from /proc.
#[cfg(target_os = "linux")]
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[cfg(target_os = "linux")]
#[test]
#[ignore]
fn idle_cpu_of_the_real_console() {
    use portable_pty::{CommandBuilder, PtySize, native_pty_system};
    let home = tempfile::tempdir().unwrap();
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 24,
            cols: 80,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_syncdeck"));
    cmd.env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("HOME", home.path());
    cmd.env("TERM", "xterm-256color");
    cmd.env("SYNCDECK_CONFIG", home.path().join("config.toml"));
    cmd.env("SYNCDECK_DATA_DIR", home.path().join("data"));
    cmd.env("SYNCDECK_STATE_DIR", home.path().join("state"));
    let mut child = pty.slave.spawn_command(cmd).unwrap();
    let mut reader = pty.master.try_clone_reader().unwrap();
    let total = Arc::new(Mutex::new(0usize));
    let t = total.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
            if n == 0 {
                break;
            }
            *t.lock().unwrap() += n;
        }
    });
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.process_id().unwrap();
    let (cpu0, bytes0, t0) = (
        cpu_secs(pid).unwrap(),
        *total.lock().unwrap(),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(10));
    let (cpu1, bytes1) = (cpu_secs(pid).unwrap(), *total.lock().unwrap());
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "real console idle on the embedded demo, 10 s: {:.2}% of one core, {:.0} bytes/s to the terminal",
        (cpu1 - cpu0) / wall * 100.0,
        (bytes1 - bytes0) as f64 / wall
    );
    let mut writer = pty.master.take_writer().unwrap();
    writer.write_all(b"q").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
}
