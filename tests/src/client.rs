//! The HTTP client side: [`Api`] sends, [`Resp`] holds the answer and asserts on it.

use super::*;

/// One HTTP exchange, fully read.
pub struct Resp {
    /// The request method.
    pub method: String,
    /// The request URL.
    pub url: String,
    /// The response status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The raw body, lossily decoded.
    pub text: String,
    /// The body parsed as JSON, or `Value::Null` when it is not JSON.
    pub json: Value,
}

impl fmt::Display for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} -> {}", self.method, self.url, self.status)?;
        for (k, v) in &self.headers {
            write!(f, "\n  {k}: {}", String::from_utf8_lossy(v.as_bytes()))?;
        }
        write!(f, "\n  body: {}", self.text)
    }
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Resp {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// `json["detail"]`.
    pub fn detail(&self) -> &Value {
        &self.json["detail"]
    }

    /// `json[key]` as a string (panics with the exchange if absent).
    #[track_caller]
    pub fn str(&self, key: &str) -> String {
        match self.json[key].as_str() {
            Some(s) => s.to_string(),
            None => panic!("response has no string {key:?}:\n{self}"),
        }
    }

    /// Asserts the status.
    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status:\n{self}");
        self
    }

    /// Asserts the status and that the body is exactly `expected`.
    #[track_caller]
    pub fn assert_json(&self, status: u16, expected: &Value) -> &Self {
        self.assert_status(status);
        assert_eq!(&self.json, expected, "unexpected body:\n{self}");
        self
    }

    /// Asserts the status and that the body is exactly `{"detail": detail}`.
    #[track_caller]
    pub fn assert_detail(&self, status: u16, detail: &str) -> &Self {
        self.assert_json(status, &json!({ "detail": detail }))
    }

    /// Asserts the status and that the body is exactly `{"message": message}`.
    #[track_caller]
    pub fn assert_message(&self, status: u16, message: &str) -> &Self {
        self.assert_json(status, &json!({ "message": message }))
    }

    /// Asserts a 422 validation body (a list of pydantic errors, each with `type`, `loc`,
    /// `msg`, `input`) and returns the first entry with this `type` and `loc`.
    #[track_caller]
    pub fn assert_validation(&self, ty: &str, loc: &[&str]) -> Value {
        self.assert_status(422);
        let list = self
            .detail()
            .as_array()
            .unwrap_or_else(|| panic!("422 detail is not a list:\n{self}"));
        assert!(!list.is_empty(), "422 detail is an empty list:\n{self}");
        for e in list {
            let obj = e
                .as_object()
                .unwrap_or_else(|| panic!("422 entry is not an object:\n{self}"));
            for k in ["type", "loc", "msg", "input"] {
                assert!(obj.contains_key(k), "422 entry lacks {k:?}:\n{self}");
            }
            assert!(obj["msg"].is_string(), "422 msg is not a string:\n{self}");
        }
        let want_loc: Vec<Value> = loc.iter().map(|s| json!(s)).collect();
        list.iter()
            .find(|e| e["type"] == ty && e["loc"].as_array() == Some(&want_loc))
            .cloned()
            .unwrap_or_else(|| panic!("no 422 entry with type {ty:?} and loc {loc:?}:\n{self}"))
    }

    /// Asserts the `WWW-Authenticate` header is exactly `Bearer`.
    #[track_caller]
    pub fn assert_www_authenticate(&self) -> &Self {
        assert_eq!(
            self.header("www-authenticate").as_deref(),
            Some("Bearer"),
            "WWW-Authenticate:\n{self}"
        );
        self
    }

    /// Asserts there is no `WWW-Authenticate` header.
    #[track_caller]
    pub fn assert_no_www_authenticate(&self) -> &Self {
        assert!(
            self.header("www-authenticate").is_none(),
            "unexpected WWW-Authenticate:\n{self}"
        );
        self
    }
}

/// A cheap, clonable handle to one server's API (what parallel tasks use).
#[derive(Clone)]
pub struct Api {
    /// The HTTP client (no redirects followed, 30 s timeout).
    pub client: reqwest::Client,
    root: String,
    log: Log,
}

impl Api {
    pub(crate) fn new(root: String, log: Log) -> Self {
        // Idle connections are dropped after 2 s: `wrangler dev` answers through Node, which
        // closes keep-alive connections idle for 5 s, and a request sent on one just as it
        // closes fails with an incomplete message. Reusing only fresher ones avoids the race.
        // Cookies are kept like a browser keeps them (the OAuth round trip's binding cookies);
        // `Api::get_elsewhere` is another browser, without them.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .expect("building the HTTP client");
        Api { client, root, log }
    }

    /// The server root, `http://127.0.0.1:PORT`.
    pub fn root_url(&self) -> &str {
        &self.root
    }

    /// The API root, `http://127.0.0.1:PORT/api/auth`.
    pub fn base_url(&self) -> String {
        format!("{}{API_PREFIX}", self.root)
    }

    /// An API URL: `base_url() + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{API_PREFIX}{path}", self.root)
    }

    /// Sends a request and reads the whole response; a transport error fails the test and
    /// prints the server's recent output.
    pub async fn send(&self, rb: RequestBuilder) -> Resp {
        match self.try_send(rb).await {
            Ok(r) => r,
            Err(e) => panic!(
                "request failed: {e:?}\n--- server output (tail) ---\n{}",
                self.log.tail(60)
            ),
        }
    }

    /// Like [`Api::send`] but returns transport errors.
    pub async fn try_send(&self, rb: RequestBuilder) -> Result<Resp, reqwest::Error> {
        self.try_send_via(&self.client, rb).await
    }

    /// [`Api::try_send`] through another client (another browser, with its own cookies).
    pub async fn try_send_via(&self, client: &reqwest::Client, rb: RequestBuilder) -> Result<Resp, reqwest::Error> {
        let req = rb.build()?;
        let method = req.method().to_string();
        let url = req.url().to_string();
        let resp = client.execute(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Resp {
            method,
            url,
            status,
            headers,
            text,
            json,
        })
    }

    /// A request builder for an API path.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `GET` of a path at the server root (e.g. `/healthz`).
    pub async fn get_root(&self, path: &str) -> Resp {
        self.send(self.client.get(format!("{}{path}", self.root))).await
    }

    /// `GET` an API path without auth.
    pub async fn get(&self, path: &str) -> Resp {
        self.send(self.request(Method::GET, path)).await
    }

    /// `GET` an API path with a bearer token.
    pub async fn get_auth(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::GET, path).bearer_auth(token)).await
    }

    /// `POST` a JSON body without auth.
    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// Fires one `POST path` per body, released together from a barrier, and returns the
    /// responses in the order of `bodies`.
    pub async fn post_json_at_once(&self, path: &str, bodies: Vec<Value>) -> Vec<Resp> {
        let barrier = Arc::new(tokio::sync::Barrier::new(bodies.len()));
        let handles: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let (api, barrier, path) = (self.clone(), barrier.clone(), path.to_string());
                tokio::spawn(async move {
                    barrier.wait().await;
                    api.post_json(&path, &body).await
                })
            })
            .collect();
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.expect("request task panicked"));
        }
        out
    }

    /// `POST` a JSON body with a bearer token.
    pub async fn post_json_auth(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.request(Method::POST, path).bearer_auth(token).json(body))
            .await
    }

    /// `POST` with a bearer token and no body.
    pub async fn post_auth(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::POST, path).bearer_auth(token)).await
    }

    /// `POST` raw bytes with an optional content type and an optional bearer token.
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>, token: Option<&str>) -> Resp {
        let mut rb = self.request(Method::POST, path).body(body);
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        self.send(rb).await
    }

    /// `PATCH` a JSON body with a bearer token.
    pub async fn patch_json_auth(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.request(Method::PATCH, path).bearer_auth(token).json(body))
            .await
    }

    /// `DELETE` with a bearer token and a JSON body.
    pub async fn delete_json_auth(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.send(self.request(Method::DELETE, path).bearer_auth(token).json(body))
            .await
    }

    /// `DELETE` with a bearer token and no body.
    pub async fn delete_auth(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(Method::DELETE, path).bearer_auth(token)).await
    }

    /// `POST /login`.
    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.post_json("/login", &json!({ "email": email, "password": password }))
            .await
    }

    /// `POST /login`, asserting a 200 `TokenResponse`; returns the access token.
    pub async fn login_ok(&self, email: &str, password: &str) -> String {
        let r = self.login(email, password).await;
        r.assert_status(200);
        r.str("access_token")
    }

    /// `GET /me`, asserting 200; returns the `UserPublic`.
    pub async fn me(&self, token: &str) -> Value {
        let r = self.get_auth("/me", token).await;
        r.assert_status(200);
        assert_user_public(&r.json);
        r.json
    }
}
