//! Every guess at an account's secrets counts toward its login lockout (docs/security.md,
//! "Lockout"): a password at `/login`, a `current_password` on the account routes, and an SMS
//! code at `/login/mfa-confirm` or `/phone/confirm`. Without this, a stolen session could try
//! current passwords for free, and anyone with the password could ask for fresh SMS codes
//! until one fell.
//!
//! A slot is reserved atomically *before* the secret is checked (so parallel guesses cannot
//! pass the threshold) and given back when the guess was right.

use crate::engine::Engine;
use crate::ports::Reservation;

use super::{FlowError, FlowResult};

/// One reserved guess. Dropping it without [`Guess::right`] leaves it counted as a failure.
#[derive(Debug)]
#[must_use = "a guess is counted as a failure unless it is given back with `right`"]
pub(crate) struct Guess {
    slot: Option<(i64, u64)>,
}

impl Guess {
    /// Reserves one failure slot for `email`, or refuses with the lockout's 429 when the
    /// window is full. With lockout off (`rate_limit_disabled`) nothing is counted. The key is
    /// the address in its one compared form ([`crate::email::key`]), which every backend stores
    /// and clears.
    pub(crate) async fn reserve(engine: &Engine, email: &str, ip: Option<&str>) -> FlowResult<Guess> {
        let email = &crate::email::key(email);
        let lockout = engine.lockout;
        if lockout.disabled {
            return Ok(Guess { slot: None });
        }
        let now = engine.now();
        match engine
            .ports
            .attempts
            .try_reserve(email, ip, now, lockout.window_start(now), lockout.threshold)
            .await?
        {
            Reservation::Locked => Err(FlowError::Locked {
                retry_after: lockout.retry_after(),
            }),
            Reservation::Reserved { id, failures } => Ok(Guess {
                slot: Some((id, failures)),
            }),
        }
    }

    /// Attempts left after this guess if it turns out wrong, for the login's "N attempt(s)
    /// remaining." suffix.
    pub(crate) fn remaining(&self, engine: &Engine) -> Option<u64> {
        self.slot.and_then(|(_, failures)| engine.lockout.remaining(failures))
    }

    /// The guess was right (or was not a guess after all): its slot is given back.
    pub(crate) async fn right(self, engine: &Engine) -> FlowResult<()> {
        if let Some((id, _)) = self.slot {
            engine.ports.attempts.release(id).await?;
        }
        Ok(())
    }
}
