-- Additive: the address lower-cased the way regstack lower-cases input (Unicode), indexed.
-- Case-insensitive lookups match it exactly; SQL's lower() folds ASCII letters only, so it
-- cannot find an adopted `Ärger@…` from the input `ärger@…`. Rows of ASCII addresses get
-- their key here; the others are keyed by regstack at start-up (natively) or by the hourly
-- sweep (edge), and until then match through lower(email) as before.
ALTER TABLE users ADD COLUMN email_key VARCHAR(320);
ALTER TABLE pending_registrations ADD COLUMN email_key VARCHAR(320);
UPDATE users SET email_key = lower(email) WHERE email_key IS NULL AND email NOT GLOB '*[^ -~]*';
UPDATE pending_registrations SET email_key = lower(email) WHERE email_key IS NULL AND email NOT GLOB '*[^ -~]*';
CREATE INDEX IF NOT EXISTS ix_users_email_key ON users (email_key);
CREATE INDEX IF NOT EXISTS ix_pending_email_key ON pending_registrations (email_key);
