//! Progress for the steps that can take a while (docs/cli.md, its opening): a step still
//! running after a second shows that it is. On a terminal that is a spinner with the seconds
//! so far, on standard error, erased when the step ends; anywhere else it is one plain line,
//! so logs and pipes get no control characters.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How long a step runs before it is shown.
const QUIET: Duration = Duration::from_secs(1);

/// Runs `work`, showing `label` (say, "looking up DNS records") once it has taken a second.
pub async fn shown<T>(label: &str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => return out,
        () = tokio::time::sleep(QUIET) => {}
    }
    let mut err = std::io::stderr();
    if !err.is_terminal() {
        let _ = writeln!(err, "\u{2026} {label}");
        return work.await;
    }
    const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut frame = 0;
    loop {
        tokio::select! {
            out = &mut work => {
                // Back to the line's start, and the line erased.
                let _ = write!(err, "\r\x1b[2K");
                let _ = err.flush();
                return out;
            }
            _ = tick.tick() => {
                let _ = write!(err, "\r{} {label} ({}s)", FRAMES[frame % FRAMES.len()], started.elapsed().as_secs());
                let _ = err.flush();
                frame += 1;
            }
        }
    }
}
