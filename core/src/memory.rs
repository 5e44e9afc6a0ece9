//! In-memory ports: the reference implementation of every store's contract, the per-process
//! rate-limit counter of the native runtime, and the backing of the core's own tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::ports::{
    AttemptStore, Counter, FamilyMember, MfaCodeStore, NextRefresh, OAuthStore, PendingStore, Purged,
    PushSubscriptionStore, RefreshTokenStore, Reservation, RevocationStore, Rotation, SessionLookup, SessionRecord,
    StoreError, Sweeper, Unlinked, UserCounts, UserStore,
};
use crate::records::{
    CodeCheck, CodeKind, MfaCode, OAuthIdentity, OAuthState, PendingRegistration, PushSubscription, RefreshToken, User,
    UserPatch,
};
use crate::time::Timestamp;

#[derive(Default)]
struct Tables {
    users: Vec<User>,
    pending: Vec<PendingRegistration>,
    revoked: HashMap<String, Timestamp>,
    attempts: Vec<(i64, String, Timestamp)>,
    next_attempt: i64,
    codes: Vec<MfaCode>,
    identities: Vec<OAuthIdentity>,
    states: HashMap<String, OAuthState>,
    refresh: Vec<RefreshToken>,
    push: Vec<PushSubscription>,
}

/// Every store in one mutex, so cascades and check-then-write steps are atomic.
#[derive(Default, Clone)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave a half-applied write: every mutation
        // below is a single push/remove/assignment.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn same_email(a: &str, b: &str) -> bool {
    crate::email::key(a) == crate::email::key(b)
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create(&self, user: &User) -> Result<User, StoreError> {
        let mut t = self.lock();
        if t.users.iter().any(|u| same_email(&u.email, &user.email)) {
            return Err(StoreError::Conflict("email".into()));
        }
        if t.users.iter().any(|u| u.id == user.id) {
            return Err(StoreError::Conflict("id".into()));
        }
        t.users.push(user.clone());
        Ok(user.clone())
    }

    async fn get(&self, id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.lock().users.iter().find(|u| u.id == id).cloned())
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let t = self.lock();
        let exact = t.users.iter().find(|u| u.email == email);
        Ok(exact
            .or_else(|| t.users.iter().find(|u| same_email(&u.email, email)))
            .cloned())
    }

    async fn update(&self, id: &str, patch: &UserPatch, now: Timestamp) -> Result<User, StoreError> {
        let mut t = self.lock();
        if let Some(email) = &patch.email {
            if t.users.iter().any(|u| u.id != id && same_email(&u.email, email)) {
                return Err(StoreError::Conflict("email".into()));
            }
        }
        let user = t.users.iter_mut().find(|u| u.id == id).ok_or(StoreError::NotFound)?;
        patch.apply(user, now);
        Ok(user.clone())
    }

    async fn delete(&self, user: &User) -> Result<bool, StoreError> {
        let mut t = self.lock();
        let before = t.users.len();
        t.users.retain(|u| u.id != user.id);
        let deleted = t.users.len() != before;
        t.pending.retain(|p| !same_email(&p.email, &user.email));
        t.attempts.retain(|(_, e, _)| !same_email(e, &user.email));
        t.codes.retain(|c| c.user_id != user.id);
        t.identities.retain(|i| i.user_id != user.id);
        t.refresh.retain(|r| r.user_id != user.id);
        t.push.retain(|s| s.user_id != user.id);
        Ok(deleted)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn list(&self, skip: u64, limit: u64) -> Result<Vec<User>, StoreError> {
        let mut users = self.lock().users.clone();
        users.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(users.into_iter().skip(skip).take(limit).collect())
    }

    async fn total(&self) -> Result<u64, StoreError> {
        Ok(self.lock().users.len() as u64)
    }

    async fn counts(&self) -> Result<UserCounts, StoreError> {
        let t = self.lock();
        let count = |f: fn(&User) -> bool| t.users.iter().filter(|u| f(u)).count() as u64;
        Ok(UserCounts {
            total: t.users.len() as u64,
            active: count(|u| u.is_active),
            verified: count(|u| u.is_verified),
            superusers: count(|u| u.is_superuser),
            active_superusers: count(|u| u.is_superuser && u.is_active),
        })
    }
}

#[async_trait]
impl PendingStore for MemoryStore {
    async fn put(&self, pending: &PendingRegistration) -> Result<(), StoreError> {
        let mut t = self.lock();
        t.pending.retain(|p| !same_email(&p.email, &pending.email));
        if t.pending.iter().any(|p| p.token_hash == pending.token_hash) {
            return Err(StoreError::Conflict("token_hash".into()));
        }
        t.pending.push(pending.clone());
        Ok(())
    }

    async fn take_by_token_hash(&self, token_hash: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let mut t = self.lock();
        let pos = t.pending.iter().position(|p| p.token_hash == token_hash);
        Ok(pos.map(|i| t.pending.remove(i)))
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        Ok(self
            .lock()
            .pending
            .iter()
            .find(|p| same_email(&p.email, email))
            .cloned())
    }

    async fn take_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let mut t = self.lock();
        let pos = t.pending.iter().position(|p| same_email(&p.email, email));
        Ok(pos.map(|i| t.pending.remove(i)))
    }

    async fn count_live(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(self.lock().pending.iter().filter(|p| p.expires_at > now).count() as u64)
    }
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn revoke(&self, jti: &str, exp: Timestamp) -> Result<bool, StoreError> {
        let mut t = self.lock();
        if t.revoked.contains_key(jti) {
            return Ok(false);
        }
        t.revoked.insert(jti.to_string(), exp);
        Ok(true)
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self.lock().revoked.contains_key(jti))
    }
}

#[async_trait]
impl SessionLookup for MemoryStore {
    async fn lookup(&self, user_id: &str, jti: &str) -> Result<SessionRecord, StoreError> {
        let t = self.lock();
        Ok(SessionRecord {
            user: t.users.iter().find(|u| u.id == user_id).cloned(),
            revoked: t.revoked.contains_key(jti),
        })
    }
}

#[async_trait]
impl AttemptStore for MemoryStore {
    async fn try_reserve(
        &self,
        email: &str,
        _ip: Option<&str>,
        now: Timestamp,
        since: Timestamp,
        threshold: u64,
    ) -> Result<Reservation, StoreError> {
        let mut t = self.lock();
        let count = t
            .attempts
            .iter()
            .filter(|(_, e, w)| same_email(e, email) && *w >= since)
            .count() as u64;
        if count >= threshold {
            return Ok(Reservation::Locked);
        }
        t.next_attempt += 1;
        let id = t.next_attempt;
        t.attempts.push((id, email.to_string(), now));
        Ok(Reservation::Reserved {
            id,
            failures: count + 1,
        })
    }

    async fn release(&self, id: i64) -> Result<(), StoreError> {
        self.lock().attempts.retain(|(i, _, _)| *i != id);
        Ok(())
    }

    async fn clear(&self, email: &str) -> Result<(), StoreError> {
        self.lock().attempts.retain(|(_, e, _)| !same_email(e, email));
        Ok(())
    }
}

#[async_trait]
impl MfaCodeStore for MemoryStore {
    async fn put(&self, code: &MfaCode) -> Result<(), StoreError> {
        let mut t = self.lock();
        t.codes.retain(|c| !(c.user_id == code.user_id && c.kind == code.kind));
        t.codes.push(code.clone());
        Ok(())
    }

    async fn check(
        &self,
        user_id: &str,
        kind: CodeKind,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError> {
        let mut t = self.lock();
        let Some(i) = t.codes.iter().position(|c| c.user_id == user_id && c.kind == kind) else {
            return Ok(CodeCheck::Missing);
        };
        let row = t.codes[i].clone();
        let outcome = row.judge(code_hash, now);
        match outcome {
            CodeCheck::Wrong { .. } => t.codes[i].attempts += 1,
            _ => {
                t.codes.remove(i);
            }
        }
        Ok(outcome)
    }

    async fn delete_for_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.lock().codes.retain(|c| c.user_id != user_id);
        Ok(())
    }
}

#[async_trait]
impl OAuthStore for MemoryStore {
    async fn identity(&self, provider: &str, subject: &str) -> Result<Option<OAuthIdentity>, StoreError> {
        let t = self.lock();
        Ok(t.identities
            .iter()
            .find(|i| i.provider == provider && i.subject_id == subject)
            .cloned())
    }

    async fn identities_of(&self, user_id: &str) -> Result<Vec<OAuthIdentity>, StoreError> {
        let mut out: Vec<OAuthIdentity> = self
            .lock()
            .identities
            .iter()
            .filter(|i| i.user_id == user_id)
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.linked_at, &a.id).cmp(&(b.linked_at, &b.id)));
        Ok(out)
    }

    async fn link(&self, identity: &OAuthIdentity) -> Result<OAuthIdentity, StoreError> {
        let mut t = self.lock();
        if t.identities
            .iter()
            .any(|i| i.provider == identity.provider && i.subject_id == identity.subject_id)
        {
            return Err(StoreError::Conflict("provider_subject".into()));
        }
        if t.identities
            .iter()
            .any(|i| i.user_id == identity.user_id && i.provider == identity.provider)
        {
            return Err(StoreError::Conflict("user_provider".into()));
        }
        t.identities.push(identity.clone());
        Ok(identity.clone())
    }

    async fn unlink(&self, user_id: &str, provider: &str, keep_one: bool) -> Result<Unlinked, StoreError> {
        let mut t = self.lock();
        let links = t.identities.iter().filter(|i| i.user_id == user_id).count();
        let Some(at) = t
            .identities
            .iter()
            .position(|i| i.user_id == user_id && i.provider == provider)
        else {
            return Ok(Unlinked::NotLinked);
        };
        if keep_one && links <= 1 {
            return Ok(Unlinked::LastMethod);
        }
        t.identities.remove(at);
        Ok(Unlinked::Removed)
    }

    async fn touch(&self, identity_id: &str, now: Timestamp) -> Result<(), StoreError> {
        if let Some(i) = self.lock().identities.iter_mut().find(|i| i.id == identity_id) {
            i.last_used_at = Some(now);
        }
        Ok(())
    }

    async fn put_state(&self, state: &OAuthState) -> Result<(), StoreError> {
        self.lock().states.insert(state.id.clone(), state.clone());
        Ok(())
    }

    async fn take_waiting_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        let mut t = self.lock();
        match t.states.get(id) {
            Some(s) if s.result_token.is_none() => Ok(t.states.remove(id)),
            _ => Ok(None),
        }
    }

    async fn take_completed_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        let mut t = self.lock();
        match t.states.get(id) {
            Some(s) if s.result_token.is_some() => Ok(t.states.remove(id)),
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl RefreshTokenStore for MemoryStore {
    async fn put(&self, token: &RefreshToken) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.refresh
            .iter()
            .any(|r| r.token_hash == token.token_hash || r.id == token.id)
        {
            return Err(StoreError::Conflict("refresh_token_hash_unique".into()));
        }
        t.refresh.push(token.clone());
        Ok(())
    }

    async fn rotate(&self, token_hash: &str, next: &NextRefresh, now: Timestamp) -> Result<Rotation, StoreError> {
        let mut t = self.lock();
        let Some(at) = t.refresh.iter().position(|r| r.token_hash == token_hash) else {
            return Ok(Rotation::Unknown);
        };
        let previous = t.refresh[at].clone();
        if previous.used_at.is_some() || previous.revoked || previous.expires_at <= now {
            return Ok(Rotation::refused(previous));
        }
        t.refresh[at].used_at = Some(now);
        let successor = next.successor_of(&previous, now);
        t.refresh.push(successor.clone());
        Ok(Rotation::Rotated {
            previous,
            next: successor,
        })
    }

    async fn revoke_family(&self, family_id: &str) -> Result<Vec<FamilyMember>, StoreError> {
        let mut t = self.lock();
        Ok(t.refresh
            .iter_mut()
            .filter(|r| r.family_id == family_id)
            .map(|r| {
                r.revoked = true;
                FamilyMember {
                    access_jti: r.access_jti.clone(),
                    issued_at: r.created_at,
                }
            })
            .collect())
    }

    async fn family_of_session(&self, access_jti: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .refresh
            .iter()
            .find(|r| r.access_jti == access_jti)
            .map(|r| r.family_id.clone()))
    }
}

#[async_trait]
impl PushSubscriptionStore for MemoryStore {
    async fn subscribe(&self, subscription: &PushSubscription, limit: usize) -> Result<(), StoreError> {
        let mut t = self.lock();
        let same = |s: &PushSubscription| s.user_id == subscription.user_id && s.endpoint == subscription.endpoint;
        match t.push.iter_mut().find(|s| same(s)) {
            Some(kept) => {
                kept.p256dh = subscription.p256dh.clone();
                kept.auth = subscription.auth.clone();
                kept.created_at = subscription.created_at;
            }
            None => t.push.push(subscription.clone()),
        }
        let mut mine: Vec<(Timestamp, String)> = t
            .push
            .iter()
            .filter(|s| s.user_id == subscription.user_id && s.endpoint != subscription.endpoint)
            .map(|s| (s.created_at, s.id.clone()))
            .collect();
        mine.sort();
        let excess = mine.len().saturating_sub(limit.saturating_sub(1));
        let dropped: Vec<String> = mine.into_iter().take(excess).map(|(_, id)| id).collect();
        t.push.retain(|s| !dropped.contains(&s.id));
        Ok(())
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<PushSubscription>, StoreError> {
        let mut mine: Vec<PushSubscription> = self
            .lock()
            .push
            .iter()
            .filter(|s| s.user_id == user_id)
            .cloned()
            .collect();
        mine.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(mine)
    }

    async fn unsubscribe(&self, user_id: &str, endpoint: &str) -> Result<bool, StoreError> {
        let mut t = self.lock();
        let before = t.push.len();
        t.push.retain(|s| !(s.user_id == user_id && s.endpoint == endpoint));
        Ok(t.push.len() != before)
    }
}

#[async_trait]
impl Sweeper for MemoryStore {
    async fn purge_expired(&self, now: Timestamp, attempts_before: Timestamp) -> Result<Purged, StoreError> {
        let mut t = self.lock();
        let before = (
            t.attempts.len(),
            t.pending.len(),
            t.revoked.len(),
            t.codes.len(),
            t.states.len(),
            t.refresh.len(),
        );
        t.attempts.retain(|(_, _, when)| *when >= attempts_before);
        t.pending.retain(|p| p.expires_at > now);
        t.revoked.retain(|_, exp| *exp > now);
        t.codes.retain(|c| c.expires_at > now);
        t.states.retain(|_, s| s.expires_at > now);
        t.refresh.retain(|r| r.expires_at > now);
        Ok(Purged {
            attempts: (before.0 - t.attempts.len()) as u64,
            pending: (before.1 - t.pending.len()) as u64,
            revocations: (before.2 - t.revoked.len()) as u64,
            codes: (before.3 - t.codes.len()) as u64,
            oauth_states: (before.4 - t.states.len()) as u64,
            refresh_tokens: (before.5 - t.refresh.len()) as u64,
        })
    }
}

/// Per-process rate-limit counters. Expired keys are swept on the way, so memory stays
/// bounded by the keys of the current windows.
#[derive(Default)]
pub struct MemoryCounter {
    counts: Mutex<HashMap<String, (u64, Timestamp)>>,
}

#[async_trait]
impl Counter for MemoryCounter {
    async fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u64, StoreError> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() >= 1024 && counts.len().is_power_of_two() && !counts.contains_key(key) {
            // Amortised sweep: memory stays bounded by the keys of windows still open.
            counts.retain(|_, (_, exp)| *exp > now);
        }
        let slot = counts.entry(key.to_string()).or_insert((0, expires_at));
        if slot.1 <= now {
            *slot = (0, expires_at);
        }
        slot.0 += 1;
        Ok(slot.0)
    }
}
