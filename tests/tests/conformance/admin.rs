//! The admin API (docs/wire.md, "Admin"): superusers only, on every backend and at the edge.

use std::collections::HashSet;

use regstack_conformance::{assert_user_public, json, msg, parse_utc, unique_email, Server, Value, PASSWORD};

const ADMIN_ON: (&str, &str) = ("REGSTACK_ENABLE_ADMIN_ROUTER", "true");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_routes_are_absent_unless_switched_on() {
    let s = Server::start(&[("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (_, token) = s.new_session("noadmin").await;
    s.get_auth("/admin/stats", &token).await.assert_detail(404, "Not Found");
    let doc = s.get("/openapi.json").await;
    assert!(
        doc.json["paths"]["/admin/stats"].is_null(),
        "switched off: not documented"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_lifecycle() {
    let s = Server::start(&[ADMIN_ON]).await;
    let (admin_email, admin) = s.new_admin_session("admin").await;
    let (user_email, user) = s.new_session("member").await;
    let user_id = s.me(&user).await["id"].as_str().unwrap().to_string();
    let admin_id = s.me(&admin).await["id"].as_str().unwrap().to_string();

    // Who may call: a stranger gets 401, a member 403, before any body is read.
    s.get("/admin/stats").await.assert_status(401).assert_www_authenticate();
    s.get_auth("/admin/stats", &user)
        .await
        .assert_detail(403, msg::ADMIN_REQUIRED);
    s.patch_json_auth(&format!("/admin/users/{admin_id}"), &user, &json!({"nope": 1}))
        .await
        .assert_detail(403, msg::ADMIN_REQUIRED);

    // A registration waiting for its link counts as pending.
    let waiting = unique_email("waiting");
    s.post_json("/register", &json!({"email": waiting, "password": PASSWORD}))
        .await
        .assert_status(201);
    let stats = s.get_auth("/admin/stats", &admin).await;
    stats.assert_json(
        200,
        &json!({"total_users": 2, "active_users": 2, "verified_users": 2, "superusers": 1, "pending_registrations": 1}),
    );

    let one = s.get_auth(&format!("/admin/users/{user_id}"), &admin).await;
    one.assert_status(200);
    assert_user_public(&one.json);
    assert_eq!(
        (one.json["email"].as_str(), one.json["role"].as_str()),
        (Some(user_email.as_str()), Some("user"))
    );
    s.get_auth("/admin/users/0123456789abcdef0123456789abcdef", &admin)
        .await
        .assert_detail(404, "User not found.");

    // PATCH: nulls and absent fields leave things alone; unknown fields and is_verified are
    // refused; a role must be a role name.
    let path = format!("/admin/users/{user_id}");
    let r = s
        .patch_json_auth(
            &path,
            &admin,
            &json!({"full_name": "Mem Ber", "role": "editor", "is_active": null}),
        )
        .await;
    r.assert_status(200);
    assert_user_public(&r.json);
    assert_eq!(
        (r.json["full_name"].as_str(), r.json["role"].as_str()),
        (Some("Mem Ber"), Some("editor"))
    );
    assert_eq!(r.json["is_active"], true);
    assert_eq!(s.me(&user).await["role"], "editor", "the user sees their role");
    s.patch_json_auth(&path, &admin, &json!({"is_verified": false}))
        .await
        .assert_validation("extra_forbidden", &["body", "is_verified"]);
    s.patch_json_auth(&path, &admin, &json!({"role": "two words"}))
        .await
        .assert_validation("string_pattern_mismatch", &["body", "role"]);
    s.patch_json_auth(&path, &admin, &json!({"is_active": "maybe"}))
        .await
        .assert_validation("bool_parsing", &["body", "is_active"]);
    s.patch_json_auth(&path, &admin, &json!({"is_active": [true]}))
        .await
        .assert_validation("bool_type", &["body", "is_active"]);
    s.patch_json_auth(&path, &admin, &json!({"is_active": 2}))
        .await
        .assert_validation("bool_parsing", &["body", "is_active"]);
    s.get_auth("/admin/users/a%00b", &admin)
        .await
        .assert_detail(404, "User not found.");
    // A templated path keeps the trailing-slash redirect of every other route.
    let r = s.get_auth(&format!("/admin/users/{user_id}/"), &admin).await;
    r.assert_status(307);
    assert!(
        r.header("location")
            .is_some_and(|l| l.ends_with(&format!("/admin/users/{user_id}"))),
        "{r}"
    );
    s.patch_json_auth("/admin/users/0123456789abcdef0123456789abcdef", &admin, &json!({}))
        .await
        .assert_detail(404, "User not found.");

    // Disabling is the "disable user" operation: the live session dies at once and the
    // cutoff shows in the answer; sign-in is refused until the account is enabled again.
    let r = s.patch_json_auth(&path, &admin, &json!({"is_active": "false"})).await;
    r.assert_status(200);
    assert_eq!(r.json["is_active"], false);
    let cutoff = r.json["tokens_invalidated_after"].as_str().expect("cutoff set");
    assert!(parse_utc(cutoff).is_some(), "{cutoff}");
    s.get_auth("/me", &user).await.assert_status(401);
    s.login(&user_email, PASSWORD)
        .await
        .assert_detail(403, "Account is disabled.");
    let stats = s.get_auth("/admin/stats", &admin).await;
    assert_eq!(stats.json["active_users"], 1, "{stats}");
    s.patch_json_auth(&path, &admin, &json!({"is_active": true}))
        .await
        .assert_status(200);
    s.get_auth("/me", &user).await.assert_status(401);
    let user = s.login_ok(&user_email, PASSWORD).await;

    // The last active superuser can neither drop the flag, nor be disabled, nor be deleted;
    // with a second one, they can.
    let own = format!("/admin/users/{admin_id}");
    for change in [json!({"is_superuser": false}), json!({"is_active": false})] {
        s.patch_json_auth(&own, &admin, &change)
            .await
            .assert_detail(409, msg::LAST_SUPERUSER);
    }
    s.delete_auth(&own, &admin)
        .await
        .assert_detail(409, msg::LAST_SUPERUSER);
    s.patch_json_auth(&path, &admin, &json!({"is_superuser": true}))
        .await
        .assert_status(200);
    let r = s.patch_json_auth(&own, &admin, &json!({"is_superuser": false})).await;
    r.assert_status(200);
    assert_eq!(r.json["is_superuser"], false);
    s.get_auth("/admin/stats", &admin)
        .await
        .assert_detail(403, msg::ADMIN_REQUIRED);

    // The member is the administrator now; a password change cuts off their older sessions,
    // on the admin routes as everywhere (401, not 403).
    let old = s.login_ok(&user_email, PASSWORD).await;
    let r = s
        .post_json_auth(
            "/change-password",
            &user,
            &json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    r.assert_status(200);
    for token in [&old, &user] {
        s.get_auth("/admin/stats", token)
            .await
            .assert_detail(401, msg::SESSION_INVALIDATED);
    }
    s.post_json_auth(
        "/change-password",
        &s.login_ok(&user_email, "a brand new passphrase").await,
        &json!({"current_password": "a brand new passphrase", "new_password": PASSWORD}),
    )
    .await
    .assert_status(200);
    // A verified user needs no new link.
    let admin = s.login_ok(&user_email, PASSWORD).await;
    s.post_auth(&format!("/admin/users/{admin_id}/resend-verification"), &admin)
        .await
        .assert_detail(400, "User is already verified.");

    // Promote a pending registration without its link; a second promotion finds nothing.
    let r = s.post_auth(&format!("/admin/pending/{waiting}/promote"), &admin).await;
    r.assert_status(201);
    assert_user_public(&r.json);
    assert_eq!(
        (r.json["is_verified"].as_bool(), r.json["is_active"].as_bool()),
        (Some(true), Some(true))
    );
    s.login_ok(&waiting, PASSWORD).await;
    s.post_auth(&format!("/admin/pending/{waiting}/promote"), &admin)
        .await
        .assert_detail(404, &format!("No pending registration for {waiting}."));

    // Delete: the account's session dies and its address is free again.
    let former = s.login_ok(&admin_email, PASSWORD).await;
    s.delete_auth(&format!("/admin/users/{admin_id}"), &admin)
        .await
        .assert_message(200, &format!("User {admin_email} deleted."));
    s.get_auth("/me", &former).await.assert_status(401);
    s.get_auth(&format!("/admin/users/{admin_id}"), &admin)
        .await
        .assert_detail(404, "User not found.");
    s.delete_auth(&format!("/admin/users/{admin_id}"), &admin)
        .await
        .assert_detail(404, "User not found.");
    s.login(&admin_email, PASSWORD).await.assert_status(401);
    let stats = s.get_auth("/admin/stats", &admin).await;
    stats.assert_json(
        200,
        &json!({"total_users": 2, "active_users": 2, "verified_users": 2, "superusers": 1, "pending_registrations": 0}),
    );
    // Its rows are gone: the address registers afresh.
    s.post_json("/register", &json!({"email": admin_email, "password": PASSWORD}))
        .await
        .assert_status(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_pages_through_250_users() {
    let s = Server::start(&[ADMIN_ON, ("REGSTACK_REQUIRE_VERIFICATION", "false")]).await;
    let (_, admin) = s.new_admin_session("pager").await;
    let api = s.api();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            for i in (worker..250).step_by(8) {
                let email = unique_email(&format!("page{i}"));
                api.post_json("/register", &json!({"email": email, "password": PASSWORD}))
                    .await
                    .assert_status(201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let first = s.get_auth("/admin/users", &admin).await;
    first.assert_status(200);
    assert_eq!(
        (
            first.json["total"].as_u64(),
            first.json["skip"].as_u64(),
            first.json["limit"].as_u64()
        ),
        (Some(251), Some(0), Some(50))
    );
    assert_eq!(first.json["items"].as_array().unwrap().len(), 50, "50 by default");

    let mut seen = HashSet::new();
    let mut created: Vec<f64> = Vec::new();
    for skip in [0, 100, 200, 300] {
        let r = s.get_auth(&format!("/admin/users?skip={skip}&limit=100"), &admin).await;
        r.assert_status(200);
        assert_eq!(r.json["total"], 251);
        let items = r.json["items"].as_array().unwrap();
        assert_eq!(items.len(), [100, 100, 51, 0][skip / 100], "page at {skip}");
        for item in items {
            assert_user_public(item);
            assert!(
                seen.insert(item["id"].as_str().unwrap().to_string()),
                "{item} listed twice"
            );
            created.push(parse_utc(item["created_at"].as_str().unwrap()).unwrap());
        }
    }
    assert_eq!(seen.len(), 251, "every user once across the pages");
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let refused = |v: &Value| v["detail"][0]["type"].as_str().map(str::to_string);
    for (query, ty, loc) in [
        ("limit=201", "less_than_equal", "limit"),
        ("limit=0", "greater_than_equal", "limit"),
        ("skip=-1", "greater_than_equal", "skip"),
        ("limit=ten", "int_parsing", "limit"),
    ] {
        let r = s.get_auth(&format!("/admin/users?{query}"), &admin).await;
        let e = r.assert_validation(ty, &["query", loc]);
        assert!(e["input"].is_string(), "{r}");
        assert_eq!(refused(&r.json).as_deref(), Some(ty));
    }
    let r = s.get_auth("/admin/users?limit=200&skip=250", &admin).await;
    r.assert_status(200);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 1, "{r}");
    // pydantic's lax integers, and a skip past anything a database could hold.
    let r = s.get_auth("/admin/users?limit=+5.0&skip=1_0", &admin).await;
    r.assert_status(200);
    assert_eq!(
        (r.json["limit"].as_u64(), r.json["skip"].as_u64()),
        (Some(5), Some(10)),
        "{r}"
    );
    let r = s.get_auth("/admin/users?skip=99999999999999999999999", &admin).await;
    r.assert_status(200);
    assert_eq!(r.json["items"], json!([]), "{r}");
}
