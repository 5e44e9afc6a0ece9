//! The core logs through `tracing`; at the edge every event becomes one `console.log` line
//! (what `wrangler dev` prints and `wrangler tail` streams), so the console mailer's links can
//! be scraped from the worker's output exactly as from the native server's stdout.

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

/// Collects one formatted event and hands it to `console.log` when tracing drops it.
pub struct ConsoleLine(Vec<u8>);

impl Write for ConsoleLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ConsoleLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let text = text.trim_end_matches('\n');
        if !text.is_empty() {
            worker::console_log!("{text}");
        }
    }
}

/// The writer factory for `tracing_subscriber::fmt`.
pub struct Console;

impl<'a> MakeWriter<'a> for Console {
    type Writer = ConsoleLine;

    fn make_writer(&'a self) -> ConsoleLine {
        ConsoleLine(Vec::new())
    }
}

/// Installs the subscriber once per isolate: INFO and above, no timestamps (the platform adds
/// its own, and `SystemTime` does not exist in wasm32).
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_writer(Console)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .try_init();
}
