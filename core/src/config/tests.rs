use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[regstack_macros::dual_test]
fn a_relay_url_is_https_unless_it_stays_on_this_machine() {
    let with = |url: &str| {
        let e = env(&[
            ("REGSTACK_EMAIL__BACKEND", "relay"),
            ("REGSTACK_RELAY_URL", url),
            ("REGSTACK_RELAY_SECRET", "relay-secret-0123456789-0123456789-abc"),
        ]);
        load(Sources {
            env: &e,
            ..Sources::default()
        })
        .map(|l| l.config.relay_url)
    };
    for ok in [
        "https://mail.example.com/api/auth/relay",
        "http://127.0.0.1:8000/api/auth/relay",
        "http://127.5.0.1/relay",
        "http://localhost:8000/relay",
        "http://[::1]:8000/relay",
        "http://LOCALHOST",
    ] {
        assert_eq!(with(ok).unwrap().as_deref(), Some(ok), "{ok}");
    }
    for refused in [
        "http://mail.example.com/relay",
        "http://10.0.0.1/relay",
        "http://127.0.0.1.evil.example/relay",
        "http://localhost.evil.example/relay",
        "http://127.0.0.1@evil.example/relay",
        "http://mail.example.com\\@127.0.0.1/relay",
        "ftp://127.0.0.1/relay",
        "mail.example.com",
    ] {
        assert!(with(refused).is_err(), "{refused}");
    }
}

#[regstack_macros::dual_test]
fn placeholder_secrets_are_refused() {
    for secret in [
        "change-me-to-64-random-characters-change-me-to-64-random-characters",
        "CHANGEME_CHANGEME_CHANGEME_CHANGEME",
        "your-secret-key-goes-here-0123456789",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "abcabcabcabcabcabcabcabcabcabcabcabc",
    ] {
        let config = Config {
            jwt_secret: secret.into(),
            ..Config::default()
        };
        match config.validate() {
            Err(ConfigError::Invalid { field, .. }) => assert_eq!(field, "jwt_secret", "{secret}"),
            other => panic!("{secret} was accepted: {other:?}"),
        }
    }
    let random = Config {
        jwt_secret: "q3Vx9-Lr0aZt_7mWcBn2KpHs5YdE8uJf".into(),
        ..Config::default()
    };
    assert_eq!(random.validate(), Ok(()));
    let relay = Config {
        relay_secret: Some("r".repeat(40)),
        ..Config::default()
    };
    assert!(relay.validate().is_err());
}

#[regstack_macros::dual_test]
fn smtp_credentials_never_travel_in_clear_text_off_this_machine() {
    let smtp = |host: &str, port: u16, starttls: bool, user: Option<&str>| {
        let mut c = Config::default();
        c.email.backend = EmailBackend::Smtp;
        c.email.smtp_host = Some(host.into());
        c.email.smtp_port = port;
        c.email.smtp_starttls = starttls;
        c.email.smtp_username = user.map(str::to_string);
        c.email.smtp_password = user.map(|_| "pw".to_string());
        c.validate()
    };
    let refused = smtp("mail.example.com", 587, false, Some("app"));
    assert!(
        matches!(&refused, Err(ConfigError::Invalid { field, .. }) if field == "email.smtp_starttls"),
        "{refused:?}"
    );
    assert_eq!(smtp("mail.example.com", 587, true, Some("app")), Ok(()));
    assert_eq!(smtp("mail.example.com", 465, false, Some("app")), Ok(()));
    assert_eq!(smtp("127.0.0.1", 2525, false, Some("app")), Ok(()));
    assert_eq!(
        smtp("mail.example.com", 25, false, None),
        Ok(()),
        "no credentials to leak"
    );
}

#[regstack_macros::dual_test]
fn debug_output_redacts_secrets() {
    let mut config = Config {
        jwt_secret: "q3Vx9-Lr0aZt_7mWcBn2KpHs5YdE8uJf".into(),
        relay_secret: Some("relay-q3Vx9-Lr0aZt_7mWcBn2KpHs5YdE".into()),
        ..Config::default()
    };
    config.email.smtp_password = Some("smtp-pw-q3Vx9".into());
    config.sms.twilio_auth_token = Some("twilio-q3Vx9".into());
    config.oauth.google_client_secret = Some("google-q3Vx9".into());
    config.database_url = "postgresql://app:pg-q3Vx9@db.internal/regstack".into();
    let shown = format!("{config:?}");
    assert!(!shown.contains("q3Vx9"), "{shown}");
    assert!(
        shown.contains("[redacted]") && shown.contains("jwt_ttl_seconds"),
        "{shown}"
    );
    assert!(
        shown.contains("postgresql://[redacted]@db.internal/regstack"),
        "{shown}"
    );
}

#[regstack_macros::dual_test]
fn defaults_match_the_contract() {
    let c = load(Sources::default()).unwrap().config;
    assert_eq!(c.app_name, "RegStack");
    assert_eq!(c.jwt_ttl_seconds, 7200);
    assert_eq!(c.login_lockout_threshold, 5);
    assert_eq!(c.email.backend, EmailBackend::Console);
    assert_eq!(c.sms.backend, SmsBackend::Null);
    assert_eq!(c.api_prefix, "/api/auth");
    assert!(c.require_verification);
    assert_eq!(c.password_hash_memory_kib, 19_456);
}

#[regstack_macros::dual_test]
fn precedence_is_toml_then_secrets_then_env_then_overrides() {
    let toml = "app_name = \"FromToml\"\njwt_ttl_seconds = 100\nbase_url = \"http://toml\"\n[email]\nbackend = \"smtp\"\nsmtp_host = \"mail\"\n";
    let secrets = "# comment\nREGSTACK_JWT_TTL_SECONDS='200'\nREGSTACK_APP_NAME=\"FromSecrets\"\n";
    let e = env(&[
        ("regstack_app_name", "FromEnv"),
        ("REGSTACK_EMAIL__SMTP_PORT", "2525"),
        ("OTHER", "x"),
    ]);
    let o = vec![("app_name".to_string(), Value::from("FromOverride"))];
    let c = load(Sources {
        toml: Some(toml),
        secrets_env: Some(secrets),
        env: &e,
        overrides: &o,
    })
    .unwrap()
    .config;
    assert_eq!(c.app_name, "FromOverride");
    assert_eq!(c.jwt_ttl_seconds, 200);
    assert_eq!(c.base_url, "http://toml");
    assert_eq!(c.email.backend, EmailBackend::Smtp);
    assert_eq!(c.email.smtp_port, 2525);
    let c = load(Sources {
        toml: Some(toml),
        secrets_env: Some(secrets),
        env: &e,
        overrides: &[],
    })
    .unwrap()
    .config;
    assert_eq!(c.app_name, "FromEnv");
}

#[regstack_macros::dual_test]
fn arrays_unknown_keys_and_booleans() {
    let toml = "extra_template_dirs = [\"a\", \"b\"]\ncookie_domain = \"x\"\nlogin_max_per_minute = 3\n";
    let e = env(&[("REGSTACK_ENABLE_ADMIN_ROUTER", "yes"), ("REGSTACK_NOPE", "1")]);
    let loaded = load(Sources {
        toml: Some(toml),
        env: &e,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(loaded.config.extra_template_dirs, vec!["a", "b"]);
    assert!(loaded.config.enable_admin_router);
    // Three unknown keys; `enable_admin_router` does something now.
    assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
    let e = env(&[("REGSTACK_EXTRA_TEMPLATE_DIRS", "[\"/x\"]")]);
    let c = load(Sources {
        env: &e,
        ..Default::default()
    })
    .unwrap()
    .config;
    assert_eq!(c.extra_template_dirs, vec!["/x"]);
}

#[regstack_macros::dual_test]
fn bad_values_are_named() {
    let cases: &[(&str, &str, &str)] = &[
        ("REGSTACK_JWT_SECRET", "short", "jwt_secret"),
        ("REGSTACK_JWT_TTL_SECONDS", "10", "jwt_ttl_seconds"),
        ("REGSTACK_JWT_TTL_SECONDS", "ten", "jwt_ttl_seconds"),
        ("REGSTACK_SMS_CODE_LENGTH", "11", "sms_code_length"),
        ("REGSTACK_DATABASE_URL", "mysql://x", "database_url"),
        ("REGSTACK_LOGIN_RATE_LIMIT", "5/fortnight", "login_rate_limit"),
        ("REGSTACK_REQUIRE_VERIFICATION", "maybe", "require_verification"),
        ("REGSTACK_JWT_ALGORITHM", "RS256", "jwt_algorithm"),
    ];
    for (k, v, field) in cases {
        let e = env(&[(k, v)]);
        match load(Sources {
            env: &e,
            ..Default::default()
        }) {
            Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(&f, field),
            other => panic!("{k}={v}: {other:?}"),
        }
    }
    assert!(matches!(
        load(Sources {
            toml: Some("= broken"),
            ..Default::default()
        }),
        Err(ConfigError::Toml(_))
    ));
}

#[regstack_macros::dual_test]
fn database_urls() {
    assert_eq!(
        database_kind("sqlite+aiosqlite:///./regstack.db").unwrap(),
        DatabaseKind::Sqlite("./regstack.db".into())
    );
    assert_eq!(
        database_kind("sqlite+aiosqlite:////var/lib/x.db").unwrap(),
        DatabaseKind::Sqlite("/var/lib/x.db".into())
    );
    assert_eq!(
        database_kind("sqlite:///:memory:").unwrap(),
        DatabaseKind::Sqlite(":memory:".into())
    );
    assert_eq!(
        database_kind("postgresql+asyncpg://u:p@h/db").unwrap(),
        DatabaseKind::Postgres("postgresql://u:p@h/db".into())
    );
    assert!(matches!(
        database_kind("mongodb://h/db").unwrap(),
        DatabaseKind::Mongo(_)
    ));
}

#[regstack_macros::dual_test]
fn links_follow_prefix_and_templates() {
    let mut c = Config {
        base_url: "http://h:1/".into(),
        ..Config::default()
    };
    assert_eq!(c.verify_url("T"), "http://h:1/verify?token=T");
    c.enable_ui_router = true;
    assert_eq!(c.password_reset_url("T"), "http://h:1/account/reset-password?token=T");
    c.email_link_prefix = Some("/app".into());
    assert_eq!(c.email_change_url("T"), "http://h:1/app/confirm-email-change?token=T");
    c.verify_url_template = Some("{base_url}/v/{token}?x={other}".into());
    assert_eq!(c.verify_url("T"), "http://h:1/v/T?x={other}");
    assert_eq!(c.email_from(), "RegStack <noreply@example.com>");
    assert_eq!(
        redact_token("http://x/verify?token=a+b", "a+b"),
        "http://x/verify?token=[REDACTED]"
    );
}

#[regstack_macros::dual_test]
fn keys_that_do_nothing_yet_are_named_in_warnings() {
    let loaded = load(Sources {
        toml: Some("enable_admin_router = true\nbrand_tagline = \"Hi\"\nadmin_contact_url = \"https://x\"\n[oauth]\ngoogle_client_id = \"x\"\n"),
        ..Default::default()
    })
    .unwrap();
    let named = |key: &str| {
        loaded
            .warnings
            .iter()
            .any(|w| w.contains(&format!("`{key}`")) && w.contains("no effect yet"))
    };
    assert!(
        !named("enable_admin_router"),
        "the admin API is built: {:?}",
        loaded.warnings
    );
    assert!(named("admin_contact_url"), "{:?}", loaded.warnings);
    assert!(named("brand_tagline"), "{:?}", loaded.warnings);
    let with_pages = load(Sources {
        toml: Some("enable_ui_router = true\nbrand_tagline = \"Hi\"\n"),
        ..Default::default()
    })
    .unwrap();
    assert!(
        with_pages.warnings.is_empty(),
        "the pages show it: {:?}",
        with_pages.warnings
    );
    assert!(named("[oauth]"), "{:?}", loaded.warnings);
    assert!(
        !named("enable_oauth"),
        "only what is set is named: {:?}",
        loaded.warnings
    );
    assert!(
        load(Sources::default()).unwrap().warnings.is_empty(),
        "the defaults warn about nothing"
    );
}

#[regstack_macros::dual_test]
fn typed_values_refuse_unknown_names_listing_the_accepted_ones() {
    for (name, value, field, listed) in [
        (
            "REGSTACK_EMAIL__BACKEND",
            "sendgrid",
            "email.backend",
            "`console`, `smtp`, `ses`, `relay`",
        ),
        (
            "REGSTACK_SMS__BACKEND",
            "pigeon",
            "sms.backend",
            "`null`, `sns`, `twilio`, `relay`",
        ),
        (
            "REGSTACK_JWT_ALGORITHM",
            "RS256",
            "jwt_algorithm",
            "`HS256`, `HS384`, `HS512`",
        ),
        ("REGSTACK_TRANSPORT", "cookie", "transport", "`bearer`"),
    ] {
        let e = load(Sources {
            env: &env(&[(name, value)]),
            ..Default::default()
        })
        .unwrap_err();
        match e {
            ConfigError::Invalid { field: f, message } => {
                assert_eq!(f, field);
                assert!(message.contains(listed), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(env_name(&["email", "smtp_password"]), "REGSTACK_EMAIL__SMTP_PASSWORD");
    assert!(env_names().contains(&"REGSTACK_JWT_SECRET".to_string()));
}

#[regstack_macros::dual_test]
fn seed_004_registration_switch_and_default_role() {
    let e = env(&[
        ("REGSTACK_ENABLE_REGISTRATION", "false"),
        ("REGSTACK_DEFAULT_USER_ROLE", "member"),
    ]);
    let loaded = load(Sources {
        env: &e,
        ..Default::default()
    })
    .unwrap();
    assert!(
        !loaded.config.allow_registration,
        "enable_registration is allow_registration"
    );
    assert_eq!(loaded.config.default_user_role, "member");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(crate::config::env_names().contains(&"REGSTACK_ENABLE_REGISTRATION".to_string()));
    let from_toml = load(Sources {
        toml: Some("enable_registration = false\n"),
        ..Default::default()
    })
    .unwrap();
    assert!(!from_toml.config.allow_registration);
    for bad in ["", "has space", "-lead", &"x".repeat(65), "rôle"] {
        let e = env(&[("REGSTACK_DEFAULT_USER_ROLE", bad)]);
        let err = load(Sources {
            env: &e,
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("default_user_role"), "{bad:?}: {err}");
    }
}

#[regstack_macros::dual_test]
fn webhooks_need_https_or_loopback_and_a_real_secret() {
    let secret = "webhook-secret-0123456789-abcdefghijklmnop";
    let check = |url: &str, secret: Option<&str>| {
        let mut pairs = vec![("REGSTACK_WEBHOOK_URL", url)];
        if let Some(s) = secret {
            pairs.push(("REGSTACK_WEBHOOK_SECRET", s));
        }
        let e = env(&pairs);
        load(Sources {
            env: &e,
            ..Default::default()
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    assert_eq!(check("https://hooks.example.com/regstack", Some(secret)), Ok(()));
    assert_eq!(check("http://127.0.0.1:9000/hook", Some(secret)), Ok(()));
    assert!(check("http://hooks.example.com/", Some(secret))
        .unwrap_err()
        .contains("webhook_url"));
    assert!(check("https://hooks.example.com/", Some("short"))
        .unwrap_err()
        .contains("webhook_secret"));
    assert!(check("https://hooks.example.com/", None)
        .unwrap_err()
        .contains("webhook_secret"));
}

#[regstack_macros::dual_test]
fn generic_providers_load_from_toml_and_env_with_their_secrets_apart() {
    let toml = "enable_oauth = true\n[oauth.providers.corp]\nissuer = \"https://id.corp.example\"\nclient_id = \"rs\"\ndisplay_name = \"Corp SSO\"\n";
    let vars = env(&[("REGSTACK_OAUTH__PROVIDERS__CORP__CLIENT_SECRET", "corp-secret-q3Vx9")]);
    let loaded = load(Sources {
        toml: Some(toml),
        env: &vars,
        ..Default::default()
    })
    .unwrap();
    let corp = &loaded.config.oauth.providers["corp"];
    assert_eq!(corp.issuer, "https://id.corp.example");
    assert_eq!(corp.display_name.as_deref(), Some("Corp SSO"));
    assert_eq!(corp.client_secret.as_deref(), Some("corp-secret-q3Vx9"));
    assert_eq!(corp.scopes, ["openid", "email", "profile"]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert!(!format!("{corp:?}").contains("corp-secret"), "Debug hides the secret");

    // The whole table as JSON in one variable (how the edge is given it), secrets apart.
    let vars = env(&[
        ("REGSTACK_ENABLE_OAUTH", "1"),
        (
            "REGSTACK_OAUTH__PROVIDERS",
            r#"{"okta": {"issuer": "https://x.okta.com", "client_id": "id"}}"#,
        ),
    ]);
    assert_eq!(
        provider_env_names(&vars),
        [
            "REGSTACK_OAUTH__PROVIDERS__OKTA__ISSUER",
            "REGSTACK_OAUTH__PROVIDERS__OKTA__DISPLAY_NAME",
            "REGSTACK_OAUTH__PROVIDERS__OKTA__CLIENT_ID",
            "REGSTACK_OAUTH__PROVIDERS__OKTA__CLIENT_SECRET",
            "REGSTACK_OAUTH__PROVIDERS__OKTA__REDIRECT_URI",
            "REGSTACK_OAUTH__PROVIDERS__OKTA__SCOPES",
            "REGSTACK_OAUTH__PROVIDERS__OKTA__AUTO_LINK_VERIFIED_EMAILS",
        ]
    );
    let refused = load(Sources {
        env: &vars,
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("REGSTACK_OAUTH__PROVIDERS__OKTA__CLIENT_SECRET"),
        "{refused}"
    );

    for (bad, why) in [
        (
            r#"{"google": {"issuer": "https://a.example", "client_id": "i", "client_secret": "s"}}"#,
            "oauth.providers.google",
        ),
        (
            r#"{"Bad Name": {"issuer": "https://a.example", "client_id": "i", "client_secret": "s"}}"#,
            "oauth.providers.bad name",
        ),
        (
            r#"{"corp": {"issuer": "http://a.example", "client_id": "i", "client_secret": "s"}}"#,
            "oauth.providers.corp.issuer",
        ),
        (
            r#"{"corp": {"issuer": "https://a.example", "client_id": "", "client_secret": "s"}}"#,
            "oauth.providers.corp.client_id",
        ),
        (
            r#"{"corp": {"issuer": "https://a.example", "client_id": "i", "client_secret": "s", "scopes": ["email"]}}"#,
            "oauth.providers.corp.scopes",
        ),
    ] {
        let vars = env(&[("REGSTACK_ENABLE_OAUTH", "true"), ("REGSTACK_OAUTH__PROVIDERS", bad)]);
        let e = load(Sources {
            env: &vars,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains(why), "{bad}: {e}");
    }
    let vars = env(&[
        ("REGSTACK_ENABLE_OAUTH", "true"),
        ("REGSTACK_OAUTH__GOOGLE_TOKEN_ENDPOINT", "http://evil.example/token"),
    ]);
    assert!(
        load(Sources {
            env: &vars,
            ..Default::default()
        })
        .is_err(),
        "provider endpoints are https"
    );
    // A callback must be served where the binding cookie is: on base_url's origin.
    for (uri, ok) in [
        ("https://app.example.com/api/auth/oauth/google/callback", true),
        ("https://id.example.com/cb", false),
        ("http://app.example.com/cb", false),
        ("/relative/cb", false),
    ] {
        let vars = env(&[
            ("REGSTACK_ENABLE_OAUTH", "true"),
            ("REGSTACK_BASE_URL", "https://app.example.com"),
            ("REGSTACK_OAUTH__GOOGLE_REDIRECT_URI", uri),
        ]);
        let loaded = load(Sources {
            env: &vars,
            ..Default::default()
        });
        assert_eq!(loaded.is_ok(), ok, "{uri}: {:?}", loaded.err());
    }
    // A leftover secret of a switched-off set-up does not stop a server; it is named.
    let vars = env(&[("REGSTACK_OAUTH__PROVIDERS__CORP__CLIENT_SECRET", "left-over-q3Vx9")]);
    let loaded = load(Sources {
        env: &vars,
        ..Default::default()
    })
    .unwrap();
    assert!(
        loaded.warnings.iter().any(|w| w.contains("[oauth]")),
        "{:?}",
        loaded.warnings
    );
    // Google with half its credentials: 0.9.3 started without the routes, and so does this.
    let vars = env(&[
        ("REGSTACK_ENABLE_OAUTH", "1"),
        ("REGSTACK_OAUTH__GOOGLE_CLIENT_ID", "id"),
    ]);
    let loaded = load(Sources {
        env: &vars,
        ..Default::default()
    })
    .unwrap();
    assert!(!loaded.config.oauth.has_providers());
    assert!(
        loaded.warnings.iter().any(|w| w.contains("google_client_secret")),
        "{:?}",
        loaded.warnings
    );
    // A name the environment could not address, and a value error that does not echo.
    let vars = env(&[
        ("REGSTACK_ENABLE_OAUTH", "1"),
        (
            "REGSTACK_OAUTH__PROVIDERS",
            r#"{"a__b": {"issuer": "https://a.example", "client_id": "i", "client_secret": "s"}}"#,
        ),
    ]);
    assert!(load(Sources {
        env: &vars,
        ..Default::default()
    })
    .is_err());
    let e = load(Sources {
        toml: Some("[oauth]\nproviders = [{ client_secret = \"hunter2-q3Vx9\" }]\n"),
        ..Default::default()
    })
    .unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[regstack_macros::dual_test]
fn seed_004_session_lifetime_in_hours_and_refresh_tokens() {
    let load_env = |pairs: &[(&str, &str)]| {
        let vars = env(pairs);
        load(Sources {
            env: &vars,
            ..Default::default()
        })
    };
    let c = load_env(&[("REGSTACK_ACCESS_TOKEN_EXPIRE_HOURS", "24")])
        .unwrap()
        .config;
    assert_eq!(c.access_token_expire_hours, 24);
    let both = load_env(&[
        ("REGSTACK_ACCESS_TOKEN_EXPIRE_HOURS", "24"),
        ("REGSTACK_JWT_TTL_SECONDS", "600"),
    ])
    .unwrap_err();
    assert!(both.to_string().contains("not both"), "{both}");
    assert!(load_env(&[("REGSTACK_ACCESS_TOKEN_EXPIRE_HOURS", "9999")]).is_err());
    let c = load_env(&[("REGSTACK_ENABLE_REFRESH_TOKENS", "true")]).unwrap().config;
    assert!(c.enable_refresh_tokens && !c.refresh_token_cookie);
    assert_eq!(c.refresh_token_expire_days, 7, "seed 004's default");
    assert!(load_env(&[("REGSTACK_REFRESH_TOKEN_EXPIRE_DAYS", "0")]).is_err());
    let off = Config::default();
    assert!(
        !off.enable_refresh_tokens && off.access_token_expire_hours == 0,
        "0.9.3's contract by default"
    );
}

#[regstack_macros::dual_test]
fn seed_004_turnstile_defaults_and_what_it_needs() {
    let load_env = |pairs: &[(&str, &str)]| {
        let vars = env(pairs);
        load(Sources {
            env: &vars,
            ..Default::default()
        })
    };
    let off = Config::default();
    assert!(!off.turnstile_enabled, "0.9.3's contract by default");
    assert!(!off.turnstile_require_on_login && off.turnstile_require_on_register);
    assert!(off.turnstile_require_on_password_change);
    assert_eq!(off.turnstile_verify_url, crate::turnstile::SITEVERIFY_URL);
    let on = [
        ("REGSTACK_TURNSTILE_ENABLED", "true"),
        ("REGSTACK_TURNSTILE_SITE_KEY", "0x4AAAAAAAsite"),
        ("REGSTACK_TURNSTILE_SECRET_KEY", "0x4AAAAAAAq3Vx9Lr0aZt7mWcBn2Kp"),
    ];
    let c = load_env(&on).unwrap().config;
    assert!(c.turnstile_enabled);
    assert!(
        format!("{c:?}").contains("\"turnstile_secret_key\":\"[redacted]\""),
        "{c:?}"
    );
    for (missing, field) in [(0, "turnstile_site_key"), (1, "turnstile_secret_key")] {
        let mut pairs = on.to_vec();
        pairs.remove(missing + 1);
        let e = load_env(&pairs).unwrap_err();
        assert!(e.to_string().contains(field), "{e}");
    }
    for (key, value, field) in [
        ("REGSTACK_TURNSTILE_SECRET_KEY", "0x4AAAAAAA", "turnstile_secret_key"),
        (
            "REGSTACK_TURNSTILE_VERIFY_URL",
            "http://siteverify.example/",
            "turnstile_verify_url",
        ),
        ("REGSTACK_TURNSTILE_TIMEOUT_SECONDS", "0", "turnstile_timeout_seconds"),
    ] {
        let mut pairs = on.to_vec();
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, value));
        let e = load_env(&pairs).unwrap_err();
        assert!(e.to_string().contains(field), "{key}={value}: {e}");
    }
    // Leftovers of a switched-off set-up do not stop a server.
    assert!(load_env(&[("REGSTACK_TURNSTILE_SECRET_KEY", "changeme")]).is_ok());
}

#[regstack_macros::dual_test]
fn seed_004_vapid_keys_come_as_a_pair_or_not_at_all() {
    let load_env = |pairs: &[(&str, &str)]| {
        let vars = env(pairs);
        load(Sources {
            env: &vars,
            ..Default::default()
        })
    };
    let on = ("REGSTACK_ENABLE_WEB_PUSH", "true");
    let public = "BCdXJXyjoIFw7FdU85zSC3V_vjF40xD9qgIoYMu4BWjx7uIdWiiub6atldiFZeqgHn1BJD8C0alW2sQR-Vms10E=";
    let private = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgnML9xFefd7jWVRFLjJPwba9W80iaXybvV_LATCXNVzmhRANCAAQnVyV8o6CBcOxXVPOc0gt1f74xeNMQ_aoCKGDLuAVo8e7iHVoorm-mrZXYhWXqoB59QSQ_AtGpVtrEEflZrNdB";
    let c = load_env(&[
        on,
        ("REGSTACK_VAPID_PUBLIC_KEY", public),
        ("REGSTACK_VAPID_PRIVATE_KEY", private),
    ])
    .unwrap()
    .config;
    assert!(
        format!("{c:?}").contains("\"vapid_private_key\":\"[redacted]\""),
        "{c:?}"
    );
    // Blank is unset: a pair is generated.
    assert!(load_env(&[
        on,
        ("REGSTACK_VAPID_PUBLIC_KEY", ""),
        ("REGSTACK_VAPID_PRIVATE_KEY", " ")
    ])
    .is_ok());
    for (pairs, field) in [
        (vec![on, ("REGSTACK_VAPID_PUBLIC_KEY", public)], "vapid_private_key"),
        (vec![on, ("REGSTACK_VAPID_PRIVATE_KEY", private)], "vapid_public_key"),
        (
            vec![
                on,
                ("REGSTACK_VAPID_PUBLIC_KEY", &public[1..]),
                ("REGSTACK_VAPID_PRIVATE_KEY", private),
            ],
            "vapid_public_key",
        ),
        (
            vec![on, ("REGSTACK_VAPID_SUBJECT", "admin@example.com")],
            "vapid_subject",
        ),
        (
            vec![on, ("REGSTACK_PUSH_SERVICE_ORIGINS", "[\"http://push.example\"]")],
            "push_service_origins",
        ),
        (
            vec![on, ("REGSTACK_PUSH_SUBSCRIPTION_LIMIT", "0")],
            "push_subscription_limit",
        ),
    ] {
        let e = load_env(&pairs).unwrap_err();
        assert!(e.to_string().contains(field), "{pairs:?}: {e}");
    }
    // Leftovers of a switched-off set-up do not stop a server.
    assert!(load_env(&[("REGSTACK_VAPID_PUBLIC_KEY", "junk")]).is_ok());
}

#[regstack_macros::dual_test]
fn the_pages_need_their_own_prefixes_and_urls_a_policy_can_name() {
    let load_env = |pairs: &[(&str, &str)]| {
        let vars = env(pairs);
        load(Sources {
            env: &vars,
            ..Default::default()
        })
    };
    let on = ("REGSTACK_ENABLE_UI_ROUTER", "true");
    assert!(load_env(&[on, ("REGSTACK_UI_PREFIX", "/")]).is_ok());
    assert!(load_env(&[on, ("REGSTACK_THEME_CSS_URL", "/assets/brand.css")]).is_ok());
    assert!(load_env(&[on, ("REGSTACK_BRAND_LOGO_URL", "https://CDN.example.com:8443/logo.png")]).is_ok());
    for (pairs, field) in [
        (vec![on, ("REGSTACK_UI_PREFIX", "/api/auth")], "ui_prefix"),
        (vec![on, ("REGSTACK_STATIC_PREFIX", "/account")], "static_prefix"),
        (
            vec![on, ("REGSTACK_THEME_CSS_URL", "https://*.example.com/t.css")],
            "theme_css_url",
        ),
        (
            vec![on, ("REGSTACK_THEME_CSS_URL", "//evil.example/t.css")],
            "theme_css_url",
        ),
        (
            vec![on, ("REGSTACK_BRAND_LOGO_URL", "javascript:alert(1)")],
            "brand_logo_url",
        ),
    ] {
        let e = load_env(&pairs).unwrap_err();
        assert!(e.to_string().contains(field), "{pairs:?}: {e}");
    }
    // With the pages off, nothing about them is checked.
    assert!(load_env(&[("REGSTACK_UI_PREFIX", "/api/auth")]).is_ok());
}
