//! The server-rendered pages of `/authorize`: sign-in, consent, and errors that must not be
//! redirected. Plain HTML with inline style, every value escaped; the headers forbid framing
//! (clickjacking), caching and referrers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::error::no_store;

pub const CSRF_COOKIE: &str = "__Host-mcp-csrf";

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;\
box-shadow:0 1px 4px #0002}h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem}\
input{width:100%;padding:.5rem;box-sizing:border-box}button{margin-top:1.2rem;padding:.6rem 1.2rem;\
margin-right:.5rem}.error{color:#a00}.warn{background:#fff4d6;padding:.5rem}code{word-break:break-all}";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        escape(title)
    );
    let mut resp = (status, Html(html)).into_response();
    no_store(&mut resp);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// What the person is asked to grant, shown on both pages.
pub struct Ask<'a> {
    pub client_name: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a [String],
}

impl Ask<'_> {
    fn host(&self) -> String {
        url::Url::parse(self.redirect_uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| self.redirect_uri.to_string())
    }

    fn summary(&self) -> String {
        let scopes: Vec<String> = self
            .scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape(s)))
            .collect();
        format!(
            "<p><strong id=\"client-name\">{}</strong> wants to use this MCP server on your behalf.</p>\
             <p>After you approve, you go back to <strong id=\"redirect-host\">{}</strong> \
             (<code>{}</code>).</p><p>It asks for:</p><ul id=\"scopes\">{}</ul>",
            escape(self.client_name),
            escape(&self.host()),
            escape(self.redirect_uri),
            scopes.join("")
        )
    }
}

pub fn login(
    sealed: &str,
    csrf: &str,
    ask: &Ask<'_>,
    sso: Option<&str>,
    error: Option<&str>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let error = error.map_or(String::new(), |e| {
        format!("<p class=\"error\" id=\"error\">{}</p>", escape(e))
    });
    let body = format!(
        "<h1>Sign in</h1>{}{error}<form method=\"post\" action=\"/authorize/login\">\
         <input type=\"hidden\" name=\"request\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"username\">User name</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" id=\"sign-in\">Sign in</button></form>{}",
        ask.summary(),
        escape(sealed),
        escape(csrf),
        sso.map_or(String::new(), |name| format!(
            "<form method=\"post\" action=\"/authorize/upstream\">\
             <input type=\"hidden\" name=\"request\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" id=\"sso\">Sign in with {}</button></form>",
            escape(sealed),
            escape(csrf),
            escape(name)
        ))
    );
    page(status, "Sign in — mcp-daemon", &body)
}

pub fn consent(sealed: &str, csrf: &str, ask: &Ask<'_>, user: &str) -> Response {
    let loopback = url::Url::parse(ask.redirect_uri).is_ok_and(|u| {
        matches!(
            u.host_str(),
            Some("127.0.0.1") | Some("localhost") | Some("[::1]")
        )
    });
    let warning = if loopback {
        "<p class=\"warn\" id=\"loopback-warning\">This client returns to a program on your own \
         computer. Approve only if you started this sign-in yourself.</p>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Allow access?</h1><p>Signed in as <strong id=\"user\">{}</strong>.</p>{}{warning}\
         <form method=\"post\" action=\"/authorize/consent\">\
         <input type=\"hidden\" name=\"grant\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" name=\"decision\" value=\"approve\" id=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button></form>",
        escape(user),
        ask.summary(),
        escape(sealed),
        escape(csrf)
    );
    page(StatusCode::OK, "Allow access — mcp-daemon", &body)
}

pub fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>This sign-in cannot continue</h1><p class=\"error\" id=\"error\">{}</p>\
         <p>Go back to the application and start again.</p>",
        escape(message)
    );
    page(status, "Sign-in error — mcp-daemon", &body)
}
