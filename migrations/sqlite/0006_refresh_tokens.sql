-- Additive (docs/wire.md, "Decision 11"; seed 004's refresh tokens, docs/refresh-tokens.md):
-- one row per refresh token, stored as its SHA-256. A family is one sign-in's chain of
-- rotations; `used_at` marks a rotated token (presenting it again kills the family) and
-- `access_jti` the session minted beside it, so killing a family revokes those too.
CREATE TABLE IF NOT EXISTS refresh_tokens (
	id VARCHAR(36) NOT NULL,
	user_id VARCHAR(36) NOT NULL,
	family_id VARCHAR(36) NOT NULL,
	token_hash VARCHAR(64) NOT NULL,
	access_jti VARCHAR(64) NOT NULL,
	created_at DATETIME NOT NULL,
	expires_at DATETIME NOT NULL,
	used_at DATETIME,
	revoked BOOLEAN NOT NULL DEFAULT 0,
	CONSTRAINT pk_refresh_tokens PRIMARY KEY (id),
	CONSTRAINT refresh_token_hash_unique UNIQUE (token_hash)
);
CREATE INDEX IF NOT EXISTS ix_refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS ix_refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX IF NOT EXISTS ix_refresh_tokens_access_jti ON refresh_tokens (access_jti);
CREATE INDEX IF NOT EXISTS ix_refresh_tokens_expires_at ON refresh_tokens (expires_at);
