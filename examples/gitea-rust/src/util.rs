//! What the Go SDK (sdk/plugin) gives a Go plugin, in the few pieces this
//! plugin needs: errors with the ABI's codes, form encoding, token
//! responses, the API's status checks with the rate-limit rules of
//! docs/plugin-abi.md, the Link header, and RFC 3339 times.

use crate::json::Json;
use crate::Response;

/// Error is a failed operation as the host sees it (abi.Result fields 2-6).
pub struct Error {
    /// One of the ABI's codes: invalid_request, invalid_grant,
    /// invalid_client, invalid_token, provider_error, rate_limited, ...
    pub code: String,
    pub message: String,
    pub retryable: bool,
    /// The provider's HTTP status when the error came from its answer.
    pub status: i64,
    /// Seconds to wait, with rate_limited; 0: the host's default (60 s).
    pub retry_after: i64,
}

impl Error {
    pub fn new(code: &str, message: &str) -> Error {
        Error { code: code.to_string(), message: message.to_string(), retryable: false, status: 0, retry_after: 0 }
    }

    /// provider is an unexpected answer: provider_error, retryable for 5xx.
    pub fn provider(status: i64, message: &str) -> Error {
        Error { retryable: status >= 500, status, ..Error::new("provider_error", message) }
    }

    fn rate_limited(status: i64, message: String, wait: i64) -> Error {
        Error { code: "rate_limited".into(), message, retryable: true, status, retry_after: wait }
    }
}

/// Headers are a response's header fields in order; the host sends
/// canonical names ("Retry-After", "X-Ratelimit-Remaining").
pub type Headers = Vec<(String, String)>;

/// header returns the first value of the named field, or "".
pub fn header<'a>(h: &'a Headers, name: &str) -> &'a str {
    h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).unwrap_or("")
}

/// query_escape escapes s for a query or form value as Go's
/// url.QueryEscape does: unreserved bytes stay, space is '+'.
pub fn query_escape(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(c as char),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(c >> 4) as usize] as char);
                out.push(HEX[(c & 15) as usize] as char);
            }
        }
    }
    out
}

/// form_encode encodes a form sorted by name, like Go's Values.Encode.
pub fn form_encode(form: &mut Vec<(&str, String)>) -> String {
    form.sort_by(|a, b| a.0.cmp(b.0));
    let parts: Vec<String> = form.iter().map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v))).collect();
    parts.join("&")
}

/// unescape decodes a form component ('+' is a space); None if an escape
/// is invalid.
fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// parse_query parses a form-encoded body; None if it is not one.
fn parse_query(s: &str) -> Option<Vec<(String, String)>> {
    let mut v = Vec::new();
    for part in s.split('&').filter(|p| !p.is_empty()) {
        let (k, val) = part.split_once('=').unwrap_or((part, ""));
        v.push((unescape(k)?, unescape(val)?));
    }
    Some(v)
}

/// Token is what a token endpoint granted.
#[derive(Default)]
pub struct Token {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
    pub scopes: Vec<String>,
    pub id_token: String,
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split(|c| c == ' ' || c == ',').filter(|p| !p.is_empty()).map(String::from).collect()
}

/// parse_token_response reads a token endpoint's answer, JSON or
/// form-encoded, with the SDK's rules: a rate limit is rate_limited; an
/// OAuth "error" member is an error whatever the status, mapped to the
/// ABI's codes; any other non-2xx status, or no access_token, is
/// provider_error.
pub fn parse_token_response(r: &Response) -> Result<Token, Error> {
    if let Some(wait) = rate_limit(r) {
        return Err(Error::rate_limited(r.status, format!(
            "the token endpoint answered status {}: rate limited, retry after {} s", r.status, wait), wait));
    }
    let ok = (200..300).contains(&r.status);
    let bad_status = || Error::provider(r.status, &format!("the token endpoint answered status {}", r.status));
    let ct = header(&r.headers, "Content-Type");
    let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let body = String::from_utf8_lossy(&r.body);
    let body = body.trim();
    let is_json = ct == "application/json" || ct.ends_with("+json")
        || (ct != "application/x-www-form-urlencoded" && body.starts_with('{'));
    let mut t = Token::default();
    let (mut err, mut desc) = (String::new(), String::new());
    if is_json {
        let mut j = Json::new(body.as_bytes());
        j.begin_object();
        while let Some(k) = j.next_key() {
            match k.as_str() {
                "access_token" => t.access_token = j.string(),
                "token_type" => t.token_type = j.string(),
                "refresh_token" => t.refresh_token = j.string(),
                "expires_in" => t.expires_in = j.int(),
                "refresh_token_expires_in" => t.refresh_expires_in = j.int(),
                "scope" if j.kind() == b'[' => {
                    j.begin_array();
                    while j.next_item() {
                        t.scopes.push(j.string());
                    }
                }
                "scope" => t.scopes = split_scopes(&j.string()),
                "id_token" => t.id_token = j.string(),
                "error" => match j.kind() {
                    b'"' => err = j.string(),
                    b'n' => j.skip(),
                    _ => {
                        j.skip();
                        err = "error".into();
                    }
                },
                "error_description" if j.kind() == b'"' => desc = j.string(),
                _ => j.skip(),
            }
        }
        if let Err(e) = j.end() {
            return Err(if ok { Error::provider(r.status, &format!("the token response is not valid JSON: {}", e)) } else { bad_status() });
        }
    } else {
        let v = match parse_query(body) {
            Some(v) => v,
            None if ok => return Err(Error::provider(r.status, "the token response is neither JSON nor form-encoded")),
            None => return Err(bad_status()),
        };
        let get = |k: &str| v.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        t.access_token = get("access_token");
        t.token_type = get("token_type");
        t.refresh_token = get("refresh_token");
        t.expires_in = get("expires_in").parse().unwrap_or(0);
        t.refresh_expires_in = get("refresh_token_expires_in").parse().unwrap_or(0);
        t.scopes = split_scopes(&get("scope"));
        t.id_token = get("id_token");
        err = get("error");
        desc = get("error_description");
    }
    if !err.is_empty() {
        return Err(oauth_error(r.status, &err, &desc));
    }
    if !ok {
        return Err(bad_status());
    }
    if t.access_token.is_empty() {
        return Err(Error::provider(r.status, "the token response has no access_token"));
    }
    Ok(t)
}

/// oauth_error maps an OAuth error response (RFC 6749 5.2, and GitHub's
/// codes) to the ABI's codes, as the Go SDK's plugin.OAuthError does.
fn oauth_error(status: i64, code: &str, desc: &str) -> Error {
    let mut msg = format!("the provider answered {}", code);
    if !desc.is_empty() {
        msg = format!("{}: {}", msg, desc);
    }
    let (c, retryable) = match code {
        "invalid_grant" | "bad_verification_code" | "bad_refresh_token" | "expired_token" => ("invalid_grant", false),
        "invalid_client" | "unauthorized_client" | "incorrect_client_credentials" => ("invalid_client", false),
        "invalid_request" | "invalid_scope" => ("invalid_request", false),
        "slow_down" => ("rate_limited", true),
        "server_error" | "temporarily_unavailable" => ("provider_error", true),
        _ => ("provider_error", status >= 500),
    };
    Error { code: c.into(), message: msg, retryable, status, retry_after: 0 }
}

/// check_response judges an API answer: 2xx is fine, 401 is invalid_token,
/// a rate limit is rate_limited, anything else provider_error (retryable
/// for 5xx). The message names the method, path and status, never the
/// query or the body.
pub fn check_response(method: &str, url: &str, r: &Response) -> Result<(), Error> {
    if (200..300).contains(&r.status) {
        return Ok(());
    }
    let path = url.split('?').next().unwrap_or("");
    let path = match path.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => path,
    };
    let msg = format!("{} {}: status {}", method, path, r.status);
    if r.status == 401 {
        return Err(Error { status: 401, ..Error::new("invalid_token", &msg) });
    }
    if let Some(wait) = rate_limit(r) {
        return Err(Error::rate_limited(r.status, format!("{}: rate limited, retry after {} s", msg, wait), wait));
    }
    Err(Error::provider(r.status, &msg))
}

/// rate_limit returns how many seconds to wait if r is a rate limit: a
/// 429, or a 403 with X-RateLimit-Remaining: 0, a Retry-After or a JSON
/// message mentioning a rate limit (GitHub's secondary limits).
fn rate_limit(r: &Response) -> Option<i64> {
    match r.status {
        429 => {}
        403 if header(&r.headers, "X-RateLimit-Remaining") == "0"
            || !header(&r.headers, "Retry-After").is_empty()
            || mentions_rate_limit(&r.body) => {}
        _ => return None,
    }
    Some(retry_after(&r.headers, now()))
}

fn mentions_rate_limit(body: &[u8]) -> bool {
    let mut j = Json::new(body);
    if j.kind() != b'{' {
        return false;
    }
    let mut msg = String::new();
    j.begin_object();
    while let Some(k) = j.next_key() {
        match k.as_str() {
            "message" if j.kind() == b'"' => msg = j.string(),
            _ => j.skip(),
        }
    }
    msg.to_ascii_lowercase().contains("rate limit")
}

fn now() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// retry_after is the wait in seconds, in the order of GitHub's docs:
/// Retry-After (seconds or an IMF-fixdate), else X-RateLimit-Reset when
/// X-RateLimit-Remaining is 0, else GitLab's RateLimit-Reset, else 60;
/// clamped to 1 s .. 1 h, a time already past being 1 s.
fn retry_after(h: &Headers, now: i64) -> i64 {
    let clamp = |n: i64| n.max(1).min(3600);
    let until = |t: i64| clamp(t - now);
    let ra = header(h, "Retry-After").trim();
    if !ra.is_empty() {
        if let Ok(n) = ra.parse::<i64>() {
            if n >= 0 {
                return clamp(n);
            }
        }
        if let Some(t) = http_date(ra) {
            return until(t);
        }
    }
    let epoch = |s: &str| s.trim().parse::<i64>().ok().filter(|n| *n > 0);
    if header(h, "X-RateLimit-Remaining") == "0" {
        if let Some(t) = epoch(header(h, "X-RateLimit-Reset")) {
            return until(t);
        }
    }
    if let Some(t) = epoch(header(h, "RateLimit-Reset")) {
        return until(t);
    }
    60
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// http_date parses RFC 9110's preferred form, "Sun, 06 Nov 1994 08:49:37
/// GMT", into Unix seconds. (The two obsolete forms the Go SDK also reads
/// are not parsed here: such a Retry-After waits the default 60 s.)
fn http_date(s: &str) -> Option<i64> {
    let f: Vec<&str> = s.split(' ').collect();
    if f.len() != 6 || f[5] != "GMT" || f[0].len() != 4 || !f[0].ends_with(',') || f[1].len() != 2 {
        return None;
    }
    let day: i64 = f[1].parse().ok()?;
    let month = MONTHS.iter().position(|m| *m == f[2])? as i64 + 1;
    let year: i64 = if f[3].len() == 4 { f[3].parse().ok()? } else { return None };
    Some(unix(year, month, day)? + clock(f[4])?)
}

/// clock parses "hh:mm:ss" into seconds.
fn clock(s: &str) -> Option<i64> {
    let p: Vec<&str> = s.split(':').collect();
    if p.len() != 3 || p.iter().any(|x| x.len() != 2 || !x.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let (h, m, sec): (i64, i64, i64) = (p[0].parse().ok()?, p[1].parse().ok()?, p[2].parse().ok()?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(h * 3600 + m * 60 + sec)
}

/// unix returns the Unix time of a date's midnight UTC (days from civil,
/// http://howardhinnant.github.io/date_algorithms.html).
fn unix(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146097 + doe - 719468) * 86400)
}

/// unix_time parses an RFC 3339 time ("2024-05-01T10:00:00Z",
/// "2024-05-01T12:00:00.5+02:00") into Unix seconds, 0 if it is not one.
pub fn unix_time(s: &str) -> i64 {
    let parse = || -> Option<i64> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let p = s.get(r)?;
            if p.bytes().all(|c| c.is_ascii_digit()) { p.parse().ok() } else { None }
        };
        let t = unix(num(0..4)?, num(5..7)?, num(8..10)?)? + clock(s.get(11..19)?)?;
        let mut rest = &s[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let n = frac.bytes().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            rest = &frac[n..];
        }
        match rest {
            "Z" | "z" => Some(t),
            _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
                let sign = match rest.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let (h, m) = (num(s.len() - 5..s.len() - 3)?, num(s.len() - 2..s.len())?);
                Some(t - sign * (h * 3600 + m * 60))
            }
            _ => None,
        }
    };
    parse().unwrap_or(0)
}

/// next_link returns the Link header's rel="next" target, or "" (RFC 8288;
/// Gitea and GitHub page this way).
pub fn next_link(h: &Headers) -> String {
    for (k, v) in h {
        if !k.eq_ignore_ascii_case("Link") {
            continue;
        }
        for part in v.split(',') {
            let mut segs = part.split(';');
            let target = segs.next().unwrap_or("").trim();
            if !target.starts_with('<') || !target.ends_with('>') || target.len() < 2 {
                continue;
            }
            for p in segs {
                if let Some(rel) = p.trim().strip_prefix("rel=") {
                    if rel.trim_matches('"').split_whitespace().any(|r| r == "next") {
                        return target[1..target.len() - 1].to_string();
                    }
                }
            }
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: i64, headers: &[(&str, &str)], body: &str) -> Response {
        Response { status, headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), body: body.as_bytes().to_vec() }
    }

    #[test]
    fn times() {
        assert_eq!(unix_time("2024-05-01T10:00:00Z"), 1714557600);
        assert_eq!(unix_time("2024-05-01T12:00:00.123+02:00"), 1714557600);
        assert_eq!(unix_time("2024-05-01T05:30:00-04:30"), 1714557600);
        assert_eq!(unix_time("1970-01-01T00:00:00Z"), 0);
        assert_eq!(unix_time("2000-02-29T00:00:00Z"), 951782400);
        for bad in ["", "2024-05-01", "2024-05-01 10:00:00Z", "2024-13-01T10:00:00Z", "2024-05-01T10:00:00", "2024-05-01T10:00:00.Z", "2024-05-01T25:00:00Z"] {
            assert_eq!(unix_time(bad), 0, "{}", bad);
        }
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[test]
    fn rate_limits() {
        let now = 1_700_000_000;
        let h = |pairs: &[(&str, &str)]| -> Headers { pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
        assert_eq!(retry_after(&h(&[("Retry-After", "120")]), now), 120);
        assert_eq!(retry_after(&h(&[("Retry-After", "0")]), now), 1);
        assert_eq!(retry_after(&h(&[("Retry-After", "99999")]), now), 3600);
        assert_eq!(retry_after(&h(&[("Retry-After", "Tue, 14 Nov 2023 22:15:00 GMT")]), now), 100);
        assert_eq!(retry_after(&h(&[("X-Ratelimit-Remaining", "0"), ("X-Ratelimit-Reset", "1700000030")]), now), 30);
        assert_eq!(retry_after(&h(&[("X-Ratelimit-Remaining", "5"), ("X-Ratelimit-Reset", "1700000030")]), now), 60);
        assert_eq!(retry_after(&h(&[("Ratelimit-Reset", "1699999999")]), now), 1);
        assert_eq!(retry_after(&h(&[]), now), 60);

        assert!(rate_limit(&resp(429, &[], "")).is_some());
        assert!(rate_limit(&resp(403, &[], r#"{"message": "forbidden"}"#)).is_none());
        assert!(rate_limit(&resp(403, &[], r#"{"message": "API rate limit exceeded"}"#)).is_some());
        assert!(rate_limit(&resp(403, &[("X-RateLimit-Remaining", "0")], "")).is_some());
        assert!(rate_limit(&resp(500, &[("Retry-After", "5")], "")).is_none());
    }

    #[test]
    fn api_statuses() {
        let code = |r: Response| match check_response("GET", "https://h/api/v1/user?x=secret", &r) {
            Ok(()) => ("ok".to_string(), String::new(), false),
            Err(e) => (e.code, e.message, e.retryable),
        };
        assert_eq!(code(resp(200, &[], "")).0, "ok");
        assert_eq!(code(resp(401, &[], "")), ("invalid_token".into(), "GET /api/v1/user: status 401".into(), false));
        assert_eq!(code(resp(503, &[], "")), ("provider_error".into(), "GET /api/v1/user: status 503".into(), true));
        assert_eq!(code(resp(429, &[("Retry-After", "7")], "")).1, "GET /api/v1/user: status 429: rate limited, retry after 7 s");
        assert_eq!(code(resp(404, &[], "")).2, false);
    }

    #[test]
    fn token_answers() {
        let json = &[("Content-Type", "application/json; charset=utf-8")];
        let t = parse_token_response(&resp(200, json, r#"{"access_token": "at", "token_type": "bearer", "expires_in": 3600,
            "refresh_token": "rt", "scope": "read:user,read:repository"}"#)).ok().unwrap();
        assert_eq!((t.access_token.as_str(), t.refresh_token.as_str(), t.expires_in), ("at", "rt", 3600));
        assert_eq!(t.scopes, vec!["read:user", "read:repository"]);
        let t = parse_token_response(&resp(200, &[("Content-Type", "application/x-www-form-urlencoded")],
            "access_token=a%2Bb&scope=x+y&expires_in=60")).ok().unwrap();
        assert_eq!((t.access_token.as_str(), t.expires_in, t.scopes.len()), ("a+b", 60, 2));
        for (status, body, code, retryable) in [
            (400, r#"{"error": "invalid_grant", "error_description": "used"}"#, "invalid_grant", false),
            (200, r#"{"error": "bad_verification_code"}"#, "invalid_grant", false),
            (401, r#"{"error": "invalid_client"}"#, "invalid_client", false),
            (503, "<html>busy</html>", "provider_error", true),
            (200, r#"{"token_type": "bearer"}"#, "provider_error", false),
            (200, r#"{"access_token": 5}"#, "provider_error", false),
            (429, r#"{"error": "invalid_grant"}"#, "rate_limited", true),
            (400, r#"{"error": "slow_down"}"#, "rate_limited", true),
        ] {
            let e = parse_token_response(&resp(status, json, body)).err().unwrap();
            assert_eq!((e.code.as_str(), e.retryable), (code, retryable), "{} {}", status, body);
        }
    }

    #[test]
    fn links_and_forms() {
        let h: Headers = vec![("Link".into(), r#"<https://h/api/v1/user/repos?page=1>; rel="prev", <https://h/api/v1/user/repos?page=3>; rel="next last""#.into())];
        assert_eq!(next_link(&h), "https://h/api/v1/user/repos?page=3");
        assert_eq!(next_link(&vec![("Link".into(), r#"<https://h/x>; rel="last""#.into())]), "");
        let mut form = vec![("z", "a b&c=d/é".to_string()), ("a", String::new())];
        assert_eq!(form_encode(&mut form), "a=&z=a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(parse_query("a=1&b=%zz"), None);
    }
}
