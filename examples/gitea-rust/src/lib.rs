//! A Gitea and Forgejo provider plugin for Arbor written in Rust, with the
//! standard library only: the same operations and behaviour as the Go
//! example in examples/gitea, built straight on ABI v1
//! (docs/plugin-abi.md, "Plugins in other languages"). Build it with
//! Debian's toolchain (see examples/gitea-rust/README.md):
//!
//!     /usr/bin/rustc --edition 2021 --target wasm32-wasi --crate-type cdylib \
//!         -C opt-level=s -C panic=abort -C strip=symbols -o gitea.wasm src/lib.rs
//!
//! What it relies on (Gitea's OAuth2 provider and REST API v1 docs,
//! https://docs.gitea.com/development/oauth2-provider and
//! https://docs.gitea.com/development/api-usage):
//!
//! - the authorization code grant with PKCE (S256), the client credentials
//!   in the form body, JSON token responses, refresh tokens;
//! - no revocation endpoint (the manifest does not list revoke);
//! - GET /user for the profile, GET /user/emails for the primary address's
//!   verified flag;
//! - GET /user/repos paged with ?page= and a Link header (rel="next"), the
//!   page size in ?limit= (Gitea) and ?per_page= (Forgejo).

mod json;
mod util;
mod wire;

use json::Json;
use util::{form_encode, Error, Headers};
use wire::{Dec, Enc};

// ---- Host imports (module arbor_v1) -------------------------------------

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "arbor_v1")]
extern "C" {
    /// Performs the encoded HTTPRequest at (req, req_len). Returns the
    /// length n of the encoded HTTPResponse; it was written at buf when
    /// n <= buf_cap, else the host holds it for http_take.
    fn http_do(req: *const u8, req_len: u32, buf: *mut u8, buf_cap: u32) -> u32;
    /// Writes the held response at buf if it fits; returns its length, or
    /// -1 if none is held.
    fn http_take(buf: *mut u8, buf_cap: u32) -> i32;
    /// A log line at a log/slog level (-4 debug, 0 info, 4 warn, 8 error).
    #[link_name = "log"]
    fn host_log(level: i32, msg: *const u8, len: u32);
}

// A native build (the unit tests: rustc --test) has no host: every request
// fails as if the host were unreachable.
#[cfg(not(target_arch = "wasm32"))]
unsafe fn http_do(_: *const u8, _: u32, buf: *mut u8, cap: u32) -> u32 {
    let mut out = Vec::new();
    Enc { b: &mut out }.str(4, "unavailable");
    if out.len() <= cap as usize {
        std::ptr::copy_nonoverlapping(out.as_ptr(), buf, out.len());
    }
    out.len() as u32
}

#[cfg(not(target_arch = "wasm32"))]
unsafe fn http_take(_: *mut u8, _: u32) -> i32 {
    -1
}

#[cfg(not(target_arch = "wasm32"))]
unsafe fn host_log(_: i32, _: *const u8, _: u32) {}

// ---- Buffers -------------------------------------------------------------
//
// The guest owns every buffer the host reads or writes. A wasm instance
// runs one call at a time on one thread, so plain statics are safe here.

/// IN receives requests: arbor_alloc hands it out before each call.
static mut IN: Vec<u8> = Vec::new();
/// OUT holds the last encoded Result until the next export call.
static mut OUT: Vec<u8> = Vec::new();
/// RESP receives http_do responses; it grows to the largest seen.
static mut RESP: Vec<u8> = Vec::new();
/// REQ is where HTTP requests are encoded.
static mut REQ: Vec<u8> = Vec::new();

// ---- Exports -------------------------------------------------------------

/// The operations this module implements, as abi.OpSet bits: authorize (0),
/// exchange (1), refresh (2), user (4), repos (5). Not revoke (3): Gitea has
/// no revocation endpoint. The manifest lists the same set.
const OPS: u32 = 1 << 0 | 1 << 1 | 1 << 2 | 1 << 4 | 1 << 5;

#[no_mangle]
pub extern "C" fn arbor_abi_v1() -> u32 {
    OPS
}

/// Returns a buffer of `size` bytes for the next request, or 0 if it
/// cannot be had (the host then fails the call without trapping).
#[no_mangle]
pub extern "C" fn arbor_alloc(size: u32) -> u32 {
    let buf = unsafe { &mut IN };
    let size = size as usize;
    if size > buf.capacity() && buf.try_reserve_exact(size - buf.len()).is_err() {
        return 0;
    }
    buf.resize(size, 0);
    buf.as_mut_ptr() as u32
}

#[no_mangle]
pub extern "C" fn arbor_authorize(ptr: u32, len: u32) -> u64 {
    call(ptr, len, authorize)
}

#[no_mangle]
pub extern "C" fn arbor_exchange(ptr: u32, len: u32) -> u64 {
    call(ptr, len, exchange)
}

#[no_mangle]
pub extern "C" fn arbor_refresh(ptr: u32, len: u32) -> u64 {
    call(ptr, len, refresh)
}

#[no_mangle]
pub extern "C" fn arbor_user(ptr: u32, len: u32) -> u64 {
    call(ptr, len, user)
}

#[no_mangle]
pub extern "C" fn arbor_repos(ptr: u32, len: u32) -> u64 {
    call(ptr, len, repos)
}

/// call runs one operation on the request at (ptr, len), which must lie in
/// the buffer arbor_alloc returned, and returns the encoded Result as
/// ptr << 32 | len. On success the Result's field 1 holds the operation's
/// message; on failure fields 2-6 hold the code, message, retryable flag,
/// HTTP status and retry-after seconds.
fn call(ptr: u32, len: u32, op: fn(&[u8]) -> Result<Vec<u8>, Error>) -> u64 {
    let input = unsafe { &IN };
    let res = if len > 0 && (ptr != input.as_ptr() as u32 || len as usize > input.len()) {
        Err(Error::new("invalid_request", "the request is not in the buffer arbor_alloc returned"))
    } else {
        op(&input[..len as usize])
    };
    let out = unsafe { &mut OUT };
    out.clear();
    encode_result(out, res);
    (out.as_ptr() as u64) << 32 | out.len() as u64
}

/// encode_result appends a Result: the payload, or the error's fields.
fn encode_result(out: &mut Vec<u8>, res: Result<Vec<u8>, Error>) {
    let mut e = Enc { b: out };
    match res {
        Ok(payload) => e.bytes(1, &payload),
        Err(err) => {
            e.str(2, &err.code);
            e.str(3, &err.message);
            e.bool(4, err.retryable);
            e.int(5, err.status);
            e.int(6, err.retry_after);
        }
    }
}

fn log(level: i32, msg: &str) {
    unsafe { host_log(level, msg.as_ptr(), msg.len() as u32) }
}

// ---- Requests ------------------------------------------------------------

#[derive(Default)]
struct Endpoints {
    token_url: String,
    api_base: String,
}

fn endpoints(d: Dec) -> Result<Endpoints, String> {
    let mut e = Endpoints::default();
    let mut d = d;
    while let Some((n, v)) = d.next()? {
        match n {
            2 => e.token_url = v.str()?,
            3 => e.api_base = v.str()?,
            _ => {} // 1 authorize_url, 4 revoke_url: not needed here
        }
    }
    Ok(e)
}

#[derive(Default)]
struct Client {
    id: String,
    secret: String,
}

fn client(d: Dec) -> Result<Client, String> {
    let mut c = Client::default();
    let mut d = d;
    while let Some((n, v)) = d.next()? {
        match n {
            1 => c.id = v.str()?,
            2 => c.secret = v.str()?,
            _ => {}
        }
    }
    Ok(c)
}

fn bad_request(msg: String) -> Error {
    Error::new("invalid_request", &msg)
}

// ---- authorize -----------------------------------------------------------

/// authorize returns the authorization URL's parameters (AuthorizeResult):
/// response_type, client_id, redirect_uri, scope, state and the PKCE
/// challenge, sorted by name.
fn authorize(input: &[u8]) -> Result<Vec<u8>, Error> {
    let (mut client_id, mut redirect, mut state, mut scopes) = (String::new(), String::new(), String::new(), Vec::new());
    let (mut challenge, mut method) = (String::new(), String::new());
    let mut d = Dec { b: input };
    let mut read = || -> Result<(), String> {
        while let Some((n, v)) = d.next()? {
            match n {
                1 => client_id = v.str()?,
                4 => redirect = v.str()?,
                5 => scopes.push(v.str()?),
                6 => state = v.str()?,
                7 => challenge = v.str()?,
                8 => method = v.str()?,
                _ => {} // 2 endpoints, 3 purpose, 9 keep_grant: Gitea needs none
            }
        }
        Ok(())
    };
    read().map_err(bad_request)?;
    // Sorted by name, as the Go SDK sends them; empty optional ones left out.
    let mut p: Vec<(&str, String)> = vec![("client_id", client_id)];
    if !challenge.is_empty() {
        p.push(("code_challenge", challenge));
        p.push(("code_challenge_method", if method.is_empty() { "S256".into() } else { method }));
    }
    if !redirect.is_empty() {
        p.push(("redirect_uri", redirect));
    }
    p.push(("response_type", "code".into()));
    if !scopes.is_empty() {
        p.push(("scope", scopes.join(" ")));
    }
    if !state.is_empty() {
        p.push(("state", state));
    }
    let mut out = Vec::new();
    let mut e = Enc { b: &mut out };
    for (k, v) in &p {
        e.msg(1, |m| {
            m.str(1, k);
            m.str(2, v);
        });
    }
    Ok(out)
}

// ---- exchange and refresh --------------------------------------------------

/// exchange trades an authorization code for tokens (ExchangeRequest ->
/// Token).
fn exchange(input: &[u8]) -> Result<Vec<u8>, Error> {
    let (mut c, mut ep) = (Client::default(), Endpoints::default());
    let (mut code, mut redirect, mut verifier) = (String::new(), String::new(), String::new());
    let mut d = Dec { b: input };
    let mut read = || -> Result<(), String> {
        while let Some((n, v)) = d.next()? {
            match n {
                1 => c = client(v.msg()?)?,
                2 => ep = endpoints(v.msg()?)?,
                3 => code = v.str()?,
                4 => redirect = v.str()?,
                5 => verifier = v.str()?,
                _ => {}
            }
        }
        Ok(())
    };
    read().map_err(bad_request)?;
    if code.is_empty() {
        return Err(Error::new("invalid_request", "the authorization code is empty"));
    }
    let form = vec![("grant_type", "authorization_code".into()), ("code", code),
        ("redirect_uri", redirect), ("code_verifier", verifier)];
    token_request(&ep, &c, form)
}

/// refresh uses a refresh token (RefreshRequest -> Token).
fn refresh(input: &[u8]) -> Result<Vec<u8>, Error> {
    let (mut c, mut ep) = (Client::default(), Endpoints::default());
    let (mut token, mut scopes) = (String::new(), Vec::new());
    let mut d = Dec { b: input };
    let mut read = || -> Result<(), String> {
        while let Some((n, v)) = d.next()? {
            match n {
                1 => c = client(v.msg()?)?,
                2 => ep = endpoints(v.msg()?)?,
                3 => token = v.str()?,
                4 => scopes.push(v.str()?),
                _ => {}
            }
        }
        Ok(())
    };
    read().map_err(bad_request)?;
    if token.is_empty() {
        return Err(Error::new("invalid_grant", "there is no refresh token"));
    }
    let mut form: Vec<(&str, String)> = vec![("grant_type", "refresh_token".into()), ("refresh_token", token)];
    if !scopes.is_empty() {
        form.push(("scope", scopes.join(" ")));
    }
    token_request(&ep, &c, form)
}

/// token_request posts a grant to the token endpoint with the client
/// credentials in the form body, as Gitea wants, and encodes the Token.
fn token_request(ep: &Endpoints, c: &Client, mut form: Vec<(&str, String)>) -> Result<Vec<u8>, Error> {
    if ep.token_url.is_empty() {
        return Err(Error::new("invalid_request", "no token URL is configured for this provider"));
    }
    form.push(("client_id", c.id.clone()));
    if !c.secret.is_empty() {
        form.push(("client_secret", c.secret.clone()));
    }
    // Empty optional parameters (redirect_uri, code_verifier) are left out.
    form.retain(|(k, v)| !v.is_empty() || *k == "client_id");
    let headers = [("Accept", "application/json"), ("Content-Type", "application/x-www-form-urlencoded")];
    let resp = http("POST", &ep.token_url, &headers, form_encode(&mut form).as_bytes())?;
    Ok(encode_token(&util::parse_token_response(&resp)?))
}

fn encode_token(t: &util::Token) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Enc { b: &mut out };
    e.str(1, &t.access_token);
    e.str(2, &t.refresh_token);
    e.str(3, &t.token_type);
    e.int(4, t.expires_in);
    e.int(5, t.refresh_expires_in);
    e.strs(6, &t.scopes);
    e.str(7, &t.id_token);
    out
}

// ---- The REST API ----------------------------------------------------------

/// Api calls Gitea's REST API with the user's token: a Bearer token, JSON,
/// and util::check_response's judgement of the answer.
struct Api {
    base: String,
    auth: String,
}

impl Api {
    fn new(ep: Endpoints, token: &str) -> Result<Api, Error> {
        if ep.api_base.is_empty() {
            return Err(Error::new("invalid_request", "no API base URL is configured"));
        }
        Ok(Api { base: ep.api_base, auth: format!("Bearer {}", token) })
    }

    /// owns reports whether url is under the API base (a next-page link
    /// must not send the token anywhere else).
    fn owns(&self, url: &str) -> bool {
        url.len() > self.base.len()
            && url.starts_with(&self.base)
            && url.as_bytes()[self.base.len()] == b'/'
            && !url.contains("/../")
            && !url.ends_with("/..")
    }

    /// get fetches a path ("/user") or a URL under the base.
    fn get(&self, r: &str) -> Result<Response, Error> {
        let url = if r.starts_with('/') {
            format!("{}{}", self.base, r)
        } else if self.owns(r) {
            r.to_string()
        } else {
            return Err(Error::new("invalid_request", "the URL is not a page of this provider's API"));
        };
        let resp = http("GET", &url, &[("Authorization", &self.auth), ("Accept", "application/json")], &[])?;
        util::check_response("GET", &url, &resp)?;
        Ok(resp)
    }
}

fn user_request(input: &[u8]) -> Result<(Endpoints, String), Error> {
    let (mut ep, mut token) = (Endpoints::default(), String::new());
    let mut d = Dec { b: input };
    let mut read = || -> Result<(), String> {
        while let Some((n, v)) = d.next()? {
            match n {
                1 => ep = endpoints(v.msg()?)?,
                2 => token = v.str()?,
                _ => {}
            }
        }
        Ok(())
    };
    read().map_err(bad_request)?;
    Ok((ep, token))
}

/// json_err is a provider answer that is not the JSON expected:
/// provider_error, without a status (as in the Go SDK).
fn json_err(e: String) -> Error {
    Error::provider(0, &e)
}

/// user returns the signed-in user (UserRequest -> User). /user does not
/// say whether the address is verified; /user/emails does. Only a verified
/// address counts: the primary one if there is one, else the first
/// verified one.
fn user(input: &[u8]) -> Result<Vec<u8>, Error> {
    let (ep, token) = user_request(input)?;
    let api = Api::new(ep, &token)?;
    let resp = api.get("/user")?;
    let mut u = User::default();
    let mut j = Json::new(&resp.body);
    j.begin_object();
    while let Some(k) = j.next_key() {
        match k.as_str() {
            "id" => u.id = j.number(),
            "login" => u.login = j.string(),
            "full_name" => u.name = j.string(),
            "email" => u.email = j.string(),
            "avatar_url" => u.avatar_url = j.string(),
            "html_url" => u.profile_url = j.string(),
            _ => j.skip(),
        }
    }
    j.end().map_err(json_err)?;
    if u.id.is_empty() {
        return Err(Error::provider(resp.status, "the user object has no \"id\" member"));
    }
    if u.profile_url.is_empty() && !u.login.is_empty() {
        if let Some(site) = api.base.strip_suffix("/api/v1") {
            u.profile_url = format!("{}/{}", site, u.login);
        }
    }

    let resp = api.get("/user/emails")?;
    let (mut primary, mut first_verified) = (None, None);
    let mut j = Json::new(&resp.body);
    j.begin_array();
    while j.next_item() {
        let (mut addr, mut is_primary, mut verified) = (String::new(), false, false);
        j.begin_object();
        while let Some(k) = j.next_key() {
            match k.as_str() {
                "email" => addr = j.string(),
                "primary" => is_primary = j.boolean(),
                "verified" => verified = j.boolean(),
                _ => j.skip(),
            }
        }
        if addr.is_empty() {
            continue;
        }
        if is_primary && primary.is_none() {
            primary = Some((addr.clone(), verified));
        }
        if verified && first_verified.is_none() {
            first_verified = Some((addr, true));
        }
    }
    j.end().map_err(json_err)?;
    if let Some((addr, verified)) = primary.or(first_verified) {
        u.email = addr;
        u.email_verified = verified;
    }
    Ok(encode_user(&u))
}

#[derive(Default)]
struct User {
    id: String,
    login: String,
    name: String,
    email: String,
    email_verified: bool,
    avatar_url: String,
    profile_url: String,
}

fn encode_user(u: &User) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Enc { b: &mut out };
    e.str(1, &u.id);
    e.str(2, &u.login);
    e.str(3, &u.name);
    e.str(4, &u.email);
    e.bool(5, u.email_verified);
    e.str(6, &u.avatar_url);
    e.str(7, &u.profile_url);
    out
}

// ---- repos -----------------------------------------------------------------

/// MAX_PER_PAGE is Gitea's default MAX_RESPONSE_ITEMS.
const MAX_PER_PAGE: i64 = 50;

/// repos lists one page of the repositories the user owns or is a member
/// of (ReposRequest -> RepoPage). The cursor is the Link header's next URL.
fn repos(input: &[u8]) -> Result<Vec<u8>, Error> {
    let (mut ep, mut token, mut cursor, mut per) = (Endpoints::default(), String::new(), String::new(), 0i64);
    let mut d = Dec { b: input };
    let mut read = || -> Result<(), String> {
        while let Some((n, v)) = d.next()? {
            match n {
                1 => ep = endpoints(v.msg()?)?,
                2 => token = v.str()?,
                3 => cursor = v.str()?,
                4 => per = v.int()?,
                _ => {}
            }
        }
        Ok(())
    };
    read().map_err(bad_request)?;
    let api = Api::new(ep, &token)?;
    if per <= 0 || per > MAX_PER_PAGE {
        per = MAX_PER_PAGE;
    }
    let first = format!("/user/repos?page=1&limit={}&per_page={}", per, per);
    let resp = if cursor.is_empty() {
        api.get(&first)?
    } else if api.owns(&cursor) {
        api.get(&cursor)?
    } else {
        return Err(Error::new("invalid_request", "the cursor is not a page of this provider's API"));
    };
    let next = util::next_link(&resp.headers);

    let mut out = Vec::new();
    let mut e = Enc { b: &mut out };
    let mut j = Json::new(&resp.body);
    let mut count = 0;
    j.begin_array();
    while j.next_item() {
        let mut r = Repo::default();
        j.begin_object();
        while let Some(k) = j.next_key() {
            match k.as_str() {
                "id" => r.id = j.number(),
                "full_name" => r.full_name = j.string(),
                "description" => r.description = j.string(),
                "private" => r.private = j.boolean(),
                "default_branch" => r.default_branch = j.string(),
                "html_url" => r.html_url = j.string(),
                "clone_url" => r.clone_url = j.string(),
                "updated_at" => r.updated_at = util::unix_time(&j.string()),
                _ => j.skip(),
            }
        }
        if !j.ok() {
            break;
        }
        count += 1;
        e.msg(1, |m| encode_repo(m, &r));
    }
    j.end().map_err(json_err)?;
    e.str(2, &next);
    log(-4, &format!("repos: {} repositories on this page, more: {}", count, !next.is_empty()));
    Ok(out)
}

fn encode_repo(e: &mut Enc, r: &Repo) {
    e.str(1, &r.id);
    e.str(2, &r.full_name);
    e.str(3, &r.description);
    e.bool(4, r.private);
    e.str(5, &r.default_branch);
    e.str(6, &r.html_url);
    e.str(7, &r.clone_url);
    e.int(8, r.updated_at);
}

#[derive(Default)]
struct Repo {
    id: String,
    full_name: String,
    description: String,
    private: bool,
    default_branch: String,
    html_url: String,
    clone_url: String,
    updated_at: i64,
}

// ---- HTTP through the host -------------------------------------------------

/// Response is an HTTP answer the host received (redirects followed, body
/// read within the cap).
pub struct Response {
    pub status: i64,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// http sends a request through the host's http_do. A refusal or failure
/// of the host (host_not_allowed, timeout, unavailable, ...) is an Error
/// with the host's code; an HTTP error status is not an error here.
fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, Error> {
    let req = unsafe { &mut REQ };
    req.clear();
    encode_http_request(req, method, url, headers, body);
    let buf = unsafe { &mut RESP };
    if buf.is_empty() {
        // 16 KiB: token answers and user objects fit; a large repository
        // page takes the second step (http_take) once and the buffer grows.
        buf.resize(16 << 10, 0);
    }
    let n = unsafe { http_do(req.as_ptr(), req.len() as u32, buf.as_mut_ptr(), buf.len() as u32) } as usize;
    if n > buf.len() {
        buf.resize(n, 0);
        let m = unsafe { http_take(buf.as_mut_ptr(), n as u32) };
        if m != n as i32 {
            return Err(Error::new("internal", "http_take did not return the held response"));
        }
    }
    decode_http_response(&buf[..n])
}

fn encode_http_request(out: &mut Vec<u8>, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut e = Enc { b: out };
    e.str(1, method);
    e.str(2, url);
    for (k, v) in headers {
        e.msg(3, |h| {
            h.str(1, k);
            h.str(2, v);
        });
    }
    e.bytes(4, body);
}

/// decode_http_response reads http_do's answer: the response, or the
/// host's refusal or failure as an Error with the host's code.
fn decode_http_response(b: &[u8]) -> Result<Response, Error> {
    let fail = |e: String| Error::new("internal", &format!("the host's HTTP response could not be decoded: {}", e));
    let mut resp = Response { status: 0, headers: Vec::new(), body: Vec::new() };
    let (mut code, mut message, mut retryable) = (String::new(), String::new(), false);
    let mut d = Dec { b };
    while let Some((f, v)) = d.next().map_err(fail)? {
        match f {
            1 => resp.status = v.int().map_err(fail)?,
            2 => {
                let (mut name, mut value) = (String::new(), String::new());
                let mut h = v.msg().map_err(fail)?;
                while let Some((f, v)) = h.next().map_err(fail)? {
                    match f {
                        1 => name = v.str().map_err(fail)?,
                        2 => value = v.str().map_err(fail)?,
                        _ => {}
                    }
                }
                resp.headers.push((name, value));
            }
            3 => {
                if let wire::Val::Bytes(p) = v {
                    resp.body = p.to_vec();
                }
            }
            4 => code = v.str().map_err(fail)?,
            5 => message = v.str().map_err(fail)?,
            6 => retryable = matches!(v, wire::Val::Int(u) if u != 0),
            _ => {}
        }
    }
    if !code.is_empty() {
        let mut e = Error::new(&code, &message);
        e.retryable = retryable;
        return Err(e);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// golden returns the bytes the Go encoder of ABI v1 writes for one of
    /// sdk/abi's golden messages (sdk/abi/golden_test.go lists them). The
    /// tests run in examples/gitea-rust (TestRustUnitTests).
    fn golden(name: &str) -> Vec<u8> {
        let path = format!("../../sdk/abi/testdata/golden/{}.hex", name);
        let hex = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {}", path, e));
        let hex = hex.trim();
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
    }

    fn encoded(res: Result<Vec<u8>, Error>) -> Vec<u8> {
        let mut out = Vec::new();
        encode_result(&mut out, res);
        out
    }

    #[test]
    fn encodes_as_go_does() {
        let rate_limited = Error { code: "rate_limited".into(), message: "m".into(), retryable: true, status: 429, retry_after: 90 };
        // The golden "result" has both a payload and an error; a plugin
        // writes one or the other, so compare the two halves.
        let mut want = encoded(Ok(vec![1, 2, 3]));
        want.extend(encoded(Err(rate_limited)));
        assert_eq!(want, golden("result"));
        let negative = Error { status: -1, retry_after: -300, ..Error::new("", "") };
        assert_eq!(encoded(Err(negative)), golden("result-negative"));

        let t = util::Token { access_token: "at".into(), refresh_token: "rt".into(), token_type: "bearer".into(),
            expires_in: 3600, refresh_expires_in: -5, scopes: vec!["a".into(), "b".into()], id_token: "id".into() };
        assert_eq!(encode_token(&t), golden("token"));
        assert_eq!(encode_token(&util::Token::default()), golden("zero-token"));

        let u = User { id: "1".into(), login: "l".into(), name: "n".into(), email: "e".into(), email_verified: true,
            avatar_url: "a".into(), profile_url: "p".into() };
        assert_eq!(encode_user(&u), golden("user"));

        let r = Repo { id: "1".into(), full_name: "a/b".into(), description: "d".into(), private: true,
            default_branch: "main".into(), html_url: "h".into(), clone_url: "c".into(), updated_at: 1700000000 };
        let mut page = Vec::new();
        let mut e = Enc { b: &mut page };
        e.msg(1, |m| encode_repo(m, &r));
        e.msg(1, |m| encode_repo(m, &Repo::default()));
        e.str(2, "n");
        assert_eq!(page, golden("repo-page"));

        let mut req = Vec::new();
        encode_http_request(&mut req, "POST", "u", &[("A", "1"), ("A", "2")], b"x");
        assert_eq!(req, golden("http-request"));
    }

    #[test]
    fn decodes_what_go_encodes() {
        let ep = endpoints(Dec { b: &golden("endpoints") }).unwrap();
        assert_eq!((ep.token_url.as_str(), ep.api_base.as_str()), ("https://p/t", "https://api.p"));
        let c = client(Dec { b: &golden("client") }).unwrap();
        assert_eq!((c.id.as_str(), c.secret.as_str()), ("id", "secret"));

        // The golden response carries a host failure: an Error, not a response.
        let err = decode_http_response(&golden("http-response")).err().unwrap();
        assert_eq!((err.code.as_str(), err.message.as_str(), err.retryable), ("timeout", "m", true));
        let ok = decode_http_response(&golden("zero-http-response")).ok().unwrap();
        assert_eq!((ok.status, ok.headers.len(), ok.body.len()), (0, 0, 0));

        // A whole request decodes and reaches the HTTP step, which the
        // native build's stand-in host answers "unavailable".
        let err = exchange(&golden("exchange-request")).err().unwrap();
        assert_eq!(err.code, "unavailable");
        let err = exchange(&golden("zero-exchange-request")).err().unwrap();
        assert_eq!((err.code.as_str(), err.message.as_str()), ("invalid_request", "the authorization code is empty"));
        let err = refresh(&golden("zero-refresh-request")).err().unwrap();
        assert_eq!(err.code, "invalid_grant");
        let err = user(&golden("zero-user-request")).err().unwrap();
        assert_eq!((err.code.as_str(), err.message.as_str()), ("invalid_request", "no API base URL is configured"));
        let err = repos(&golden("repos-request")).err().unwrap(); // cursor "c" is not under the API
        assert_eq!(err.message, "the cursor is not a page of this provider's API");
        assert_eq!(exchange(&[0x0a, 0x05, 0x01]).err().unwrap().code, "invalid_request"); // truncated
    }

    #[test]
    fn authorize_params() {
        let params = |b: &[u8]| -> Vec<(String, String)> {
            let mut out = Vec::new();
            let mut d = Dec { b };
            while let Some((_, v)) = d.next().unwrap() {
                let (mut k, mut val) = (String::new(), String::new());
                let mut p = v.msg().unwrap();
                while let Some((n, v)) = p.next().unwrap() {
                    if n == 1 { k = v.str().unwrap() } else { val = v.str().unwrap() }
                }
                out.push((k, val));
            }
            out
        };
        let got = params(&authorize(&golden("authorize-request")).ok().unwrap());
        let want = [("client_id", "c"), ("code_challenge", "ch"), ("code_challenge_method", "S256"),
            ("redirect_uri", "https://a/cb"), ("response_type", "code"), ("scope", "repo  user"), ("state", "s")];
        assert_eq!(got, want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>());
        let got = params(&authorize(&golden("zero-authorize-request")).ok().unwrap());
        assert_eq!(got, vec![("client_id".to_string(), String::new()), ("response_type".into(), "code".into())]);
    }

    #[test]
    fn alloc_and_call_check_the_buffer() {
        let ptr = arbor_alloc(3);
        assert_ne!(ptr, 0);
        let res = arbor_authorize(ptr.wrapping_add(1), 2); // not the buffer handed out
        let out = unsafe { OUT.clone() };
        assert_eq!(res as u32 as usize, out.len());
        let mut want = Vec::new();
        encode_result(&mut want, Err(Error::new("invalid_request", "the request is not in the buffer arbor_alloc returned")));
        assert_eq!(out, want);
    }
}
