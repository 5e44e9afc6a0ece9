-- Additive: case-insensitive email lookups (Decision 7 (11)) use this index instead of scanning
-- the table, so a miss costs the same as a hit.
CREATE INDEX IF NOT EXISTS ix_users_email_lower ON users (lower(email));
CREATE INDEX IF NOT EXISTS ix_pending_email_lower ON pending_registrations (lower(email));
