-- regstack schema, identical to regstack 0.9.3 at Alembic head 0003 on PostgreSQL (contract
-- §4.2). Idempotent, so a database created by regstack 0.9.3 is adopted in place.

CREATE TABLE IF NOT EXISTS users (
	id VARCHAR(36) NOT NULL,
	email VARCHAR(320) NOT NULL,
	hashed_password TEXT,
	is_active BOOLEAN NOT NULL,
	is_verified BOOLEAN NOT NULL,
	is_superuser BOOLEAN NOT NULL,
	full_name VARCHAR(200),
	phone_number VARCHAR(20),
	is_mfa_enabled BOOLEAN NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	last_login TIMESTAMP WITH TIME ZONE,
	tokens_invalidated_after TIMESTAMP WITH TIME ZONE,
	CONSTRAINT pk_users PRIMARY KEY (id),
	CONSTRAINT email_unique UNIQUE (email)
);

CREATE TABLE IF NOT EXISTS pending_registrations (
	id VARCHAR(36) NOT NULL,
	email VARCHAR(320) NOT NULL,
	hashed_password TEXT NOT NULL,
	full_name VARCHAR(200),
	token_hash VARCHAR(64) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_pending_registrations PRIMARY KEY (id),
	CONSTRAINT pending_email_unique UNIQUE (email),
	CONSTRAINT pending_token_unique UNIQUE (token_hash)
);
CREATE INDEX IF NOT EXISTS ix_pending_expires_at ON pending_registrations (expires_at);

CREATE TABLE IF NOT EXISTS token_blacklist (
	id SERIAL NOT NULL,
	jti VARCHAR(64) NOT NULL,
	exp TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_token_blacklist PRIMARY KEY (id),
	CONSTRAINT jti_unique UNIQUE (jti)
);
CREATE INDEX IF NOT EXISTS ix_blacklist_exp ON token_blacklist (exp);

CREATE TABLE IF NOT EXISTS login_attempts (
	id SERIAL NOT NULL,
	email VARCHAR(320) NOT NULL,
	"when" TIMESTAMP WITH TIME ZONE NOT NULL,
	ip VARCHAR(64),
	CONSTRAINT pk_login_attempts PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_login_attempts_email_when ON login_attempts (email, "when");

CREATE TABLE IF NOT EXISTS mfa_codes (
	id SERIAL NOT NULL,
	user_id VARCHAR(36) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	code_hash VARCHAR(64) NOT NULL,
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
	attempts INTEGER NOT NULL,
	max_attempts INTEGER NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT pk_mfa_codes PRIMARY KEY (id),
	CONSTRAINT user_kind_unique UNIQUE (user_id, kind),
	CONSTRAINT ck_mfa_codes_ck_mfa_codes_attempts_nonneg CHECK (attempts >= 0)
);
CREATE INDEX IF NOT EXISTS ix_mfa_codes_expires_at ON mfa_codes (expires_at);

CREATE TABLE IF NOT EXISTS oauth_identities (
	id VARCHAR(36) NOT NULL,
	user_id VARCHAR(36) NOT NULL,
	provider VARCHAR(32) NOT NULL,
	subject_id VARCHAR(255) NOT NULL,
	email VARCHAR(320),
	linked_at TIMESTAMP WITH TIME ZONE NOT NULL,
	last_used_at TIMESTAMP WITH TIME ZONE,
	CONSTRAINT pk_oauth_identities PRIMARY KEY (id),
	CONSTRAINT provider_subject_unique UNIQUE (provider, subject_id),
	CONSTRAINT user_provider_unique UNIQUE (user_id, provider)
);

CREATE TABLE IF NOT EXISTS oauth_states (
	id VARCHAR(64) NOT NULL,
	provider VARCHAR(32) NOT NULL,
	code_verifier TEXT NOT NULL,
	nonce VARCHAR(64) NOT NULL,
	redirect_to TEXT NOT NULL,
	mode VARCHAR(16) NOT NULL,
	linking_user_id VARCHAR(36),
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
	result_token TEXT,
	result_was_new BOOLEAN DEFAULT false NOT NULL,
	CONSTRAINT pk_oauth_states PRIMARY KEY (id),
	CONSTRAINT ck_oauth_states_ck_oauth_states_mode_valid CHECK (mode IN ('signin', 'link'))
);
CREATE INDEX IF NOT EXISTS ix_oauth_states_expires_at ON oauth_states (expires_at);

CREATE TABLE IF NOT EXISTS alembic_version (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version (version_num) SELECT '0003' WHERE NOT EXISTS (SELECT 1 FROM alembic_version);
