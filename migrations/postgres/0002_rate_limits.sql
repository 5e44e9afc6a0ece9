-- Additive (Decision 8): per-IP rate-limit counters shared by every instance on this database.
CREATE TABLE IF NOT EXISTS regstack_rate_limits (
	key VARCHAR(255) NOT NULL,
	count BIGINT NOT NULL,
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_regstack_rate_limits PRIMARY KEY (key)
);
CREATE INDEX IF NOT EXISTS ix_regstack_rate_limits_expires_at ON regstack_rate_limits (expires_at);
