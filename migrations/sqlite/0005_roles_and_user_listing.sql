-- Additive (docs/wire.md, "Decision 11"): each account's role (seed 004's
-- `default_user_role`). Rows written before, or by regstack 0.9.3 afterwards, get `user`.
ALTER TABLE users ADD COLUMN role VARCHAR(64) NOT NULL DEFAULT 'user';
-- The admin user list pages newest first; this index serves that order without a sort.
CREATE INDEX IF NOT EXISTS ix_users_created_at ON users (created_at, id);
