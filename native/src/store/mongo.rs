//! MongoDB storage with the official driver, over the collections, field names and indexes of
//! regstack 0.9.3 (docs/wire.md, "MongoDB collections"). Tested against SecantusDB, a MongoDB-wire server.
//!
//! Single-document operations (`findOneAndDelete`, upserts with `$inc`, unique indexes) are
//! atomic on their own. The two read-decide-write steps, the lockout reservation and the SMS
//! code check, run under a short lease document per key (`regstack_leases`), so they are exact
//! across instances without needing a replica set for transactions.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Bson, DateTime as BsonDateTime, Document};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, Database, IndexModel};
use regstack_core::config::Config;
use regstack_core::ports::{
    AttemptStore, Counter, FamilyMember, MfaCodeStore, NextRefresh, OAuthStore, PendingStore, Purged,
    PushSubscriptionStore, RefreshTokenStore, Reservation, RevocationStore, Rotation, SessionLookup, SessionRecord,
    StoreError, Sweeper, Unlinked, UserCounts, UserStore,
};
use regstack_core::records::{
    CodeCheck, CodeKind, MfaCode, OAuthIdentity, OAuthMode, OAuthState, PendingRegistration, PushSubscription,
    RefreshToken, User, UserPatch,
};
use regstack_core::time::{from_micros, to_micros, Timestamp};

const DUPLICATE_KEY: i32 = 11000;
const LEASE: Duration = Duration::from_secs(5);

/// Every store on one MongoDB database.
#[derive(Clone, Debug)]
pub struct MongoStore {
    db: Database,
    users: Collection<Document>,
    pending: Collection<Document>,
    blacklist: Collection<Document>,
    attempts: Collection<Document>,
    mfa: Collection<Document>,
    identities: Collection<Document>,
    states: Collection<Document>,
    refresh: Collection<Document>,
    push: Collection<Document>,
    counters: Collection<Document>,
    leases: Collection<Document>,
}

/// Why the database cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL does not parse.
    #[error("invalid MongoDB URL: {0}")]
    Url(MongoError),
    /// The server cannot be reached.
    #[error("cannot reach MongoDB at {hosts}: {source}")]
    Connect {
        /// The hosts from the URL, without credentials.
        hosts: String,
        /// What the driver said.
        source: MongoError,
    },
    /// Creating the indexes failed.
    #[error("installing MongoDB indexes failed: {0}")]
    Schema(MongoError),
}

fn is_duplicate(e: &MongoError) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        _ => false,
    }
}

/// Maps driver errors to the port's: duplicate keys by code, network trouble as `Unavailable`.
fn map_err(e: MongoError) -> StoreError {
    if is_duplicate(&e) {
        return StoreError::Conflict("unique".into());
    }
    match e.kind.as_ref() {
        ErrorKind::Io(_) | ErrorKind::ServerSelection { .. } | ErrorKind::ConnectionPoolCleared { .. } => {
            StoreError::Unavailable(e.to_string())
        }
        _ if e.contains_label("RetryableWriteError") || e.contains_label("SystemOverloadedError") => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// BSON dates keep milliseconds.
fn bson_date(t: Timestamp) -> BsonDateTime {
    BsonDateTime::from_millis(to_micros(t).div_euclid(1000))
}

/// The revoke cutoff rounded *up* to the millisecond (docs/wire.md, "Decision 7 (16)"): no token issued
/// before a change survives it.
fn bson_date_ceil(t: Timestamp) -> BsonDateTime {
    let micros = to_micros(t);
    BsonDateTime::from_millis(micros.div_euclid(1000) + i64::from(micros.rem_euclid(1000) != 0))
}

fn from_bson_date(d: BsonDateTime) -> Timestamp {
    from_micros(d.timestamp_millis().saturating_mul(1000))
}

fn str_field(d: &Document, key: &str) -> Result<String, StoreError> {
    d.get_str(key)
        .map(str::to_string)
        .map_err(|e| StoreError::Backend(format!("field {key}: {e}")))
}

fn opt_str(d: &Document, key: &str) -> Option<String> {
    d.get_str(key).ok().map(str::to_string)
}

fn date(d: &Document, key: &str) -> Result<Timestamp, StoreError> {
    d.get_datetime(key)
        .map(|t| from_bson_date(*t))
        .map_err(|e| StoreError::Backend(format!("field {key}: {e}")))
}

fn opt_date(d: &Document, key: &str) -> Option<Timestamp> {
    d.get_datetime(key).ok().map(|t| from_bson_date(*t))
}

fn flag(d: &Document, key: &str, default: bool) -> bool {
    d.get_bool(key).unwrap_or(default)
}

fn id_string(d: &Document) -> Result<String, StoreError> {
    match d.get("_id") {
        Some(Bson::ObjectId(oid)) => Ok(oid.to_hex()),
        Some(Bson::String(s)) => Ok(s.clone()),
        other => Err(StoreError::Backend(format!("unexpected _id {other:?}"))),
    }
}

/// `_id` filter for a user id: an ObjectId when it parses as one, else the raw string.
fn id_filter(id: &str) -> Document {
    match ObjectId::parse_str(id) {
        Ok(oid) => doc! { "_id": oid },
        Err(_) => doc! { "_id": id },
    }
}

fn user_from(d: &Document) -> Result<User, StoreError> {
    Ok(User {
        id: id_string(d)?,
        email: str_field(d, "email")?,
        hashed_password: opt_str(d, "hashed_password"),
        is_active: flag(d, "is_active", true),
        is_verified: flag(d, "is_verified", false),
        is_superuser: flag(d, "is_superuser", false),
        full_name: opt_str(d, "full_name"),
        phone_number: opt_str(d, "phone_number"),
        is_mfa_enabled: flag(d, "is_mfa_enabled", false),
        created_at: date(d, "created_at")?,
        updated_at: date(d, "updated_at")?,
        last_login: opt_date(d, "last_login"),
        tokens_invalidated_after: opt_date(d, "tokens_invalidated_after"),
        // Documents written by regstack 0.9.3 have no role: the default role of the SQL column.
        role: opt_str(d, "role").unwrap_or_else(|| regstack_core::records::DEFAULT_ROLE.to_string()),
    })
}

fn pending_from(d: &Document) -> Result<PendingRegistration, StoreError> {
    Ok(PendingRegistration {
        id: id_string(d)?,
        email: str_field(d, "email")?,
        hashed_password: str_field(d, "hashed_password")?,
        full_name: opt_str(d, "full_name"),
        token_hash: str_field(d, "token_hash")?,
        created_at: date(d, "created_at")?,
        expires_at: date(d, "expires_at")?,
    })
}

/// The additive `email_key` field: the address lower-cased (Unicode, as the core lower-cases
/// input), indexed, on every user and pending document. Case-insensitive lookups match it
/// exactly, so they use an index and fold case exactly as the lockout key does; a
/// case-insensitive regex scanned the collection and also folded `ſ` to `s`, giving one
/// account many spellings. Documents without it (written by regstack 0.9.3) get it at start-up.
const EMAIL_KEY: &str = "email_key";

use regstack_core::email::key as email_key;

/// Matches an email in any case: the stored key, or the exact address for a document written
/// since start-up by a writer that does not set the key.
fn email_filter(email: &str) -> Document {
    doc! { "$or": [ { EMAIL_KEY: email_key(email) }, { "email": email } ] }
}

/// Gives every document without an `email_key` its key (adopted or 0.9.3-written ones).
async fn backfill_email_keys(c: &Collection<Document>) -> Result<(), MongoError> {
    let mut missing = c
        .find(doc! { EMAIL_KEY: { "$exists": false } })
        .projection(doc! { "email": 1 })
        .await?;
    while let Some(d) = missing.try_next().await? {
        let (Some(id), Ok(email)) = (d.get("_id"), d.get_str("email")) else {
            continue;
        };
        // Only while the address is unchanged: a change in between writes its own key.
        c.update_one(
            doc! { "_id": id.clone(), "email": email },
            doc! { "$set": { EMAIL_KEY: email_key(email) } },
        )
        .await?;
    }
    Ok(())
}

impl MongoStore {
    /// Connects (failing within `timeout` when no server answers), selects the database (the
    /// URL's path, else `mongodb_database`), and installs the indexes idempotently.
    pub async fn open(config: &Config, url: &str, timeout: Duration) -> Result<Self, OpenError> {
        Self::from_database(config, Self::connect(config, url, timeout).await?).await
    }

    /// Connects and pings, changing nothing.
    async fn connect(config: &Config, url: &str, timeout: Duration) -> Result<Database, OpenError> {
        let mut options = ClientOptions::parse(url).await.map_err(OpenError::Url)?;
        let hosts = options
            .hosts
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join(",");
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        options.max_pool_size = Some(config.database_pool_size);
        options.app_name = Some("regstack".into());
        let db_name = options
            .default_database
            .clone()
            .unwrap_or_else(|| config.mongodb_database.clone());
        let client = Client::with_options(options).map_err(OpenError::Url)?;
        let db = client.database(&db_name);
        db.run_command(doc! { "ping": 1 })
            .await
            .map_err(|source| OpenError::Connect { hosts, source })?;
        Ok(db)
    }

    /// Stores on a database handle the host already owns (its client, its options), with the
    /// collection names of `config`; installs the indexes first.
    pub async fn from_database(config: &Config, db: Database) -> Result<Self, OpenError> {
        let store = Self {
            users: db.collection(&config.user_collection),
            pending: db.collection(&config.pending_collection),
            blacklist: db.collection(&config.blacklist_collection),
            attempts: db.collection(&config.login_attempt_collection),
            mfa: db.collection(&config.mfa_code_collection),
            identities: db.collection(&config.oauth_identity_collection),
            states: db.collection(&config.oauth_state_collection),
            refresh: db.collection("refresh_tokens"),
            push: db.collection("push_subscriptions"),
            counters: db.collection("regstack_rate_limits"),
            leases: db.collection("regstack_leases"),
            db,
        };
        store.install_schema(config).await.map_err(OpenError::Schema)?;
        Ok(store)
    }

    /// The indexes of docs/wire.md, "MongoDB collections", plus TTLs for the additive counter and lease collections.
    async fn install_schema(&self, config: &Config) -> Result<(), MongoError> {
        async fn index(
            c: &Collection<Document>,
            keys: Document,
            name: &str,
            unique: bool,
            ttl: Option<u64>,
        ) -> Result<(), MongoError> {
            let mut o = IndexOptions::builder().name(name.to_string()).build();
            if unique {
                o.unique = Some(true);
            }
            if let Some(secs) = ttl {
                o.expire_after = Some(Duration::from_secs(secs));
            }
            c.create_index(IndexModel::builder().keys(keys).options(o).build())
                .await
                .map(|_| ())
        }
        index(&self.users, doc! {"email": 1}, "email_unique", true, None).await?;
        // Not unique: 0.9.3 kept the local part's case, so an adopted database may hold
        // `Bob@x` and `bob@x` as two accounts.
        index(&self.users, doc! {EMAIL_KEY: 1}, "email_key", false, None).await?;
        index(&self.pending, doc! {EMAIL_KEY: 1}, "pending_email_key", false, None).await?;
        // The admin user list, newest first (additive).
        index(
            &self.users,
            doc! {"created_at": -1, "_id": -1},
            "created_at_listing",
            false,
            None,
        )
        .await?;
        for collection in [&self.users, &self.pending] {
            backfill_email_keys(collection).await?;
        }
        index(&self.blacklist, doc! {"jti": 1}, "jti_unique", true, None).await?;
        index(&self.blacklist, doc! {"exp": 1}, "exp_ttl", false, Some(0)).await?;
        index(&self.pending, doc! {"email": 1}, "pending_email_unique", true, None).await?;
        index(
            &self.pending,
            doc! {"token_hash": 1},
            "pending_token_unique",
            true,
            None,
        )
        .await?;
        index(&self.pending, doc! {"expires_at": 1}, "pending_ttl", false, Some(0)).await?;
        index(&self.attempts, doc! {"email": 1, "when": 1}, "email_when", false, None).await?;
        let window = config.login_lockout_window_seconds.max(0) as u64;
        index(&self.attempts, doc! {"when": 1}, "when_ttl", false, Some(window)).await?;
        index(
            &self.mfa,
            doc! {"user_id": 1, "kind": 1},
            "user_kind_unique",
            true,
            None,
        )
        .await?;
        index(&self.mfa, doc! {"expires_at": 1}, "mfa_ttl", false, Some(0)).await?;
        index(
            &self.refresh,
            doc! {"token_hash": 1},
            "refresh_token_hash_unique",
            true,
            None,
        )
        .await?;
        index(&self.refresh, doc! {"family_id": 1}, "refresh_family", false, None).await?;
        index(&self.refresh, doc! {"user_id": 1}, "refresh_user", false, None).await?;
        index(&self.refresh, doc! {"access_jti": 1}, "refresh_access_jti", false, None).await?;
        index(&self.refresh, doc! {"expires_at": 1}, "refresh_ttl", false, Some(0)).await?;
        index(
            &self.push,
            doc! {"user_id": 1, "endpoint": 1},
            "push_subscription_unique",
            true,
            None,
        )
        .await?;
        index(
            &self.identities,
            doc! {"provider": 1, "subject_id": 1},
            "provider_subject_unique",
            true,
            None,
        )
        .await?;
        index(
            &self.identities,
            doc! {"user_id": 1, "provider": 1},
            "user_provider_unique",
            true,
            None,
        )
        .await?;
        index(&self.counters, doc! {"expires_at": 1}, "rate_limit_ttl", false, Some(0)).await?;
        index(&self.leases, doc! {"until": 1}, "lease_ttl", false, Some(60)).await?;
        index(&self.states, doc! {"expires_at": 1}, "oauth_state_ttl", false, Some(0)).await?;
        let validator =
            doc! { "$jsonSchema": { "bsonType": "object", "properties": { "mode": { "enum": ["signin", "link"] } } } };
        let created = self
            .db
            .create_collection(&config.oauth_state_collection)
            .validator(validator.clone())
            .validation_level(mongodb::options::ValidationLevel::Moderate)
            .validation_action(mongodb::options::ValidationAction::Error)
            .await;
        if created.is_err() {
            // The collection exists (index creation above made it): attach the validator.
            let cmd = doc! { "collMod": &config.oauth_state_collection, "validator": validator, "validationLevel": "moderate", "validationAction": "error" };
            if let Err(e) = self.db.run_command(cmd).await {
                tracing::warn!(target: "regstack.store.mongo", error = %e, "could not install the oauth_states validator");
            }
        }
        Ok(())
    }

    /// Holds a short lease on `key` while `work` runs, so read-decide-write steps on one key
    /// do not interleave. A holder that dies loses the lease after [`LEASE`].
    async fn leased<T, F>(&self, key: &str, now: Timestamp, work: F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        let token = ObjectId::new();
        let started = std::time::Instant::now();
        let wall = |ahead: Duration| {
            BsonDateTime::from_millis(
                bson_date(now).timestamp_millis() + (started.elapsed() + ahead).as_millis() as i64,
            )
        };
        let mut backoff = Duration::from_millis(2);
        loop {
            // Matches a free or expired lease; a held one makes the upsert collide on `_id`.
            let taken = self
                .leases
                .update_one(
                    doc! { "_id": key, "until": { "$lt": wall(Duration::ZERO) } },
                    doc! { "$set": { "until": wall(LEASE), "holder": token } },
                )
                .upsert(true)
                .await;
            match taken {
                Ok(_) => break,
                Err(e) if is_duplicate(&e) => {
                    if started.elapsed() > LEASE * 2 {
                        return Err(StoreError::Unavailable(format!("lease {key} stayed busy")));
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(map_err(e)),
            }
        }
        let result = work.await;
        let released = self.leases.delete_one(doc! { "_id": key, "holder": token }).await;
        if let Err(e) = released {
            tracing::warn!(target: "regstack.store.mongo", error = %e, "lease release failed; it expires on its own");
        }
        result
    }
}

#[async_trait]
impl UserStore for MongoStore {
    async fn create(&self, u: &User) -> Result<User, StoreError> {
        if self
            .users
            .find_one(email_filter(&u.email))
            .await
            .map_err(map_err)?
            .is_some()
        {
            return Err(StoreError::Conflict("email".into()));
        }
        let oid = ObjectId::new();
        let mut d = doc! {
            "_id": oid,
            "email": &u.email,
            EMAIL_KEY: email_key(&u.email),
            "is_active": u.is_active,
            "is_verified": u.is_verified,
            "is_superuser": u.is_superuser,
            "is_mfa_enabled": u.is_mfa_enabled,
            "created_at": bson_date(u.created_at),
            "updated_at": bson_date(u.updated_at),
            "role": &u.role,
        };
        // Null fields are omitted, as the original inserts them.
        for (k, v) in [
            ("hashed_password", &u.hashed_password),
            ("full_name", &u.full_name),
            ("phone_number", &u.phone_number),
        ] {
            if let Some(v) = v {
                d.insert(k, v);
            }
        }
        if let Some(t) = u.last_login {
            d.insert("last_login", bson_date(t));
        }
        if let Some(t) = u.tokens_invalidated_after {
            d.insert("tokens_invalidated_after", bson_date_ceil(t));
        }
        self.users.insert_one(&d).await.map_err(|e| match map_err(e) {
            StoreError::Conflict(_) => StoreError::Conflict("email".into()),
            other => other,
        })?;
        user_from(&d)
    }

    async fn get(&self, id: &str) -> Result<Option<User>, StoreError> {
        let found = self.users.find_one(id_filter(id)).await.map_err(map_err)?;
        found.as_ref().map(user_from).transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        if let Some(d) = self.users.find_one(doc! { "email": email }).await.map_err(map_err)? {
            return user_from(&d).map(Some);
        }
        let found = self.users.find_one(email_filter(email)).await.map_err(map_err)?;
        found.as_ref().map(user_from).transpose()
    }

    async fn update(&self, id: &str, patch: &UserPatch, now: Timestamp) -> Result<User, StoreError> {
        if let Some(email) = &patch.email {
            if let Some(other) = self.users.find_one(email_filter(email)).await.map_err(map_err)? {
                if id_string(&other)? != id {
                    return Err(StoreError::Conflict("email".into()));
                }
            }
        }
        let mut set = doc! { "updated_at": bson_date(now) };
        let mut unset = Document::new();
        let mut text = |key: &str, v: &Option<Option<String>>| match v {
            Some(Some(s)) => {
                set.insert(key, s);
            }
            Some(None) => {
                unset.insert(key, "");
            }
            None => {}
        };
        text("hashed_password", &patch.hashed_password);
        text("full_name", &patch.full_name);
        text("phone_number", &patch.phone_number);
        if let Some(e) = &patch.email {
            set.insert("email", e);
            set.insert(EMAIL_KEY, email_key(e));
        }
        if let Some(role) = &patch.role {
            set.insert("role", role);
        }
        for (k, v) in [
            ("is_active", patch.is_active),
            ("is_verified", patch.is_verified),
            ("is_superuser", patch.is_superuser),
            ("is_mfa_enabled", patch.is_mfa_enabled),
        ] {
            if let Some(v) = v {
                set.insert(k, v);
            }
        }
        if let Some(t) = patch.last_login {
            set.insert("last_login", bson_date(t));
        }
        if let Some(t) = patch.tokens_invalidated_after {
            set.insert("tokens_invalidated_after", bson_date_ceil(t));
        }
        let mut update = doc! { "$set": set };
        if !unset.is_empty() {
            update.insert("$unset", unset);
        }
        let found = self
            .users
            .find_one_and_update(id_filter(id), update)
            .return_document(ReturnDocument::After)
            .await
            .map_err(|e| match map_err(e) {
                StoreError::Conflict(_) => StoreError::Conflict("email".into()),
                other => other,
            })?;
        match found {
            Some(d) => user_from(&d),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete(&self, user: &User) -> Result<bool, StoreError> {
        let deleted = self
            .users
            .delete_one(id_filter(&user.id))
            .await
            .map_err(map_err)?
            .deleted_count
            > 0;
        self.identities
            .delete_many(doc! { "user_id": &user.id })
            .await
            .map_err(map_err)?;
        self.mfa
            .delete_many(doc! { "user_id": &user.id })
            .await
            .map_err(map_err)?;
        self.refresh
            .delete_many(doc! { "user_id": &user.id })
            .await
            .map_err(map_err)?;
        self.push
            .delete_many(doc! { "user_id": &user.id })
            .await
            .map_err(map_err)?;
        self.pending
            .delete_many(email_filter(&user.email))
            .await
            .map_err(map_err)?;
        self.attempts
            .delete_many(doc! { "email": email_key(&user.email) })
            .await
            .map_err(map_err)?;
        Ok(deleted)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.run_command(doc! { "ping": 1 }).await.map_err(map_err)?;
        Ok(())
    }

    async fn list(&self, skip: u64, limit: u64) -> Result<Vec<User>, StoreError> {
        // Mongo reads a limit of 0 as "no limit".
        if limit == 0 {
            return Ok(Vec::new());
        }
        let docs: Vec<Document> = self
            .users
            .find(doc! {})
            .sort(doc! { "created_at": -1, "_id": -1 })
            // The server reads skip as a signed 64-bit number.
            .skip(skip.min(i64::MAX as u64))
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.iter().map(user_from).collect()
    }

    async fn total(&self) -> Result<u64, StoreError> {
        self.users.count_documents(doc! {}).await.map_err(map_err)
    }

    async fn counts(&self) -> Result<UserCounts, StoreError> {
        // A flag missing from a document reads as its default (`is_active` true), as in
        // `user_from`.
        let count = |filter: Document| async move { self.users.count_documents(filter).await.map_err(map_err) };
        Ok(UserCounts {
            total: count(doc! {}).await?,
            active: count(doc! { "is_active": { "$ne": false } }).await?,
            verified: count(doc! { "is_verified": true }).await?,
            superusers: count(doc! { "is_superuser": true }).await?,
            active_superusers: count(doc! { "is_superuser": true, "is_active": { "$ne": false } }).await?,
        })
    }
}

#[async_trait]
impl PendingStore for MongoStore {
    async fn put(&self, p: &PendingRegistration) -> Result<(), StoreError> {
        self.pending
            .delete_many(email_filter(&p.email))
            .await
            .map_err(map_err)?;
        let mut d = doc! {
            "email": &p.email,
            EMAIL_KEY: email_key(&p.email),
            "hashed_password": &p.hashed_password,
            "token_hash": &p.token_hash,
            "created_at": bson_date(p.created_at),
            "expires_at": bson_date(p.expires_at),
        };
        if let Some(n) = &p.full_name {
            d.insert("full_name", n);
        }
        // Replace-or-insert by email, so two racing writers leave exactly one row.
        self.pending
            .replace_one(doc! { "email": &p.email }, d)
            .upsert(true)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn take_by_token_hash(&self, token_hash: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let found = self
            .pending
            .find_one_and_delete(doc! { "token_hash": token_hash })
            .await
            .map_err(map_err)?;
        found.as_ref().map(pending_from).transpose()
    }

    async fn find_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let found = self.pending.find_one(email_filter(email)).await.map_err(map_err)?;
        found.as_ref().map(pending_from).transpose()
    }

    async fn take_by_email(&self, email: &str) -> Result<Option<PendingRegistration>, StoreError> {
        let found = self
            .pending
            .find_one_and_delete(email_filter(email))
            .await
            .map_err(map_err)?;
        found.as_ref().map(pending_from).transpose()
    }

    async fn count_live(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.pending
            .count_documents(doc! { "expires_at": { "$gt": bson_date(now) } })
            .await
            .map_err(map_err)
    }
}

/// Two reads at once: Mongo has no join across these collections worth its cost here.
#[async_trait]
impl SessionLookup for MongoStore {
    async fn lookup(&self, user_id: &str, jti: &str) -> Result<SessionRecord, StoreError> {
        let (user, revoked) = tokio::join!(self.get(user_id), self.is_revoked(jti));
        SessionRecord::read(user, revoked?)
    }
}

#[async_trait]
impl RevocationStore for MongoStore {
    async fn revoke(&self, jti: &str, exp: Timestamp) -> Result<bool, StoreError> {
        match self
            .blacklist
            .insert_one(doc! { "jti": jti, "exp": bson_date(exp) })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate(&e) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn is_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(self
            .blacklist
            .find_one(doc! { "jti": jti })
            .await
            .map_err(map_err)?
            .is_some())
    }
}

#[async_trait]
impl AttemptStore for MongoStore {
    async fn try_reserve(
        &self,
        email: &str,
        ip: Option<&str>,
        now: Timestamp,
        since: Timestamp,
        threshold: u64,
    ) -> Result<Reservation, StoreError> {
        self.leased(&format!("lockout:{email}"), now, async {
            let count = self
                .attempts
                .count_documents(doc! { "email": email, "when": { "$gte": bson_date(since) } })
                .await
                .map_err(map_err)?;
            if count >= threshold {
                return Ok(Reservation::Locked);
            }
            // A random tag stands in for SQL's integer id, for `release`.
            let mut tag = [0u8; 8];
            getrandom::fill(&mut tag).map_err(|e| StoreError::Backend(e.to_string()))?;
            let seq = i64::from_le_bytes(tag) & i64::MAX;
            let mut d = doc! { "email": email, "when": bson_date(now), "seq": seq };
            if let Some(ip) = ip {
                d.insert("ip", ip);
            }
            self.attempts.insert_one(d).await.map_err(map_err)?;
            Ok(Reservation::Reserved {
                id: seq,
                failures: count + 1,
            })
        })
        .await
    }

    async fn release(&self, id: i64) -> Result<(), StoreError> {
        self.attempts.delete_one(doc! { "seq": id }).await.map_err(map_err)?;
        Ok(())
    }

    async fn clear(&self, email: &str) -> Result<(), StoreError> {
        // The core keys failures by the lower-cased address (and 0.9.3's rows expire with the
        // window), so an exact match on the indexed field does it.
        self.attempts
            .delete_many(doc! { "email": email_key(email) })
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl MfaCodeStore for MongoStore {
    async fn put(&self, c: &MfaCode) -> Result<(), StoreError> {
        let d = doc! {
            "user_id": &c.user_id,
            "kind": c.kind.as_str(),
            "code_hash": &c.code_hash,
            "expires_at": bson_date(c.expires_at),
            "attempts": c.attempts,
            "max_attempts": c.max_attempts,
            "created_at": bson_date(c.created_at),
        };
        self.mfa
            .replace_one(doc! { "user_id": &c.user_id, "kind": c.kind.as_str() }, d)
            .upsert(true)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn check(
        &self,
        user_id: &str,
        kind: CodeKind,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<CodeCheck, StoreError> {
        self.leased(&format!("mfa:{user_id}:{}", kind.as_str()), now, async {
            let filter = doc! { "user_id": user_id, "kind": kind.as_str() };
            let Some(d) = self.mfa.find_one(filter.clone()).await.map_err(map_err)? else {
                return Ok(CodeCheck::Missing);
            };
            let number = |k: &str| d.get_i64(k).or_else(|_| d.get_i32(k).map(i64::from)).unwrap_or(0);
            let stored = MfaCode {
                user_id: user_id.to_string(),
                kind,
                code_hash: str_field(&d, "code_hash")?,
                expires_at: date(&d, "expires_at")?,
                attempts: number("attempts"),
                max_attempts: number("max_attempts"),
                created_at: date(&d, "created_at")?,
            };
            let outcome = stored.judge(code_hash, now);
            // Touch exactly the row that was judged: a code re-issued meanwhile is left alone.
            let row = doc! { "_id": d.get("_id").cloned().unwrap_or(Bson::Null), "code_hash": &stored.code_hash };
            match outcome {
                CodeCheck::Wrong { .. } => {
                    self.mfa
                        .update_one(row, doc! { "$inc": { "attempts": 1 } })
                        .await
                        .map_err(map_err)?;
                }
                _ => {
                    self.mfa.delete_one(row).await.map_err(map_err)?;
                }
            }
            Ok(outcome)
        })
        .await
    }

    async fn delete_for_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.mfa
            .delete_many(doc! { "user_id": user_id })
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[async_trait]
impl Counter for MongoStore {
    async fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u64, StoreError> {
        // Under the key's lease a read and a write are as good as an atomic `$inc`, on servers
        // whose find-and-modify answers are not reliable under concurrency. The TTL index
        // removes closed windows (keys name their window).
        self.leased(&format!("rl:{key}"), now, async {
            let current = self.counters.find_one(doc! { "_id": key }).await.map_err(map_err)?;
            let count = current.and_then(|d| d.get_i64("count").ok()).unwrap_or(0) + 1;
            self.counters
                .replace_one(
                    doc! { "_id": key },
                    doc! { "count": count, "expires_at": bson_date(expires_at) },
                )
                .upsert(true)
                .await
                .map_err(map_err)?;
            Ok(count as u64)
        })
        .await
    }
}

/// The server behind a MongoDB URL, as `buildInfo` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Server {
    /// MongoDB at this version.
    Mongo(String),
    /// SecantusDB (a MongoDB-wire server) at this version.
    Secantus(String),
}

/// What `regstack doctor` reads from MongoDB, changing nothing.
#[derive(Clone, Debug)]
pub struct Health {
    /// The server.
    pub server: Server,
    /// The unique indexes regstack relies on that are not there.
    pub missing_indexes: Vec<String>,
}

/// Connects, pings, reads `buildInfo` and the unique indexes, without installing anything.
pub async fn health(config: &Config, url: &str, timeout: Duration) -> Result<Health, OpenError> {
    let db = MongoStore::connect(config, url, timeout).await?;
    let info = db
        .run_command(doc! { "buildInfo": 1 })
        .await
        .map_err(|source| OpenError::Connect {
            hosts: "buildInfo".into(),
            source,
        })?;
    let version = info.get_str("version").unwrap_or("unknown").to_string();
    let server = match info.get_str("secantusVersion") {
        Ok(v) => Server::Secantus(v.to_string()),
        Err(_) => Server::Mongo(version),
    };
    let mut missing_indexes = Vec::new();
    for (collection, index) in [
        (&config.user_collection, "email_unique"),
        (&config.blacklist_collection, "jti_unique"),
    ] {
        let mut cursor = match db.collection::<Document>(collection).list_indexes().await {
            Ok(c) => c,
            // A collection that does not exist yet has no indexes.
            Err(_) => {
                missing_indexes.push(index.to_string());
                continue;
            }
        };
        let mut found = false;
        while let Ok(Some(ix)) = cursor.try_next().await {
            found |= ix.options.and_then(|o| o.name).as_deref() == Some(index);
        }
        if !found {
            missing_indexes.push(index.to_string());
        }
    }
    Ok(Health {
        server,
        missing_indexes,
    })
}

/// The first patched release of each MongoDB track for CVE-2025-14847 ("MongoBleed", zlib
/// message decompression reading uninitialised heap memory).
const CVE_2025_14847_FIXED: [(u32, u32, u32); 6] =
    [(8, 2, 3), (8, 0, 17), (7, 0, 28), (6, 0, 27), (5, 0, 32), (4, 4, 30)];

/// `Ok` with a note when the server is not affected by CVE-2025-14847, `Err` with advice
/// when it is or may be. An advisory: the operator's server is outside regstack's control.
pub fn cve_2025_14847(server: &Server) -> Result<String, String> {
    let version = match server {
        Server::Secantus(v) => {
            return Ok(format!(
                "SecantusDB {v}: not MongoDB's server code, so CVE-2025-14847 does not apply"
            ))
        }
        Server::Mongo(v) => v,
    };
    let parts: Vec<u32> = version
        .split(['.', '-', '+'])
        .take(3)
        .map_while(|p| p.parse().ok())
        .collect();
    let [major, minor, patch] = parts[..] else {
        return Err(format!(
            "MongoDB reports version {version:?}; check it against CVE-2025-14847 by hand"
        ));
    };
    match CVE_2025_14847_FIXED.iter().find(|(ma, mi, _)| (*ma, *mi) == (major, minor)) {
        Some((_, _, fixed)) if patch >= *fixed => Ok(format!("MongoDB {version}: has the fix for CVE-2025-14847")),
        Some((_, _, fixed)) => Err(format!(
            "MongoDB {version} predates the fix for CVE-2025-14847 (MongoBleed); upgrade to {major}.{minor}.{fixed} or later"
        )),
        None if (major, minor) > (8, 2) => Ok(format!("MongoDB {version}: newer than every affected release")),
        None => Err(format!(
            "MongoDB {version} is on a release track that gets no fix for CVE-2025-14847; move to a supported one"
        )),
    }
}

/// Lists the index names of a collection (for tests and `doctor`).
pub async fn index_names(store: &MongoStore, collection: &str) -> Result<Vec<String>, StoreError> {
    let mut cursor = store
        .db
        .collection::<Document>(collection)
        .list_indexes()
        .await
        .map_err(map_err)?;
    let mut names = Vec::new();
    while let Some(ix) = cursor.try_next().await.map_err(map_err)? {
        if let Some(name) = ix.options.and_then(|o| o.name) {
            names.push(name);
        }
    }
    Ok(names)
}

fn identity_from(d: &Document) -> Result<OAuthIdentity, StoreError> {
    Ok(OAuthIdentity {
        id: id_string(d)?,
        user_id: str_field(d, "user_id")?,
        provider: str_field(d, "provider")?,
        subject_id: str_field(d, "subject_id")?,
        email: opt_str(d, "email"),
        linked_at: date(d, "linked_at")?,
        last_used_at: opt_date(d, "last_used_at"),
    })
}

fn state_from(d: &Document) -> Result<OAuthState, StoreError> {
    let mode = str_field(d, "mode")?;
    Ok(OAuthState {
        id: id_string(d)?,
        provider: str_field(d, "provider")?,
        code_verifier: str_field(d, "code_verifier")?,
        nonce: str_field(d, "nonce")?,
        redirect_to: str_field(d, "redirect_to")?,
        mode: OAuthMode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown oauth mode {mode:?}")))?,
        linking_user_id: opt_str(d, "linking_user_id"),
        created_at: date(d, "created_at")?,
        expires_at: date(d, "expires_at")?,
        result_token: opt_str(d, "result_token"),
        result_was_new: flag(d, "result_was_new", false),
    })
}

#[async_trait]
impl OAuthStore for MongoStore {
    async fn identity(&self, provider: &str, subject: &str) -> Result<Option<OAuthIdentity>, StoreError> {
        let found = self
            .identities
            .find_one(doc! { "provider": provider, "subject_id": subject })
            .await
            .map_err(map_err)?;
        found.as_ref().map(identity_from).transpose()
    }

    async fn identities_of(&self, user_id: &str) -> Result<Vec<OAuthIdentity>, StoreError> {
        let docs: Vec<Document> = self
            .identities
            .find(doc! { "user_id": user_id })
            .sort(doc! { "linked_at": 1, "_id": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.iter().map(identity_from).collect()
    }

    async fn link(&self, i: &OAuthIdentity) -> Result<OAuthIdentity, StoreError> {
        let id = ObjectId::new();
        let mut d = doc! {
            "_id": id,
            "user_id": &i.user_id,
            "provider": &i.provider,
            "subject_id": &i.subject_id,
            "linked_at": bson_date(i.linked_at),
        };
        if let Some(e) = &i.email {
            d.insert("email", e);
        }
        if let Some(t) = i.last_used_at {
            d.insert("last_used_at", bson_date(t));
        }
        match self.identities.insert_one(d).await {
            Ok(_) => Ok(OAuthIdentity {
                id: id.to_hex(),
                ..i.clone()
            }),
            Err(e) if is_duplicate(&e) => {
                let taken = self.identity(&i.provider, &i.subject_id).await?.is_some();
                Err(StoreError::Conflict(
                    if taken { "provider_subject" } else { "user_provider" }.into(),
                ))
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn unlink(&self, user_id: &str, provider: &str, keep_one: bool) -> Result<Unlinked, StoreError> {
        // Count-then-delete under the account's lease, so two unlinks cannot both pass the
        // count (there are no multi-document transactions without a replica set).
        let now = regstack_core::time::from_micros(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64),
        );
        self.leased(&format!("oauth-links:{user_id}"), now, async {
            let links = self
                .identities
                .count_documents(doc! { "user_id": user_id })
                .await
                .map_err(map_err)?;
            let mine = doc! { "user_id": user_id, "provider": provider };
            if self.identities.find_one(mine.clone()).await.map_err(map_err)?.is_none() {
                return Ok(Unlinked::NotLinked);
            }
            if keep_one && links <= 1 {
                return Ok(Unlinked::LastMethod);
            }
            self.identities.delete_one(mine).await.map_err(map_err)?;
            Ok(Unlinked::Removed)
        })
        .await
    }

    async fn touch(&self, identity_id: &str, now: Timestamp) -> Result<(), StoreError> {
        self.identities
            .update_one(
                id_filter(identity_id),
                doc! { "$set": { "last_used_at": bson_date(now) } },
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn put_state(&self, s: &OAuthState) -> Result<(), StoreError> {
        let mut d = doc! {
            "_id": &s.id,
            "provider": &s.provider,
            "code_verifier": &s.code_verifier,
            "nonce": &s.nonce,
            "redirect_to": &s.redirect_to,
            "mode": s.mode.as_str(),
            "created_at": bson_date(s.created_at),
            "expires_at": bson_date(s.expires_at),
            "result_was_new": s.result_was_new,
        };
        if let Some(u) = &s.linking_user_id {
            d.insert("linking_user_id", u);
        }
        if let Some(t) = &s.result_token {
            d.insert("result_token", t);
        }
        self.states
            .replace_one(doc! { "_id": &s.id }, d)
            .upsert(true)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn take_waiting_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        let found = self
            .states
            .find_one_and_delete(doc! { "_id": id, "result_token": Bson::Null })
            .await
            .map_err(map_err)?;
        found.as_ref().map(state_from).transpose()
    }

    async fn take_completed_state(&self, id: &str) -> Result<Option<OAuthState>, StoreError> {
        let found = self
            .states
            .find_one_and_delete(doc! { "_id": id, "result_token": { "$type": "string" } })
            .await
            .map_err(map_err)?;
        found.as_ref().map(state_from).transpose()
    }
}

fn push_from(d: &Document) -> Result<PushSubscription, StoreError> {
    Ok(PushSubscription {
        id: id_string(d)?,
        user_id: str_field(d, "user_id")?,
        endpoint: str_field(d, "endpoint")?,
        p256dh: str_field(d, "p256dh")?,
        auth: str_field(d, "auth")?,
        created_at: date(d, "created_at")?,
    })
}

/// Single-document writes: the upsert by (user, endpoint) under its unique index, then the
/// trim of the others past the newest `limit - 1`. Each write is visible at once and every
/// subscribe trims after its own upsert, so after racing subscribes the count settles at the
/// limit.
#[async_trait]
impl PushSubscriptionStore for MongoStore {
    async fn subscribe(&self, s: &PushSubscription, limit: usize) -> Result<(), StoreError> {
        self.push
            .update_one(
                doc! { "user_id": &s.user_id, "endpoint": &s.endpoint },
                doc! {
                    "$set": { "p256dh": &s.p256dh, "auth": &s.auth, "created_at": bson_date(s.created_at) },
                    "$setOnInsert": { "_id": &s.id },
                },
            )
            .upsert(true)
            .await
            .map_err(map_err)?;
        let past: Vec<Document> = self
            .push
            .find(doc! { "user_id": &s.user_id, "endpoint": { "$ne": &s.endpoint } })
            .sort(doc! { "created_at": -1, "_id": -1 })
            .skip(
                u64::try_from(limit.saturating_sub(1))
                    .unwrap_or(u64::MAX)
                    .min(i64::MAX as u64),
            )
            .projection(doc! { "_id": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        if !past.is_empty() {
            let ids: Vec<Bson> = past.iter().filter_map(|d| d.get("_id").cloned()).collect();
            self.push
                .delete_many(doc! { "_id": { "$in": ids } })
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn subscriptions(&self, user_id: &str) -> Result<Vec<PushSubscription>, StoreError> {
        let docs: Vec<Document> = self
            .push
            .find(doc! { "user_id": user_id })
            .sort(doc! { "created_at": 1, "_id": 1 })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.iter().map(push_from).collect()
    }

    async fn unsubscribe(&self, user_id: &str, endpoint: &str) -> Result<bool, StoreError> {
        Ok(self
            .push
            .delete_one(doc! { "user_id": user_id, "endpoint": endpoint })
            .await
            .map_err(map_err)?
            .deleted_count
            > 0)
    }
}

fn refresh_from(d: &Document) -> Result<RefreshToken, StoreError> {
    Ok(RefreshToken {
        id: id_string(d)?,
        user_id: str_field(d, "user_id")?,
        family_id: str_field(d, "family_id")?,
        token_hash: str_field(d, "token_hash")?,
        access_jti: str_field(d, "access_jti")?,
        created_at: date(d, "created_at")?,
        expires_at: date(d, "expires_at")?,
        used_at: opt_date(d, "used_at"),
        revoked: flag(d, "revoked", false),
    })
}

fn refresh_doc(r: &RefreshToken) -> Document {
    let mut d = doc! {
        "_id": &r.id,
        "user_id": &r.user_id,
        "family_id": &r.family_id,
        "token_hash": &r.token_hash,
        "access_jti": &r.access_jti,
        // Rounded up, as the revoke cutoff is (docs/wire.md, "Decision 7 (16)"): a family
        // started just after a cutoff never reads as older than it.
        "created_at": bson_date_ceil(r.created_at),
        "expires_at": bson_date(r.expires_at),
        "revoked": r.revoked,
    };
    if let Some(u) = r.used_at {
        d.insert("used_at", bson_date(u));
    }
    d
}

/// Single-document writes only: a rotation spends the token with `findOneAndUpdate` (one
/// winner), then writes the successor, then looks whether the family was killed meanwhile
/// and, if so, kills the successor too (answering it `revoked`); a killer marks every token
/// it finds. Whichever order the two land in, the successor ends up dead with its family.
#[async_trait]
impl RefreshTokenStore for MongoStore {
    async fn put(&self, r: &RefreshToken) -> Result<(), StoreError> {
        self.refresh.insert_one(refresh_doc(r)).await.map_err(map_err)?;
        Ok(())
    }

    async fn rotate(&self, token_hash: &str, next: &NextRefresh, now: Timestamp) -> Result<Rotation, StoreError> {
        let spent = self
            .refresh
            .find_one_and_update(
                doc! {
                    "token_hash": token_hash,
                    "used_at": Bson::Null,
                    "revoked": false,
                    "expires_at": { "$gt": bson_date(now) },
                },
                doc! { "$set": { "used_at": bson_date(now) } },
            )
            .await
            .map_err(map_err)?;
        let Some(previous) = spent.as_ref().map(refresh_from).transpose()? else {
            let found = self
                .refresh
                .find_one(doc! { "token_hash": token_hash })
                .await
                .map_err(map_err)?;
            let Some(previous) = found.as_ref().map(refresh_from).transpose()? else {
                return Ok(Rotation::Unknown);
            };
            return Ok(Rotation::refused(previous));
        };
        let mut successor = next.successor_of(&previous, now);
        self.refresh
            .insert_one(refresh_doc(&successor))
            .await
            .map_err(map_err)?;
        let killed = self
            .refresh
            .find_one(doc! { "family_id": &successor.family_id, "revoked": true })
            .await
            .map_err(map_err)?;
        if killed.is_some() {
            self.refresh
                .update_one(doc! { "_id": &successor.id }, doc! { "$set": { "revoked": true } })
                .await
                .map_err(map_err)?;
            // Still the one rotation that won; what it hands out is dead with its family.
            successor.revoked = true;
        }
        Ok(Rotation::Rotated {
            previous,
            next: successor,
        })
    }

    async fn revoke_family(&self, family_id: &str) -> Result<Vec<FamilyMember>, StoreError> {
        self.refresh
            .update_many(doc! { "family_id": family_id }, doc! { "$set": { "revoked": true } })
            .await
            .map_err(map_err)?;
        let docs: Vec<Document> = self
            .refresh
            .find(doc! { "family_id": family_id })
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.iter()
            .map(|d| {
                Ok(FamilyMember {
                    access_jti: str_field(d, "access_jti")?,
                    issued_at: date(d, "created_at")?,
                })
            })
            .collect()
    }

    async fn family_of_session(&self, access_jti: &str) -> Result<Option<String>, StoreError> {
        let found = self
            .refresh
            .find_one(doc! { "access_jti": access_jti })
            .await
            .map_err(map_err)?;
        found.map(|d| str_field(&d, "family_id")).transpose()
    }
}

/// The TTL indexes already expire these documents on a real MongoDB (its monitor runs about
/// once a minute); the sweep deletes them at once and also serves servers without TTL
/// support, so the same guarantee holds on every backend.
#[async_trait]
impl Sweeper for MongoStore {
    async fn purge_expired(&self, now: Timestamp, attempts_before: Timestamp) -> Result<Purged, StoreError> {
        let older = |field: &str, at: Timestamp, inclusive: bool| {
            let op = if inclusive { "$lte" } else { "$lt" };
            doc! { field: { op: bson_date(at) } }
        };
        let delete = |c: &Collection<Document>, filter: Document| {
            let c = c.clone();
            async move { c.delete_many(filter).await.map(|r| r.deleted_count).map_err(map_err) }
        };
        Ok(Purged {
            attempts: delete(&self.attempts, older("when", attempts_before, false)).await?,
            pending: delete(&self.pending, older("expires_at", now, true)).await?,
            revocations: delete(&self.blacklist, older("exp", now, true)).await?,
            codes: delete(&self.mfa, older("expires_at", now, true)).await?,
            oauth_states: delete(&self.states, older("expires_at", now, true)).await?,
            refresh_tokens: delete(&self.refresh, older("expires_at", now, true)).await?,
        })
    }
}
