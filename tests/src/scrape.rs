//! What the server prints, read back: the scraper of `regstack validate`
//! (`regstack_core::transcript`, docs/wire.md, "Console output"), so the suite reads links
//! and codes exactly as the probe does.

pub use regstack_core::transcript::{find_links, find_sms_code, sms_recipient, LinkKind, SmsKind, NULL_SMS_MARKER};

/// The (percent-decoded) `token` query parameter of a scraped link; panics without one.
pub fn token_of(url: &str) -> String {
    regstack_core::transcript::token_of(url).unwrap_or_else(|| panic!("link {url:?} has no token query parameter"))
}
