-- Additive (docs/wire.md, "Decision 11"; seed 004's Web Push sign-in alerts,
-- docs/web-push.md): one row per browser a user subscribed. `p256dh` and `auth` are the
-- browser's public key and secret (base64url) that each alert is encrypted to. One browser
-- subscribes once per account; the same browser may serve several accounts.
CREATE TABLE IF NOT EXISTS push_subscriptions (
	id VARCHAR(36) NOT NULL,
	user_id VARCHAR(36) NOT NULL,
	endpoint TEXT NOT NULL,
	p256dh VARCHAR(100) NOT NULL,
	auth VARCHAR(30) NOT NULL,
	created_at DATETIME NOT NULL,
	CONSTRAINT pk_push_subscriptions PRIMARY KEY (id),
	CONSTRAINT push_subscription_unique UNIQUE (user_id, endpoint)
);
