-- Additive: the address lower-cased the way regstack lower-cases input (Unicode), indexed.
-- Case-insensitive lookups match it exactly. lower() follows the database's locale (which
-- may fold ASCII only, or fold `I` to `ı`), so the key of an ASCII address is lower-cased
-- under the C collation, exactly as regstack lower-cases ASCII. Rows of ASCII addresses get their key here; regstack keys the
-- others at start-up, and until then they match through lower(email) as before.
ALTER TABLE users ADD COLUMN IF NOT EXISTS email_key VARCHAR(320);
ALTER TABLE pending_registrations ADD COLUMN IF NOT EXISTS email_key VARCHAR(320);
UPDATE users SET email_key = lower(email COLLATE "C") WHERE email_key IS NULL AND email !~ '[^ -~]';
UPDATE pending_registrations SET email_key = lower(email COLLATE "C") WHERE email_key IS NULL AND email !~ '[^ -~]';
CREATE INDEX IF NOT EXISTS ix_users_email_key ON users (email_key);
CREATE INDEX IF NOT EXISTS ix_pending_email_key ON pending_registrations (email_key);
