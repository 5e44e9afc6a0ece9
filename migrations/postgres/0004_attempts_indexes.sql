-- Additive: clearing an address's login failures matches it in any case (adopted rows may be
-- mixed-case), and the sweep deletes failures older than the lockout window; both use an
-- index instead of scanning a table that every failed login writes to.
CREATE INDEX IF NOT EXISTS ix_login_attempts_email_lower ON login_attempts (lower(email));
CREATE INDEX IF NOT EXISTS ix_login_attempts_when ON login_attempts ("when");
